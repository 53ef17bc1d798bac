"""Recommendations for one shopper ("for you"), without a query: the products nearest their
taste (the profile's preference vector), scored by how well each fits the profile (brands,
categories, price band, taste: `personal_score`), what they bought left out, a cap per brand
and per category, each with its reasons ("because you viewed …"). A shopper without a profile,
or who opted out, gets trending products, labelled as such.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from personalization.events import Event
from personalization.profile import Profile, fold
from personalization.ranking import PersonalConfig, personal_score
from recommendation.paging import check_page, page_of
from recommendation.trending import Trending
from retrieval.schema import Filters, Product
from retrieval.stores.base import DocumentStore

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ForYouConfig:
    """How recommendations are chosen."""

    candidates: int = 100  # nearest products to the taste read per request
    brand_cap: int = 2  # at most this many of one brand per page
    category_cap: int = 3  # at most this many of one category per page
    duplicate_similarity: float = 0.97  # at least this close to one shown: a variant, left out
    because_similarity: float = 0.5  # "because you viewed X" needs at least this cosine
    history: int = 50  # the shopper's recent events read for "because you …"
    # Maximal marginal relevance: each next item maximises relevance x (1 - this) minus its
    # highest cosine to those above x this (0: fit alone; chosen on simulated shoppers,
    # BENCHMARKS.md "Recommendations without a query").
    mmr_diversity: float = 0.5


@dataclass(frozen=True)
class Recommendation:
    """A product for the shopper, how well it fits (0..1) and why."""

    product: Product
    score: float
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class ForYouPage:
    """A page of recommendations; ``personalized`` False: trending products for everyone."""

    user_id: str
    items: list[Recommendation]
    page: int
    size: int
    personalized: bool


class ForYou:
    """Recommendations from a shopper's profile and events, trending ones without them."""

    def __init__(
        self,
        store: DocumentStore,
        trending: Trending,
        personal: PersonalConfig,
        config: ForYouConfig | None = None,
    ) -> None:
        self.store = store
        self.trending = trending
        self.personal = personal
        self.config = config or ForYouConfig()

    def page(
        self,
        user_id: str,
        profile: Profile | None,
        history: Sequence[Event],
        *,
        filters: Filters | None = None,
        include_bought: bool = False,
        page: int = 1,
        size: int = 10,
        now: float | None = None,
    ) -> ForYouPage:
        """A page for the shopper. ``profile`` (None: none, or opted out) and ``history``
        (their recent events, newest first) come from the profile store; ``include_bought``
        keeps what they bought (consumables)."""
        check_page(page, size)
        now = time.time() if now is None else now
        decayed = profile.decayed(now, self.personal.half_life_s) if profile else None
        preference = decayed.preference() if decayed is not None else None
        if decayed is None or decayed.is_empty() or preference is None:
            return self._popular(user_id, filters, page, size, now)
        bought = set() if include_bought else _bought(history)
        hits = self.store.semantic(
            preference,
            kinds=("product",),
            filters=filters,
            top_k=self.config.candidates + len(bought),
        )
        ids = [h.unit.product_id for h in hits if h.unit.product_id not in bought]
        recent = _recent_products(history[: self.config.history])
        products = self.store.get_products(list(dict.fromkeys([*ids, *recent])))
        vectors = {  # unit length once: every comparison below is a dot product
            pid: _unit(v) for pid, v in self.store.product_vectors([*ids, *recent]).items()
        }
        scored = []
        for product_id in ids:
            product = products.get(product_id)
            if product is None:
                continue
            vector = vectors.get(product_id)
            fit = personal_score(decayed, product, vector, self.personal)
            because = self._because(vector, history, vectors, products)
            reasons = tuple(r for r in (because, *fit.reasons) if r)
            scored.append(Recommendation(product, round(fit.score, 4), reasons))
        scored.sort(key=lambda r: (-r.score, r.product.id))
        chosen = self._diverse(self._mmr(scored, vectors, page * size), vectors, page * size)
        return ForYouPage(user_id, page_of(chosen, page, size), page, size, personalized=True)

    def _popular(
        self, user_id: str, filters: Filters | None, page: int, size: int, now: float
    ) -> ForYouPage:
        popular = self.trending.page(filters=filters, page=page, size=size, now=now)
        items = [
            Recommendation(item.product, item.score, ("popular with shoppers lately",))
            for item in popular.items
        ]
        return ForYouPage(user_id, items, page, size, personalized=False)

    def _because(
        self,
        vector: np.ndarray | None,
        history: Sequence[Event],
        vectors: dict[str, np.ndarray],
        products: dict[str, Product],
    ) -> str | None:
        """ "because you viewed/bought <the recent product most like this one>" (vectors of
        unit length)."""
        if vector is None:
            return None
        best: tuple[float, Event] | None = None
        for event in history[: self.config.history]:
            seen = vectors.get(event.product_id) if event.product_id else None
            if seen is None:
                continue
            cosine = float(np.dot(vector, seen))
            if cosine >= self.config.because_similarity and (best is None or cosine > best[0]):
                best = (cosine, event)
        product = products.get(best[1].product_id or "") if best is not None else None
        if best is None or product is None:
            return None
        verb = {"purchase": "bought", "cart": "added to your cart"}.get(best[1].type, "viewed")
        return f"because you {verb} {product.title}"

    def _mmr(
        self, ranked: list[Recommendation], vectors: dict[str, np.ndarray], needed: int
    ) -> list[Recommendation]:
        """The first ``needed`` re-ordered by maximal marginal relevance (the rest after);
        ``vectors`` of unit length."""
        weight = self.config.mmr_diversity
        if weight <= 0 or len(ranked) < 2:
            return ranked
        pool = list(ranked)
        picked: list[Recommendation] = []
        picked_vectors: list[np.ndarray] = []
        while pool and len(picked) < needed:
            best, best_value = 0, -math.inf
            for i, item in enumerate(pool):
                vector = vectors.get(item.product.id)
                closest = (
                    max((float(np.dot(vector, v)) for v in picked_vectors), default=0.0)
                    if vector is not None
                    else 0.0
                )
                value = (1 - weight) * item.score - weight * closest
                if value > best_value:
                    best, best_value = i, value
            item = pool.pop(best)
            picked.append(item)
            vector = vectors.get(item.product.id)
            if vector is not None:
                picked_vectors.append(vector)
        return picked + pool

    def _diverse(
        self, ranked: list[Recommendation], vectors: dict[str, np.ndarray], needed: int
    ) -> list[Recommendation]:
        """The ranked list with near-duplicates out (``vectors`` of unit length) and the brand
        and category caps held on every page: a capped item waits for the next page."""
        shown: list[Recommendation] = []
        waiting: list[Recommendation] = []
        brands: dict[str, int] = {}
        categories: dict[str, int] = {}
        kept_vectors: list[np.ndarray] = []
        for item in ranked:
            vector = vectors.get(item.product.id)
            if vector is not None and any(
                float(np.dot(vector, v)) >= self.config.duplicate_similarity for v in kept_vectors
            ):
                continue
            brand = fold(item.product.brand) if item.product.brand else None
            category = fold(item.product.category) if item.product.category else None
            if (brand and brands.get(brand, 0) >= self.config.brand_cap) or (
                category and categories.get(category, 0) >= self.config.category_cap
            ):
                waiting.append(item)
                continue
            shown.append(item)
            if vector is not None:
                kept_vectors.append(vector)
            if brand:
                brands[brand] = brands.get(brand, 0) + 1
            if category:
                categories[category] = categories.get(category, 0) + 1
            if len(shown) >= needed:
                break
        return (shown + waiting)[:needed]


def _bought(history: Sequence[Event]) -> set[str]:
    return {e.product_id for e in history if e.type == "purchase" and e.product_id}


def _recent_products(history: Sequence[Event]) -> list[str]:
    return list(dict.fromkeys(e.product_id for e in history if e.product_id))


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector
