"""Re-ranking a result list for one shopper, and keeping a page diverse.

`personalize` blends relevance with a personal score over the first ``depth`` results only:
``final = rel + weight * personal`` with ``rel = 1 - (rank - 1) / depth``. One place of
relevance is worth ``1 / depth`` and the personal score is at most 1, so a result rises at
most about ``weight * depth`` places, and a result below ``depth`` never moves: personalisation
re-orders what is relevant, it never promotes what is not. Without a profile (or with an empty
one) the order is the relevance order, unchanged.

`diversify` works on any ranked list, personalised or not: it drops near-duplicates and caps
how many products of one brand the first page shows.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from personalization.profile import Profile, category_keys, fold
from retrieval.schema import Product

# Preference cosine → [0, 1]: clip((cos - COSINE_FLOOR) / COSINE_SPAN, 0, 1). Sentence
# embeddings of unrelated products still have cosines around 0.1-0.2, so 0.2 and below is no
# match and 0.8 and above a full one.
COSINE_FLOOR = 0.2
COSINE_SPAN = 0.6
# A price outside the band scores 1 - (distance in log space) / log 2: nothing at a factor of 2
# beyond the band's edge.
PRICE_FALLOFF = math.log(2.0)
REASON_MIN = 0.5  # a part explains a result when it is at least this strong
BUY_SHARE = 0.5  # "you often buy" when carts and purchases make at least this share


@dataclass(frozen=True)
class PersonalConfig:
    """How strongly and how deep to personalise, and how the personal score is mixed.

    ``*_part`` are the weights of the personal score's components (they need not sum to 1);
    ``brand_cap`` and ``dedupe_similarity`` configure `diversify` (None: off).
    """

    weight: float = 0.3
    depth: int = 20
    half_life_days: float = 30.0
    brand_cap: int | None = None
    dedupe_similarity: float | None = None
    vector_part: float = 0.4
    brand_part: float = 0.25
    category_part: float = 0.2
    price_part: float = 0.15

    def __post_init__(self) -> None:
        parts = (self.vector_part, self.brand_part, self.category_part, self.price_part)
        if self.weight < 0 or any(part < 0 for part in parts) or sum(parts) <= 0:
            msg = "weights must not be negative, and some part of the score must weigh"
            raise ValueError(msg)
        if self.depth < 1 or self.half_life_days <= 0:
            msg = "depth must be at least 1 and the half-life positive"
            raise ValueError(msg)
        _check_diversity(self.brand_cap, self.dedupe_similarity)

    @property
    def half_life_s(self) -> float:
        """The half-life in seconds, as `Profile` takes it."""
        return self.half_life_days * 86_400.0


@dataclass(frozen=True)
class PersonalScore:
    """A product's fit with a profile: ``score`` in [0, 1], each part in [0, 1], and why."""

    score: float
    parts: dict[str, float] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Personalized:
    """A result after re-ranking: where relevance put it, where it is now, and why."""

    key: str
    product: Product
    relevance_rank: int
    rank: int
    personal: PersonalScore | None = None
    moved: int = 0  # places moved up (negative: down)


@dataclass(frozen=True)
class Diversified:
    """A list after `diversify`, with how many near-duplicates it dropped and how many
    results the brand cap pushed below the first page."""

    items: list[Personalized]
    removed: int
    pushed: int


