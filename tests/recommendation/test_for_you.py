"""The diversity of a page of recommendations."""

from __future__ import annotations

import numpy as np

from personalization.ranking import PersonalConfig
from recommendation.for_you import ForYou, ForYouConfig, Recommendation
from recommendation.stores.base import TrendingConfig
from recommendation.stores.memory import MemoryTrendingStore
from recommendation.trending import Trending
from retrieval.schema import Product
from retrieval.stores.embedded import EmbeddedStore


def _item(pid: str, brand: str, category: str, score: float) -> Recommendation:
    return Recommendation(Product(id=pid, title=pid, brand=brand, category=category), score, ())


def test_brand_and_category_caps_push_items_to_the_next_page() -> None:
    store = EmbeddedStore()
    for_you = ForYou(
        store,
        Trending(MemoryTrendingStore(TrendingConfig()), store),
        PersonalConfig(),
        ForYouConfig(brand_cap=2, category_cap=3),
    )
    ranked = [
        _item("a1", "A", "Audio", 0.9),
        _item("a2", "a", "Audio", 0.8),
        _item("a3", "A", "Audio", 0.7),  # a third of brand A: waits
        _item("b1", "B", "Audio", 0.6),
        _item("b2", "B", "Audio", 0.5),  # a fourth of Audio: waits
        _item("c1", "C", "Kitchen", 0.4),
    ]
    page = for_you._diverse(ranked, {}, 4)
    assert [r.product.id for r in page] == ["a1", "a2", "b1", "c1"]
    everything = for_you._diverse(ranked, {}, 10)
    assert [r.product.id for r in everything] == ["a1", "a2", "b1", "c1", "a3", "b2"]


def test_near_duplicates_are_left_out() -> None:
    store = EmbeddedStore()
    for_you = ForYou(
        store, Trending(MemoryTrendingStore(TrendingConfig()), store), PersonalConfig()
    )
    ranked = [_item("x", "X", "A", 0.9), _item("x2", "Y", "B", 0.8), _item("z", "Z", "C", 0.7)]
    v = np.array([1.0, 0.0], np.float32)
    vectors = {"x": v, "x2": v * 2, "z": np.array([0.0, 1.0], np.float32)}
    assert [r.product.id for r in for_you._diverse(ranked, vectors, 10)] == ["x", "z"]
