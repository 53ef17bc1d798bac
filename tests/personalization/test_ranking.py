"""Personal scores, the bounded re-ranking, and diversity."""

from __future__ import annotations

import numpy as np
import pytest

from personalization.events import EventType
from personalization.profile import Profile
from personalization.ranking import (
    PersonalConfig,
    Personalized,
    diversify,
    personal_score,
    personalize,
)
from retrieval.schema import Product
from tests.personalization.helpers import HALF_LIFE, event, product

HEADPHONES = "Electronics > Audio > Headphones"


def profile_of(*engaged: tuple[EventType, Product, np.ndarray | None]) -> Profile:
    profile = Profile("u1")
    for kind, prod, vector in engaged:
        profile.apply(event(kind, prod.id), prod, vector, half_life_s=HALF_LIFE)
    return profile


def brand_only(brand: str, kind: EventType = "purchase") -> Profile:
    """A profile that knows one brand and nothing else."""
    return profile_of((kind, product("seen", brand), None))


def catalog(n: int, brand: str = "Other") -> list[tuple[str, Product]]:
    return [(f"k{i}", product(f"p{i}", brand)) for i in range(1, n + 1)]


def order(items: list[Personalized]) -> list[str]:
    return [item.key for item in items]


class TestPersonalScore:
    def test_brand_reasons_say_buy_or_view(self) -> None:
        bought = personal_score(brand_only("Anker", "purchase"), product("x", "ANKER"), None)
        assert bought.score == pytest.approx(1.0)
        assert bought.parts == {"brand": 1.0}
        assert bought.reasons == ["you often buy ANKER"]
        viewed = personal_score(brand_only("Anker", "view"), product("x", "anker"), None)
        assert viewed.reasons == ["you often view anker"]
        other = personal_score(brand_only("Anker"), product("x", "Sony"), None)
        assert (other.score, other.reasons) == (0.0, [])

    def test_views_outweighing_purchases_read_as_view(self) -> None:
        anker = product("a", "Anker")
        profile = profile_of(("purchase", anker, None), *[("view", anker, None)] * 6)
        assert personal_score(profile, anker, None).reasons == ["you often view Anker"]

    def test_deepest_category_level_counts(self) -> None:
        profile = profile_of(("view", product("a", category=HEADPHONES), None))
        same = personal_score(profile, product("b", category=HEADPHONES.upper()), None)
        assert same.parts["category"] == pytest.approx(1.0)
        assert same.reasons == ["you often shop in HEADPHONES"]
        sibling = personal_score(
            profile, product("c", category="Electronics > Audio > Speakers"), None
        )
        assert sibling.parts["category"] == pytest.approx(2 / 3)  # matched 2 of 3 levels
        assert sibling.reasons == ["you often shop in Audio"]
        far = personal_score(profile, product("d", category="Garden > Tools"), None)
        assert far.parts["category"] == 0.0

    def test_price_inside_the_band_and_falling_off_outside(self) -> None:
        profile = profile_of(("purchase", product("a", price=40.0), None))  # band 32..50
        inside = personal_score(profile, product("b", price=45.0), None)
        assert inside.parts == {"price": 1.0}
        assert inside.reasons == ["matches your usual price range (32–50)"]
        assert personal_score(profile, product("c", price=70.7), None).parts["price"] == (
            pytest.approx(0.5, abs=0.01)  # sqrt(2) beyond the band's top
        )
        assert personal_score(profile, product("d", price=200.0), None).parts["price"] == 0.0
        assert personal_score(profile, product("e"), None).parts["price"] == 0.0

    def test_vector_mapping_and_reason(self) -> None:
        profile = profile_of(("view", product("a"), np.array([1.0, 0.0])))
        assert profile.price_band() is None
        close = personal_score(profile, product("b"), np.array([2.0, 0.1]))
        assert close.parts["vector"] == pytest.approx(1.0)
        assert close.reasons == ["similar to products you engaged with"]
        cos = 0.5  # (0.5 - 0.2) / 0.6
        half = personal_score(profile, product("c"), np.array([cos, np.sqrt(1 - cos**2)]))
        assert half.parts["vector"] == pytest.approx(0.5)
        assert personal_score(profile, product("d"), None).parts["vector"] == 0.0
        assert personal_score(profile, product("e"), np.array([1.0, 0, 0])).score == 0.0

    def test_mix_of_parts_in_zero_one(self) -> None:
        anker = product("a", "Anker", HEADPHONES, 50.0)
        profile = profile_of(("purchase", anker, np.array([1.0, 0.0])))
        config = PersonalConfig()
        full = personal_score(profile, anker, np.array([1.0, 0.0]), config)
        assert full.score == pytest.approx(1.0)
        assert set(full.parts) == {"vector", "brand", "category", "price"}
        assert full.reasons[0] == "similar to products you engaged with"  # biggest weight
        brand_only_match = personal_score(profile, product("b", "anker"), None, config)
        expected = config.brand_part / (
            config.vector_part + config.brand_part + config.category_part + config.price_part
        )
        assert brand_only_match.score == pytest.approx(expected)