def personal_score(
    profile: Profile,
    product: Product,
    vector: np.ndarray | None,
    config: PersonalConfig | None = None,
) -> PersonalScore:
    """How well ``product`` fits ``profile``: the weighted mean of its parts.

    Parts: ``vector`` (cosine with the profile's preference, mapped by `COSINE_FLOOR` and
    `COSINE_SPAN`), ``brand`` (affinity over the profile's strongest brand), ``category`` (the
    deepest level of the product's category the profile knows, over the strongest category of
    that depth, times the share of the path matched) and ``price`` (1 inside `price_band`,
    falling off outside). A part the profile cannot judge (no preference vector, no brands,
    no price band) is left out of the mean; a part the product lacks (no vector, no brand, no
    price) scores 0. Matching is case-insensitive.
    """
    config = config or PersonalConfig()
    scored: list[tuple[str, float, float, str | None]] = []  # name, weight, part, reason

    preference = profile.preference()
    if preference is not None and config.vector_part > 0:
        part = _vector_part(preference, vector)
        reason = "similar to products you engaged with" if part >= REASON_MIN else None
        scored.append(("vector", config.vector_part, part, reason))

    if profile.brands and config.brand_part > 0:
        part, reason = _brand_part(profile, product)
        scored.append(("brand", config.brand_part, part, reason))

    if profile.categories and config.category_part > 0:
        part, reason = _category_part(profile, product)
        scored.append(("category", config.category_part, part, reason))

    band = profile.price_band()
    if band is not None and config.price_part > 0:
        part = _price_part(band, product.price)
        reason = None
        if part >= 1.0:
            reason = f"matches your usual price range ({_money(band[0])}–{_money(band[1])})"
        scored.append(("price", config.price_part, part, reason))

    total = sum(weight for _, weight, _, _ in scored)
    if total <= 0:
        return PersonalScore(0.0)
    score = sum(weight * part for _, weight, part, _ in scored) / total
    by_contribution = sorted(scored, key=lambda item: -item[1] * item[2])
    return PersonalScore(
        score=min(max(score, 0.0), 1.0),
        parts={name: part for name, _, part, _ in scored},
        reasons=[reason for _, _, _, reason in by_contribution if reason],
    )


def personalize(
    candidates: Sequence[tuple[str, Product]],
    profile: Profile | None,
    vectors: Mapping[str, np.ndarray],
    config: PersonalConfig | None = None,
) -> list[Personalized]:
    """``candidates`` (key, product) in relevance order, re-ranked for ``profile``.

    Only the first ``config.depth`` move; ties keep the relevance order. ``vectors`` holds
    product embeddings by product id. Pass the profile decayed to now (`Profile.decayed`).
    No profile, an empty one or a zero weight: the relevance order with ``personal`` None.
    """
    config = config or PersonalConfig()
    if profile is None or config.weight <= 0 or profile.is_empty():
        return [
            Personalized(key, product, rank, rank)
            for rank, (key, product) in enumerate(candidates, start=1)
        ]
    depth = config.depth
    head: list[tuple[float, int, str, Product, PersonalScore]] = []
    for rank, (key, product) in enumerate(candidates[:depth], start=1):
        personal = personal_score(profile, product, vectors.get(product.id), config)
        final = 1.0 - (rank - 1) / depth + config.weight * personal.score
        head.append((round(final, 9), rank, key, product, personal))  # rounded: exact ties
    head.sort(key=lambda item: (-item[0], item[1]))
    out = [
        Personalized(key, product, old, new, personal, old - new)
        for new, (_, old, key, product, personal) in enumerate(head, start=1)
    ]
    out.extend(
        Personalized(key, product, rank, rank)
        for rank, (key, product) in enumerate(candidates[depth:], start=depth + 1)
    )
    return out


def diversify(
    items: Sequence[Personalized],
    *,
    page_size: int,
    brand_cap: int | None = None,
    dedupe_similarity: float | None = None,
    vectors: Mapping[str, np.ndarray] | None = None,
) -> Diversified:
    """``items`` without near-duplicates, and at most ``brand_cap`` per brand on the page.

    With ``dedupe_similarity`` set, a result is a near-duplicate of one kept above it when it
    is the same product, has the same title (case and spacing aside), or when the cosine of
    their vectors (``vectors`` by product id) is at least ``dedupe_similarity``; it is
    dropped. Within the first ``page_size`` results, a brand's results beyond ``brand_cap``
    (case-insensitive; products without a brand are never capped) move to just after the
    page, in order. Ranks are renumbered; ``moved`` stays relative to the relevance rank.
    """
    _check_diversity(brand_cap, dedupe_similarity)
    if page_size < 1:
        msg = f"page_size must be at least 1, got {page_size}"
        raise ValueError(msg)
    kept = _dedupe(items, dedupe_similarity, vectors or {})
    removed = len(items) - len(kept)
    pushed: list[Personalized] = []
    if brand_cap is not None:
        page: list[Personalized] = []
        counts: dict[str, int] = {}
        position = 0
        while position < len(kept) and len(page) < page_size:
            item = kept[position]
            position += 1
            brand = fold(item.product.brand) if item.product.brand else None
            if brand is not None and counts.get(brand, 0) >= brand_cap:
                pushed.append(item)
                continue
            if brand is not None:
                counts[brand] = counts.get(brand, 0) + 1
            page.append(item)
        kept = page + pushed + kept[position:]
    renumbered = [
        dataclasses.replace(item, rank=rank, moved=item.relevance_rank - rank)
        for rank, item in enumerate(kept, start=1)
    ]
    return Diversified(renumbered, removed, len(pushed))


