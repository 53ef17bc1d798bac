"""A shopper's profile: time-decayed affinities, price habits and taste, updated per event.

Every sum decays with a half-life: an event ``half_life_s`` old counts half as much as one
now. The sums are kept decayed to ``updated_at`` (the time of the newest event applied), so
an event is one update, never a replay of the history; an event older than ``updated_at`` is
added with its own decay, which makes the order events arrive in irrelevant.

Brands and categories are keyed case-insensitively (casefolded); the last spelling seen is
kept for display. A category counts at every level of its path, keyed by the path down to that
level (``electronics > audio``), so "Audio" under two different trees does not mix.
"""

from __future__ import annotations

import copy
import logging
import math
import time
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from personalization.events import (
    BUY_EVENTS,
    EVENT_WEIGHTS,
    MAX_CLOCK_SKEW_S,
    Event,
    check_user_id,
    hashed_user,
    iso_time,
)
from retrieval.schema import Product

logger = logging.getLogger(__name__)

CATEGORY_SEPARATOR = " > "
MIN_PRICE_WEIGHT = 2.0  # a price band needs about two views' (or one purchase's) worth
MIN_PRICE_SPREAD = math.log(1.25)  # the band is at least price / 1.25 .. price * 1.25
MIN_AFFINITY = 1e-3  # `prune` forgets what decayed below this
FORMAT_VERSION = 1


def fold(name: str) -> str:
    """The case-insensitive key of a brand or category level (NFKC, casefolded, one space)."""
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


def category_keys(path: list[str]) -> list[str]:
    """The key of every level of a category path, top level first."""
    folded = [fold(level) for level in path]
    return [CATEGORY_SEPARATOR.join(folded[: depth + 1]) for depth in range(len(folded))]


def decay_factor(dt: float, half_life_s: float) -> float:
    """What a weight ``dt`` seconds old is worth now: ``0.5 ** (dt / half_life_s)``."""
    if half_life_s <= 0:
        msg = f"the half-life must be positive, got {half_life_s}"
        raise ValueError(msg)
    return float(0.5 ** (max(dt, 0.0) / half_life_s))