class TestPersonalize:
    def test_cold_start_keeps_the_relevance_order(self) -> None:
        candidates = catalog(30)
        for profile in (None, Profile("u1"), profile_of(("view", product("x"), None))):
            result = personalize(candidates, profile, {})
            assert order(result) == [key for key, _ in candidates]
            assert all(item.personal is None and item.moved == 0 for item in result)
            assert [item.rank for item in result] == list(range(1, 31))

    def test_zero_weight_is_off(self) -> None:
        result = personalize(catalog(5), brand_only("Other"), {}, PersonalConfig(weight=0))
        assert all(item.personal is None for item in result)

    def test_a_result_below_the_depth_never_moves(self) -> None:
        candidates = catalog(10)
        candidates[7] = ("loved", product("loved", "Anker"))  # rank 8, below depth 5
        result = personalize(candidates, brand_only("Anker"), {}, PersonalConfig(depth=5))
        assert order(result) == [key for key, _ in candidates]
        assert result[7].personal is None and result[7].moved == 0

    def test_the_rise_is_bounded_and_ties_keep_relevance(self) -> None:
        candidates = catalog(25)
        candidates[19] = ("loved", product("loved", "Anker"))  # rank 20 of depth 20
        config = PersonalConfig(weight=0.3, depth=20)
        result = personalize(candidates, brand_only("Anker"), {}, config)
        loved = next(item for item in result if item.key == "loved")
        # 1 - 19/20 + 0.3 = 0.35 ties with rank 14 (1 - 13/20), which stays ahead
        assert (loved.relevance_rank, loved.rank, loved.moved) == (20, 15, 5)
        assert loved.moved <= config.weight * config.depth
        assert loved.personal is not None and loved.personal.reasons == ["you often buy Anker"]
        assert [item.moved for item in result[14:20]] == [5, -1, -1, -1, -1, -1]
        assert order(result)[20:] == [key for key, _ in candidates[20:]]

    def test_the_top_result_can_fall(self) -> None:
        candidates = [("a", product("a", "Sony")), ("b", product("b", "Anker"))]
        result = personalize(
            candidates, brand_only("Anker"), {}, PersonalConfig(weight=0.6, depth=2)
        )
        assert order(result) == ["b", "a"]
        assert [item.moved for item in result] == [1, -1]

    def test_equal_scores_keep_relevance_order(self) -> None:
        candidates = [(f"k{i}", product(f"p{i}", "Anker")) for i in range(1, 6)]
        result = personalize(candidates, brand_only("Anker"), {})
        assert order(result) == ["k1", "k2", "k3", "k4", "k5"]
        assert all(item.personal is not None for item in result)

    def test_vectors_are_looked_up_by_product_id(self) -> None:
        profile = profile_of(("view", product("seen"), np.array([1.0, 0.0])))
        candidates = [("k1", product("far")), ("k2", product("near"))]
        vectors = {"far": np.array([0.0, 1.0]), "near": np.array([1.0, 0.0])}
        result = personalize(candidates, profile, vectors, PersonalConfig(weight=0.6, depth=2))
        assert order(result) == ["k2", "k1"]


