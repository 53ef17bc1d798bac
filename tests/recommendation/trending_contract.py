"""What every `TrendingStore` and `PairCounts` answer; tests/integration runs them on Redis."""

from __future__ import annotations

import pytest

from personalization.events import Event
from recommendation.stores.base import ALL, DAY_S, PairCounts, TrendingConfig, TrendingStore
from retrieval.schema import Product

NOW = 1_780_000_000.0  # a fixed "now" (2026-05-28)
CONFIG = TrendingConfig(half_life_days=2.0, window_days=7)
PRODUCTS = {
    p.id: p
    for p in (
        Product(id="sony", title="Sony", category="Electronics > Audio > Headphones"),
        Product(id="jbl", title="JBL", category="Electronics > Audio > Headphones"),
        Product(id="pan", title="Pan", category="Home > Cookware"),
        Product(id="bare", title="No category"),
    )
}


def event(n: int, product: str | None, kind: str = "view", days_ago: float = 0.0) -> Event:
    return Event(
        event_id=f"e{n}",
        user_id="u1",
        type=kind,  # type: ignore[arg-type]
        at=NOW - days_ago * DAY_S,
        product_id=product,
        query="q" if product is None else None,
    )


class TrendingContract:
    """Subclass it and provide ``counts``: an empty store with `CONFIG`."""

    @pytest.fixture
    def counts(self) -> TrendingStore:
        raise NotImplementedError

    def test_weights_by_event_type_and_order(self, counts: TrendingStore) -> None:
        events = [event(1, "jbl"), event(2, "jbl"), event(3, "sony", "purchase")]
        assert counts.record(events, PRODUCTS, NOW) == 2
        assert counts.top(ALL, 10, NOW) == [("sony", 5.0), ("jbl", 2.0)]

    def test_each_category_prefix_is_a_scope(self, counts: TrendingStore) -> None:
        counts.record([event(1, "sony", "cart"), event(2, "pan"), event(3, "bare")], PRODUCTS, NOW)
        assert counts.top("electronics", 10, NOW) == [("sony", 3.0)]
        assert counts.top("electronics > audio > headphones", 10, NOW) == [("sony", 3.0)]
        assert counts.top("home > cookware", 10, NOW) == [("pan", 1.0)]
        assert counts.top(ALL, 10, NOW) == [("sony", 3.0), ("bare", 1.0), ("pan", 1.0)]
        assert counts.top("toys", 10, NOW) == []

    def test_a_day_weighs_half_each_half_life(self, counts: TrendingStore) -> None:
        counts.record(
            [event(1, "sony", "purchase", days_ago=2), event(2, "jbl", "cart")], PRODUCTS, NOW
        )
        assert counts.top(ALL, 10, NOW) == [("jbl", 3.0), ("sony", 2.5)]
        later = counts.top(ALL, 10, NOW + 2 * DAY_S)
        assert later == [("jbl", 1.5), ("sony", 1.25)]

    def test_the_window_and_the_future(self, counts: TrendingStore) -> None:
        events = [
            event(1, "sony", "purchase", days_ago=8),  # before the window: nothing
            event(2, "jbl", days_ago=-400),  # a year ahead (a wrong clock): counted as now
            event(3, "pan", "search"),  # no weight
            event(4, None, "search"),  # no product
        ]
        assert counts.record(events, PRODUCTS, NOW) == 1
        assert counts.top(ALL, 10, NOW) == [("jbl", 1.0)]
        assert counts.top(ALL, 10, NOW + 7 * DAY_S) == []  # the day has left the window

    def test_unknown_products_count_nothing_and_limit_holds(self, counts: TrendingStore) -> None:
        counts.record([event(1, "gone"), event(2, "sony"), event(3, "jbl")], PRODUCTS, NOW)
        assert counts.top(ALL, 1, NOW) == [("jbl", 1.0)]  # ties by id


class PairContract:
    """Subclass it and provide ``pairs``: an empty `PairCounts`."""

    @pytest.fixture
    def pairs(self) -> PairCounts:
        raise NotImplementedError

    def test_pairs_count_both_ways_most_first(self, pairs: PairCounts) -> None:
        pairs.add({("p:a", "p:b"): 1.0, ("p:a", "p:c"): 1.0})
        pairs.add({("p:c", "p:a"): 1.0})
        assert pairs.partners("p:a", 10) == [("p:c", 2.0), ("p:b", 1.0)]
        assert pairs.partners("p:b", 10) == [("p:a", 1.0)]
        assert pairs.partners("p:a", 1) == [("p:c", 2.0)]
        assert pairs.partners("p:none", 5) == []
        pairs.add({})  # nothing to add is nothing done
