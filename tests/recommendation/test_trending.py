"""Trending counts in process and in a file, and the trending service over the test catalog."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from personalization.events import Event
from recommendation.stores.base import ALL, TrendingConfig, TrendingUnavailable
from recommendation.stores.memory import MemoryPairCounts, MemoryTrendingStore
from recommendation.trending import Trending
from retrieval.schema import Filters, Product
from retrieval.stores.embedded import EmbeddedStore
from tests.recommendation.trending_contract import (
    CONFIG,
    NOW,
    PRODUCTS,
    PairContract,
    TrendingContract,
    event,
)


class TestMemoryStore(TrendingContract):
    @pytest.fixture
    def counts(self) -> MemoryTrendingStore:
        return MemoryTrendingStore(CONFIG)


class TestMemoryPairs(PairContract):
    @pytest.fixture
    def pairs(self) -> MemoryPairCounts:
        return MemoryPairCounts()


def test_pairs_survive_a_restart(tmp_path: Path) -> None:
    MemoryPairCounts(tmp_path / "together.json").add({("p:a", "p:b"): 1.0})
    assert MemoryPairCounts(tmp_path / "together.json").partners("p:b", 5) == [("p:a", 1.0)]


def test_the_file_keeps_counts_across_restarts(tmp_path: Path) -> None:
    path = tmp_path / "trending.json"
    MemoryTrendingStore(CONFIG, path).record([event(1, "sony", "cart")], PRODUCTS, NOW)
    assert MemoryTrendingStore(CONFIG, path).top(ALL, 5, NOW) == [("sony", 3.0)]


def test_a_damaged_file_starts_empty_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "trending.json"
    path.write_text("{not json", encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        store = MemoryTrendingStore(CONFIG, path)
    assert store.top(ALL, 5, NOW) == [] and "unreadable" in caplog.text
    store.record([event(1, "jbl")], PRODUCTS, NOW)
    assert MemoryTrendingStore(CONFIG, path).top(ALL, 5, NOW) == [("jbl", 1.0)]


def test_the_config_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="half_life_days"):
        TrendingConfig(half_life_days=0)
    with pytest.raises(ValueError, match="window_days"):
        TrendingConfig(window_days=0)


def _shopper(n: int, product: str, kind: str = "view") -> Event:
    return Event(event_id=f"s{n}", user_id="u", type=kind, at=NOW, product_id=product)  # type: ignore[arg-type]


class TestTrending:
    @pytest.fixture
    def trending(self, store: EmbeddedStore) -> Trending:
        return Trending(MemoryTrendingStore(TrendingConfig()), store)

    def test_pages_filters_and_reasons(self, trending: Trending) -> None:
        events = [
            _shopper(1, "hp-jbl", "purchase"),
            _shopper(2, "hp-sony", "cart"),
            _shopper(3, "pan-lodge"),
            _shopper(4, "zh-huawei"),
        ]
        assert trending.record(events, now=NOW) == 4
        page = trending.page(now=NOW)
        assert [i.product.id for i in page.items] == ["hp-jbl", "hp-sony", "pan-lodge", "zh-huawei"]
        assert page.items[0].score == 5.0 and page.items[0].reason.startswith("popular lately")
        audio = trending.page(category="Electronics > Audio", now=NOW)
        assert [i.product.id for i in audio.items] == ["hp-jbl", "hp-sony"]
        assert audio.items[0].reason.startswith("popular in Electronics > Audio lately")
        in_stock = trending.page(filters=Filters(in_stock=True), size=2, page=1, now=NOW)
        assert [i.product.id for i in in_stock.items] == ["hp-sony", "pan-lodge"]  # JBL is out
        second = trending.page(filters=Filters(in_stock=True), size=2, page=2, now=NOW)
        assert [i.product.id for i in second.items] == ["zh-huawei"]

    def test_products_gone_from_the_catalog_are_left_out(self, store: EmbeddedStore) -> None:
        counts = MemoryTrendingStore(TrendingConfig())
        gone = {"old": Product(id="old", title="Old", category="Electronics")}
        counts.record([_shopper(1, "old", "purchase")], gone, NOW)
        trending = Trending(counts, store)
        trending.record([_shopper(2, "hp-sony")], now=NOW)
        assert [i.product.id for i in trending.page(now=NOW).items] == ["hp-sony"]

    def test_counts_that_cannot_be_written_lose_only_themselves(
        self, store: EmbeddedStore, caplog: pytest.LogCaptureFixture
    ) -> None:
        class Down(MemoryTrendingStore):
            def record(self, *args: object, **kwargs: object) -> int:
                raise TrendingUnavailable("redis is down")

        trending = Trending(Down(TrendingConfig()), store)
        with caplog.at_level(logging.WARNING):
            assert trending.record([_shopper(1, "hp-sony")], now=NOW) == 0
        assert "not updated" in caplog.text

    def test_bad_paging_is_a_value_error(self, trending: Trending) -> None:
        with pytest.raises(ValueError, match="page and size"):
            trending.page(page=0)