class TestDiversify:
    def items(self, brands: list[str | None]) -> list[Personalized]:
        candidates = [(f"k{i}", product(f"p{i}", b)) for i, b in enumerate(brands, start=1)]
        return personalize(candidates, None, {})

    def test_brand_cap_pushes_the_excess_after_the_page(self) -> None:
        items = self.items(["Anker", "anker", "ANKER", "Sony", None, None, None, "Anker"])
        result = diversify(items, page_size=4, brand_cap=2)
        assert order(result.items) == ["k1", "k2", "k4", "k5", "k3", "k6", "k7", "k8"]
        assert (result.removed, result.pushed) == (0, 1)
        assert [item.rank for item in result.items] == list(range(1, 9))
        assert result.items[4].moved == -2

    def test_products_without_a_brand_are_never_capped(self) -> None:
        items = self.items([None, None, None, None])
        result = diversify(items, page_size=4, brand_cap=1)
        assert order(result.items) == ["k1", "k2", "k3", "k4"]
        assert result.pushed == 0

    def test_off_by_default(self) -> None:
        items = self.items(["Anker"] * 4)
        result = diversify(items, page_size=2)
        assert order(result.items) == order(items)
        assert (result.removed, result.pushed) == (0, 0)

    def test_near_duplicates_are_removed(self) -> None:
        candidates = [
            ("k1", product("p1", title="Anker Q30 Headphones")),
            ("k2", product("p2", title="anker  q30 HEADPHONES")),  # same title
            ("k3", product("p3", title="Anker Q30 (black)")),  # near-identical vector
            ("k4", product("p4", title="Sony XM5")),
            ("k5", product("p5", title="Sony XM5 case")),  # no vector: kept
        ]
        vectors = {
            "p1": np.array([1.0, 0.0, 0.0]),
            "p2": np.array([0.0, 1.0, 0.0]),
            "p3": np.array([0.99, 0.05, 0.0]),
            "p4": np.array([0.0, 0.0, 1.0]),
        }
        items = personalize(candidates, None, vectors)
        result = diversify(items, page_size=3, dedupe_similarity=0.97, vectors=vectors)
        assert order(result.items) == ["k1", "k4", "k5"]
        assert (result.removed, result.pushed) == (2, 0)
        assert [item.rank for item in result.items] == [1, 2, 3]
        kept = diversify(items, page_size=3, dedupe_similarity=1.0, vectors=vectors)
        assert order(kept.items) == ["k1", "k3", "k4", "k5"]  # only the same title goes

    def test_after_personalization(self) -> None:
        candidates = [
            ("k1", product("p1", "Sony")),
            ("k2", product("p2", "Anker")),
            ("k3", product("p3", "Anker")),
            ("k4", product("p4", "Anker")),
        ]
        config = PersonalConfig(weight=1.0, depth=4)
        ranked = personalize(candidates, brand_only("Anker"), {}, config)
        assert order(ranked) == ["k2", "k3", "k4", "k1"]
        result = diversify(ranked, page_size=3, brand_cap=2)
        assert order(result.items) == ["k2", "k3", "k1", "k4"]
        assert [item.moved for item in result.items] == [1, 1, -2, 0]

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"page_size": 0},
            {"page_size": 3, "brand_cap": 0},
            {"page_size": 3, "dedupe_similarity": 1.5},
        ],
    )
    def test_invalid_settings(self, kwargs: dict[str, float]) -> None:
        with pytest.raises(ValueError):
            diversify([], **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"weight": -0.1},
        {"depth": 0},
        {"half_life_days": 0},
        {"brand_cap": 0},
        {"dedupe_similarity": 0.0},
        {"vector_part": 0, "brand_part": 0, "category_part": 0, "price_part": 0},
    ],
)
def test_config_is_validated(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        PersonalConfig(**kwargs)  # type: ignore[arg-type]


def test_config_half_life_in_seconds() -> None:
    assert PersonalConfig(half_life_days=1.5).half_life_s == 129_600.0