# -- the parts -------------------------------------------------------------------------------


def _vector_part(preference: np.ndarray, vector: np.ndarray | None) -> float:
    if vector is None:
        return 0.0
    candidate = np.asarray(vector, dtype=np.float32).reshape(-1)
    norm = float(np.linalg.norm(candidate))
    if candidate.shape != preference.shape or not math.isfinite(norm) or norm == 0:
        return 0.0
    cosine = float(np.dot(preference, candidate)) / norm
    return min(max((cosine - COSINE_FLOOR) / COSINE_SPAN, 0.0), 1.0)


def _brand_part(profile: Profile, product: Product) -> tuple[float, str | None]:
    if not product.brand:
        return 0.0, None
    key = fold(product.brand)
    top = max(profile.brands.values())
    affinity = profile.brands.get(key, 0.0)
    if affinity <= 0 or top <= 0:
        return 0.0, None
    part = min(affinity / top, 1.0)
    if part < REASON_MIN:
        return part, None
    verb = "buy" if profile.brand_buys.get(key, 0.0) >= BUY_SHARE * affinity else "view"
    return part, f"you often {verb} {product.brand}"


def _category_part(profile: Profile, product: Product) -> tuple[float, str | None]:
    path = product.category_path
    keys = category_keys(path)
    for depth in range(len(keys) - 1, -1, -1):
        affinity = profile.categories.get(keys[depth], 0.0)
        if affinity <= 0:
            continue
        top = max(
            value
            for key, value in profile.categories.items()
            if key.count(">") == keys[depth].count(">")
        )
        part = min(affinity / top, 1.0) * (depth + 1) / len(keys)
        reason = f"you often shop in {path[depth]}" if part >= REASON_MIN else None
        return part, reason
    return 0.0, None


def _price_part(band: tuple[float, float], price: float | None) -> float:
    if price is None or price <= 0:
        return 0.0
    low, high = band
    if low <= price <= high:
        return 1.0
    distance = math.log(low / price) if price < low else math.log(price / high)
    return max(0.0, 1.0 - distance / PRICE_FALLOFF)


def _money(value: float) -> str:
    return f"{value:.0f}" if value >= 10 else f"{value:.2f}"


# -- diversity -------------------------------------------------------------------------------


def _check_diversity(brand_cap: int | None, dedupe_similarity: float | None) -> None:
    if brand_cap is not None and brand_cap < 1:
        msg = f"brand_cap must be at least 1 (or None: off), got {brand_cap}"
        raise ValueError(msg)
    if dedupe_similarity is not None and not 0 < dedupe_similarity <= 1:
        msg = f"dedupe_similarity must be in (0, 1] (or None: off), got {dedupe_similarity}"
        raise ValueError(msg)


def _dedupe(
    items: Sequence[Personalized],
    similarity: float | None,
    vectors: Mapping[str, np.ndarray],
) -> list[Personalized]:
    if similarity is None:
        return list(items)
    kept: list[Personalized] = []
    ids: set[str] = set()
    titles: set[str] = set()
    units: list[np.ndarray] = []  # unit vectors of the kept items that have one
    for item in items:
        title = fold(item.product.title)
        if item.product.id in ids or title in titles:
            continue
        unit = _unit(vectors.get(item.product.id))
        if unit is not None:
            same_size = [kept_unit for kept_unit in units if kept_unit.shape == unit.shape]
            if same_size and float(np.max(np.stack(same_size) @ unit)) >= similarity - 1e-6:
                continue
            units.append(unit)
        kept.append(item)
        ids.add(item.product.id)
        titles.add(title)
    return kept


def _unit(vector: np.ndarray | None) -> np.ndarray | None:
    if vector is None:
        return None
    unit = np.asarray(vector, dtype=np.float32).reshape(-1)
    norm = float(np.linalg.norm(unit))
    if not math.isfinite(norm) or norm == 0:
        return None
    return unit / norm
