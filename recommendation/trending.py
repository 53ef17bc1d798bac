"""Trending products: the most viewed, carted and bought lately, in the catalog or a category,
from the events shoppers send (`POST /events`), counted once each and decayed by age."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from personalization.events import Event
from recommendation.paging import check_page, page_of
from recommendation.stores.base import ALL, TrendingStore, TrendingUnavailable, scope_of
from retrieval.schema import Filters, Product
from retrieval.stores.base import DocumentStore, StoreUnavailable

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrendingItem:
    """A trending product, its decayed weighted count and why it is shown."""

    product: Product
    score: float
    reason: str


@dataclass(frozen=True)
class TrendingPage:
    """A page of trending products."""

    category: str | None
    items: list[TrendingItem]
    page: int
    size: int


class Trending:
    """Counts events into a `TrendingStore` and reads pages of trending products."""

    def __init__(self, counts: TrendingStore, store: DocumentStore) -> None:
        self.counts = counts
        self.store = store

    def record(
        self,
        events: Sequence[Event],
        products: Mapping[str, Product] | None = None,
        now: float | None = None,
    ) -> int:
        """Count events that profiles applied (each once; opted-out shoppers' never reach
        here); ``products`` holds theirs where the caller has them already. The aggregate
        store or the catalog being down loses these counts, logged, and fails nothing."""
        ids = sorted({e.product_id for e in events if e.product_id is not None})
        if not ids:
            return 0
        try:
            if products is None or not set(ids) <= products.keys():
                products = self.store.get_products(ids)
            return self.counts.record(events, products, time.time() if now is None else now)
        except (TrendingUnavailable, StoreUnavailable) as exc:
            logger.warning("trending counts not updated for %d events: %s", len(events), exc)
            return 0

    def page(
        self,
        *,
        category: str | None = None,
        filters: Filters | None = None,
        page: int = 1,
        size: int = 10,
        now: float | None = None,
    ) -> TrendingPage:
        """A page of the catalog's (or ``category``'s) trending products passing ``filters``.
        `TrendingUnavailable` when the aggregate store is down."""
        check_page(page, size)
        scope = scope_of(category)
        needed = page * size
        # filters are applied after the counts: read well past the page
        top = self.counts.top(scope, max(4 * needed, 100), time.time() if now is None else now)
        products = self.store.get_products([pid for pid, _ in top])
        half_life = self.counts.config.half_life_days
        where = f" in {category.strip()}" if scope != ALL and category else ""
        reason = f"popular{where} lately (views, carts and purchases; half-life {half_life:g} d)"
        items = [
            TrendingItem(products[pid], score, reason)
            for pid, score in top
            if pid in products and (filters is None or filters.matches(products[pid]))
        ]
        return TrendingPage(category, page_of(items, page, size), page, size)
