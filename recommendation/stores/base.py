"""Event aggregates: weighted counts per scope (the whole catalog, each category prefix) and
UTC day, read back decayed by age (trending), and how often two products, or two categories,
were carted or bought by the same shopper (complements).

Trending counts are kept per day and dropped after the window, so nothing needs rewriting as
time passes. Nothing about a shopper is stored: a count is a product's (or a pair's), not a
person's.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from personalization.events import EVENT_WEIGHTS, Event
from personalization.stores.base import DAY_S
from retrieval.schema import Product, split_category

ALL = "*"  # the scope of the whole catalog


class TrendingUnavailable(RuntimeError):
    """The aggregate store's server cannot be reached."""


@dataclass(frozen=True)
class TrendingConfig:
    """How counts age: a day's counts weigh half after ``half_life_days``; days older than
    ``window_days`` are dropped."""

    half_life_days: float = 3.0
    window_days: int = 14

    def __post_init__(self) -> None:
        if self.half_life_days <= 0 or self.window_days < 1:
            msg = f"half_life_days must be > 0 and window_days >= 1, got {self}"
            raise ValueError(msg)

    def day_weights(self, now: float) -> dict[int, float]:
        """Each day of the window (UTC day number) and its weight: 1 today, 0.5 a half-life ago."""
        today = day_of(now)
        return {today - age: 0.5 ** (age / self.half_life_days) for age in range(self.window_days)}


def day_of(at: float) -> int:
    """The UTC day number of epoch seconds ``at``."""
    return math.floor(at / DAY_S)


def scopes_of(product: Product) -> list[str]:
    """The scopes an event about ``product`` counts in: the catalog and each category prefix
    (case-folded, levels joined by ``" > "``)."""
    levels = [level.casefold() for level in split_category(product.category)]
    return [ALL, *(" > ".join(levels[: n + 1]) for n in range(len(levels)))]


def scope_of(category: str | None) -> str:
    """The scope of a category as a caller writes it (None: the whole catalog)."""
    levels = [level.casefold() for level in split_category(category)]
    return " > ".join(levels) if levels else ALL


def increments(
    events: Iterable[Event], products: Mapping[str, Product], now: float, config: TrendingConfig
) -> dict[tuple[str, int], dict[str, float]]:
    """What a batch adds, per (scope, day) and product: each event's weight on its day (a
    future time counts as now; events older than the window count nothing)."""
    out: dict[tuple[str, int], dict[str, float]] = {}
    oldest = day_of(now) - config.window_days + 1
    for event in events:
        weight = EVENT_WEIGHTS.get(event.type, 0.0)
        product = products.get(event.product_id) if event.product_id else None
        day = day_of(min(event.at, now))
        if product is None or weight <= 0 or day < oldest:
            continue
        for scope in scopes_of(product):
            counts = out.setdefault((scope, day), {})
            counts[product.id] = counts.get(product.id, 0.0) + weight
    return out


class TrendingStore(Protocol):
    """Weighted event counts per scope and day."""

    config: TrendingConfig

    def record(self, events: Sequence[Event], products: Mapping[str, Product], now: float) -> int:
        """Count the events (already applied once each); how many counted."""
        ...

    def top(self, scope: str, limit: int, now: float) -> list[tuple[str, float]]:
        """The ``limit`` products with the highest decayed counts in ``scope``, highest first
        (ties by id), with those counts."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class PairCounts(Protocol):
    """How often each pair of keys (``p:<product id>``, ``c:<category>``) went together."""

    def add(self, pairs: Mapping[tuple[str, str], float]) -> None:
        """Add each pair's weight, both ways (a with b, b with a)."""
        ...

    def partners(self, key: str, limit: int) -> list[tuple[str, float]]:
        """The ``limit`` keys that went with ``key`` most, most first (ties by key)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


def ranked(scores: Mapping[str, float], limit: int) -> list[tuple[str, float]]:
    """The ``limit`` highest scores, highest first, ties by id."""
    order = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
    return [(pid, round(score, 6)) for pid, score in order[:limit] if score > 0]
