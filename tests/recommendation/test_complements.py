"""What goes with a product, counted from carts and purchases, on the test catalog."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import pytest

from personalization.events import Event
from personalization.stores.base import ProfileStoreUnavailable
from recommendation.complements import Complements
from recommendation.stores.base import DAY_S
from recommendation.stores.memory import MemoryPairCounts
from retrieval.schema import Filters, Product
from retrieval.stores.base import StoreUnavailable
from retrieval.stores.embedded import EmbeddedStore

NOW = 1_780_000_000.0


def buy(
    n: int, product: str, user: str = "u1", days_ago: float = 0.0, kind: str = "purchase"
) -> Event:
    return Event(
        event_id=f"{user}-{n}",
        user_id=user,
        type=kind,  # type: ignore[arg-type]
        at=NOW - days_ago * DAY_S,
        product_id=product,
    )


class Shoppers:
    """Stored events per shopper, as a profile store would return them."""

    def __init__(self) -> None:
        self.stored: dict[str, list[Event]] = {}

    def history(self, user_id: str) -> Sequence[Event]:
        return list(reversed(self.stored.get(user_id, [])))

    def record(self, complements: Complements, events: list[Event]) -> int:
        for e in events:  # the profile store applies events before complements read them
            self.stored.setdefault(e.user_id, []).append(e)
        return complements.record(events, self.history)


@pytest.fixture
def complements(store: EmbeddedStore) -> Complements:
    return Complements(MemoryPairCounts(), store)


def test_bought_together_never_the_same_kind(complements: Complements) -> None:
    shoppers = Shoppers()
    shoppers.record(complements, [buy(1, "hp-sony")])
    shoppers.record(complements, [buy(2, "pan-lodge", kind="cart"), buy(3, "hp-jbl")])
    shoppers.record(complements, [buy(1, "pan-lodge", user="u2"), buy(2, "hp-sony", user="u2")])
    page = complements.page("hp-sony")
    assert page is not None and page.source == "together"
    assert [c.product.id for c in page.items] == ["pan-lodge"]  # JBL: headphones too
    assert page.items[0].score == 2.0
    assert page.items[0].reason.startswith("carted or bought together with Sony")
    assert page.items[0].reason.endswith("2 times")


def test_views_and_buys_far_apart_do_not_pair(complements: Complements) -> None:
    shoppers = Shoppers()
    shoppers.record(complements, [buy(1, "hp-sony", days_ago=40)])
    shoppers.record(complements, [buy(2, "pan-lodge"), buy(3, "shoe-pegasus", kind="view")])
    page = complements.page("pan-lodge")
    assert page is not None and page.items == [] and page.source == "none"


def test_a_product_without_history_gets_its_categorys_partners(
    complements: Complements,
) -> None:
    shoppers = Shoppers()
    shoppers.record(complements, [buy(1, "hp-sony"), buy(2, "pan-lodge")])
    page = complements.page("hp-anker")  # headphones nobody bought: headphones go with skillets
    assert page is not None and page.source == "categories"
    assert [c.product.id for c in page.items] == ["pan-lodge"]
    assert page.items[0].reason == "shoppers who buy Headphones also buy Skillets"


def test_filters_paging_and_unknown_products(complements: Complements) -> None:
    shoppers = Shoppers()
    shoppers.record(complements, [buy(1, "hp-jbl"), buy(2, "pan-lodge"), buy(3, "shoe-pegasus")])
    page = complements.page("hp-jbl", filters=Filters(price_max=100))
    assert page is not None and [c.product.id for c in page.items] == ["pan-lodge"]
    second = complements.page("hp-jbl", size=1, page=2)
    assert second is not None and len(second.items) == 1
    assert complements.page("nope") is None
    with pytest.raises(ValueError, match="page and size"):
        complements.page("hp-jbl", size=0)


def test_a_profile_store_that_is_down_loses_only_the_pairs(
    complements: Complements, caplog: pytest.LogCaptureFixture
) -> None:
    def down(user_id: str) -> Sequence[Event]:
        raise ProfileStoreUnavailable("redis is down")

    with caplog.at_level(logging.WARNING):
        assert complements.record([buy(1, "hp-sony")], down) == 0
    assert "pairs not counted" in caplog.text


def test_a_catalog_that_is_down_loses_only_the_pairs(
    store: EmbeddedStore, caplog: pytest.LogCaptureFixture
) -> None:
    class DownCatalog:
        def __getattr__(self, name: str) -> Any:
            return getattr(store, name)

        def get_products(self, ids: Sequence[str]) -> dict[str, Product]:
            raise StoreUnavailable("Elasticsearch is stalled")

    complements = Complements(MemoryPairCounts(), DownCatalog())  # type: ignore[arg-type]
    shoppers = Shoppers()
    with caplog.at_level(logging.WARNING):
        shoppers.record(complements, [buy(1, "hp-sony")])
        assert complements.record([buy(2, "pan-lodge")], shoppers.history) == 0
    assert "pairs not counted" in caplog.text