@dataclass
class Profile:
    """What a shopper's behaviour says, as sums decayed to ``updated_at`` (epoch seconds).

    ``brands`` and ``categories`` map a folded key to its affinity; ``brand_buys`` holds the
    part of a brand's affinity that came from carts and purchases; ``labels`` maps a folded key
    to the spelling shown to the shopper. Prices count as log(price); ``vector_sum`` is the
    weighted sum of the L2-normalised embeddings of the products engaged with.
    """

    user_id: str
    updated_at: float = 0.0
    events: int = 0
    brands: dict[str, float] = field(default_factory=dict)
    brand_buys: dict[str, float] = field(default_factory=dict)
    categories: dict[str, float] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    price_weight: float = 0.0
    price_log_sum: float = 0.0
    price_log_sq_sum: float = 0.0
    vector_sum: np.ndarray | None = None
    vector_weight: float = 0.0

    def __post_init__(self) -> None:
        check_user_id(self.user_id)

    # -- updating --------------------------------------------------------------------------

    def apply(
        self,
        event: Event,
        product: Product | None,
        vector: np.ndarray | None,
        *,
        half_life_s: float,
        weights: Mapping[str, float] = EVENT_WEIGHTS,
    ) -> None:
        """Add ``event`` on ``product`` (embedded as ``vector``) with its type's weight.

        The sums are first decayed to the event's time when it is newer than ``updated_at``;
        an older event is decayed itself instead. Events without a product, or whose type
        weighs nothing, only count in ``events``; a missing brand, category, price or vector is
        skipped on its own.
        """
        decay_factor(0.0, half_life_s)  # validates the half-life
        if event.user_id != self.user_id:
            msg = "an event of another user was applied to this profile"
            raise ValueError(msg)
        if event.at > self.updated_at:
            self._scale(decay_factor(event.at - self.updated_at, half_life_s))
            self.updated_at = float(event.at)
        self.events += 1
        base = float(weights.get(event.type, 0.0))
        if product is None or base <= 0:
            return
        weight = base * decay_factor(self.updated_at - event.at, half_life_s)
        if product.brand:
            key = fold(product.brand)
            self.brands[key] = self.brands.get(key, 0.0) + weight
            if event.type in BUY_EVENTS:
                self.brand_buys[key] = self.brand_buys.get(key, 0.0) + weight
            self.labels[key] = product.brand
        path = product.category_path
        for depth, key in enumerate(category_keys(path)):
            self.categories[key] = self.categories.get(key, 0.0) + weight
            self.labels[key] = CATEGORY_SEPARATOR.join(path[: depth + 1])
        if product.price is not None and product.price > 0:
            log_price = math.log(product.price)
            self.price_weight += weight
            self.price_log_sum += weight * log_price
            self.price_log_sq_sum += weight * log_price * log_price
        if vector is not None:
            self._add_vector(vector, weight)

    def _add_vector(self, vector: np.ndarray, weight: float) -> None:
        unit = np.asarray(vector, dtype=np.float32).reshape(-1)
        norm = math.sqrt(float(np.dot(unit, unit)))
        if not math.isfinite(norm) or norm == 0:
            return
        if self.vector_sum is not None and self.vector_sum.shape != unit.shape:
            # The embedder changed: the old taste cannot be compared with the new vectors.
            logger.info(
                "embedding size changed from %d to %d; a profile's taste vector restarts",
                self.vector_sum.shape[0],
                unit.shape[0],
            )
            self.vector_sum, self.vector_weight = None, 0.0
        scaled = unit * np.float32(weight / norm)  # float32, like the sum
        self.vector_sum = scaled if self.vector_sum is None else self.vector_sum + scaled
        self.vector_weight += weight

    def _scale(self, factor: float) -> None:
        """Multiply every decayed sum by ``factor``."""
        if factor == 1.0:
            return
        for sums in (self.brands, self.brand_buys, self.categories):
            for key in sums:
                sums[key] *= factor
        self.price_weight *= factor
        self.price_log_sum *= factor
        self.price_log_sq_sum *= factor
        if self.vector_sum is not None:
            self.vector_sum = (self.vector_sum * np.float32(factor)).astype(np.float32)
        self.vector_weight *= factor

    def decayed(self, now: float, half_life_s: float) -> Profile:
        """A copy with every sum decayed to ``now`` (this profile unchanged)."""
        out = copy.deepcopy(self)
        if now > out.updated_at:
            out._scale(decay_factor(now - out.updated_at, half_life_s))
            out.updated_at = float(now)
        return out

    def prune(self, max_keys: int) -> None:
        """Keep the ``max_keys`` strongest brands and categories; forget what decayed away."""
        if max_keys < 0:
            msg = f"max_keys must not be negative, got {max_keys}"
            raise ValueError(msg)
        forgotten = False
        for sums in (self.brands, self.categories):
            strongest = _strongest(sums, max_keys) if len(sums) > max_keys else sums.items()
            keep = {key for key, value in strongest if value >= MIN_AFFINITY}
            if len(keep) < len(sums):
                forgotten = True
                for key in [key for key in sums if key not in keep]:
                    del sums[key]
        if forgotten or len(self.labels) > len(self.brands) + len(self.categories):
            self.brand_buys = {k: v for k, v in self.brand_buys.items() if k in self.brands}
            self.labels = {
                k: v for k, v in self.labels.items() if k in self.brands or k in self.categories
            }

    # -- reading ---------------------------------------------------------------------------

    def is_empty(self) -> bool:
        """True when nothing here can personalise a ranking."""
        return (
            not self.brands
            and not self.categories
            and self.price_band() is None
            and self.preference() is None
        )

    def price_band(self, min_weight: float = MIN_PRICE_WEIGHT) -> tuple[float, float] | None:
        """The usual price range: exp(mean ± max(std, log 1.25)) of log(price), weighted.

        None when the prices seen weigh less than ``min_weight``.
        """
        if self.price_weight < min_weight or self.price_weight <= 0:
            return None
        mean = self.price_log_sum / self.price_weight
        variance = max(self.price_log_sq_sum / self.price_weight - mean * mean, 0.0)
        spread = max(math.sqrt(variance), MIN_PRICE_SPREAD)
        return math.exp(mean - spread), math.exp(mean + spread)

    def preference(self) -> np.ndarray | None:
        """The unit vector of the shopper's taste, or None without one."""
        if self.vector_sum is None or self.vector_weight <= 0:
            return None
        norm = float(np.linalg.norm(self.vector_sum))
        if not math.isfinite(norm) or norm <= 1e-12:
            return None
        return (self.vector_sum / norm).astype(np.float32)

    def top_brands(self, n: int) -> list[tuple[str, float]]:
        """The ``n`` strongest brands as (display name, affinity), strongest first."""
        return [(self.labels.get(key, key), value) for key, value in _strongest(self.brands, n)]

    def top_categories(self, n: int) -> list[tuple[str, float]]:
        """The ``n`` strongest categories as (display path, affinity), strongest first."""
        return [(self.labels.get(key, key), value) for key, value in _strongest(self.categories, n)]

    def summary(self, n: int = 5) -> dict[str, Any]:
        """What the profile says, for the shopper: affinities scaled so the strongest is 1."""
        band = self.price_band()
        return {
            "user_id": self.user_id,
            "events": self.events,
            "updated_at": self.updated_at,
            "brands": _scaled(self.top_brands(n)),
            "categories": _scaled(self.top_categories(n)),
            "price_band": None if band is None else {"low": band[0], "high": band[1]},
        }

    # -- stored form -----------------------------------------------------------------------

    def to_dict(self, *, vector: bool = True) -> dict[str, Any]:
        """The JSON-safe form; the vector as a list of float32 values (left out when ``vector``
        is off, for a store that keeps it apart)."""
        data = {
            "version": FORMAT_VERSION,
            "user_id": self.user_id,
            "updated_at": self.updated_at,
            "events": self.events,
            "brands": dict(self.brands),
            "brand_buys": dict(self.brand_buys),
            "categories": dict(self.categories),
            "labels": dict(self.labels),
            "price_weight": self.price_weight,
            "price_log_sum": self.price_log_sum,
            "price_log_sq_sum": self.price_log_sq_sum,
            "vector_weight": self.vector_weight,
        }
        if vector:
            data["vector_sum"] = None if self.vector_sum is None else self.vector_sum.tolist()
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, repair: bool = True) -> Profile:
        """The profile ``to_dict`` gave (`ValueError` on another format version), one dated
        in the future brought back to now unless ``repair`` is off (`repair_future`)."""
        version = data.get("version", FORMAT_VERSION)
        if version != FORMAT_VERSION:
            msg = f"profile format version {version} is not {FORMAT_VERSION}"
            raise ValueError(msg)
        vector = data.get("vector_sum")
        profile = cls(
            user_id=data["user_id"],
            updated_at=float(data.get("updated_at", 0.0)),
            events=int(data.get("events", 0)),
            brands=_floats(data.get("brands", {})),
            brand_buys=_floats(data.get("brand_buys", {})),
            categories=_floats(data.get("categories", {})),
            labels={str(k): str(v) for k, v in data.get("labels", {}).items()},
            price_weight=float(data.get("price_weight", 0.0)),
            price_log_sum=float(data.get("price_log_sum", 0.0)),
            price_log_sq_sum=float(data.get("price_log_sq_sum", 0.0)),
            vector_sum=None if vector is None else np.asarray(vector, dtype=np.float32),
            vector_weight=float(data.get("vector_weight", 0.0)),
        )
        if repair:
            profile.repair_future(time.time())
        return profile

    def repair_future(self, now: float) -> bool:
        """Bring a profile dated in the future back to ``now``; whether it was.

        An event dated in the future (before the event window refused them) moved
        ``updated_at`` there, and every later event was decayed to nothing against it: the
        shopper was frozen. The sums keep their proportions; events count normally again.
        Logged, with the user id hashed."""
        if self.updated_at <= now + MAX_CLOCK_SKEW_S:
            return False
        logger.warning(
            "profile dated in the future repaired",
            extra={"user": hashed_user(self.user_id), "was": iso_time(self.updated_at)},
        )
        self.updated_at = float(now)
        return True

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Profile):
            return NotImplemented
        mine, theirs = self.to_dict(), other.to_dict()
        return mine == theirs


def _strongest(sums: Mapping[str, float], n: int) -> list[tuple[str, float]]:
    """The ``n`` largest entries, ties broken by key so the order is stable."""
    return sorted(sums.items(), key=lambda item: (-item[1], item[0]))[: max(n, 0)]


def _scaled(items: list[tuple[str, float]]) -> list[dict[str, Any]]:
    top = items[0][1] if items else 0.0
    return [
        {"name": name, "affinity": round(value / top, 3) if top > 0 else 0.0}
        for name, value in items
    ]


def _floats(values: Mapping[str, Any]) -> dict[str, float]:
    return {str(key): float(value) for key, value in values.items()}
