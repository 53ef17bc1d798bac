"""`Profile`: decay, out-of-order events, weights, price band, taste vector, stored form."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from personalization.events import Event, EventType
from personalization.profile import Profile
from retrieval.schema import Product
from tests.personalization.helpers import DAY, HALF_LIFE, T0, event, product

ANKER = product("p-anker", "Anker", "Electronics > Audio > Headphones", 50.0)
SONY = product("p-sony", "Sony", "Electronics > Audio > Headphones", 300.0)


def apply(
    profile: Profile, ev: Event, prod: Product | None = None, vector: np.ndarray | None = None
) -> None:
    profile.apply(ev, prod, vector, half_life_s=HALF_LIFE)


class TestEvent:
    def test_round_trip(self) -> None:
        ev = event("search", at=T0 + 0.5, query="noise cancelling")
        assert Event.from_dict(json.loads(json.dumps(ev.to_dict()))) == ev

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("user_id", "bad:user"),
            ("user_id", "../etc/passwd"),
            ("user_id", ""),
            ("user_id", "x" * 129),
            ("event_id", ""),
            ("type", "like"),
            ("at", float("nan")),
            ("at", -1.0),
        ],
    )
    def test_invalid_fields_are_value_errors(self, field: str, value: object) -> None:
        data = event("view", "p1").to_dict()
        data[field] = value
        with pytest.raises(ValueError):
            Event.from_dict(data)

    def test_missing_field_is_a_value_error(self) -> None:
        with pytest.raises(ValueError, match="not an event"):
            Event.from_dict({"event_id": "e", "user_id": "u", "type": "view"})


class TestApply:
    def test_weight_halves_after_one_half_life(self) -> None:
        profile = Profile("u1")
        apply(profile, event("view", ANKER.id, at=T0), ANKER)
        assert profile.brands["anker"] == pytest.approx(1.0)
        later = profile.decayed(T0 + HALF_LIFE, HALF_LIFE)
        assert later.brands["anker"] == pytest.approx(0.5)
        assert later.updated_at == T0 + HALF_LIFE
        assert profile.brands["anker"] == pytest.approx(1.0)  # the original is unchanged

        apply(profile, event("view", SONY.id, at=T0 + 2 * HALF_LIFE), SONY)
        assert profile.brands["anker"] == pytest.approx(0.25)
        assert profile.brands["sony"] == pytest.approx(1.0)

    def test_events_in_any_order_give_the_same_profile(self) -> None:
        events = [
            (event("view", ANKER.id, at=T0), ANKER),
            (event("purchase", SONY.id, at=T0 + 10 * DAY), SONY),
            (event("cart", ANKER.id, at=T0 + 3 * DAY), ANKER),
        ]
        in_order, shuffled = Profile("u1"), Profile("u1")
        for ev, prod in sorted(events, key=lambda item: item[0].at):
            apply(in_order, ev, prod)
        for ev, prod in events:
            apply(shuffled, ev, prod)
        assert shuffled.updated_at == in_order.updated_at == T0 + 10 * DAY
        for key in ("anker", "sony"):
            assert shuffled.brands[key] == pytest.approx(in_order.brands[key])
        assert shuffled.price_log_sum == pytest.approx(in_order.price_log_sum)
        # the view 10 days before the newest event counts 2 ** (-10 / 30)
        assert in_order.brands["anker"] == pytest.approx(2 ** (-1 / 3) + 3 * 2 ** (-7 / 30))

    def test_a_purchase_counts_more_than_a_view(self) -> None:
        profile = Profile("u1")
        apply(profile, event("purchase", ANKER.id), ANKER)
        apply(profile, event("view", SONY.id), SONY)
        assert profile.brands == pytest.approx({"anker": 5.0, "sony": 1.0})
        assert profile.brand_buys == pytest.approx({"anker": 5.0})
        assert profile.top_brands(1) == [("Anker", pytest.approx(5.0))]

    def test_custom_weights(self) -> None:
        profile = Profile("u1")
        profile.apply(
            event("view", ANKER.id), ANKER, None, half_life_s=HALF_LIFE, weights={"view": 2.5}
        )
        assert profile.brands["anker"] == pytest.approx(2.5)

    def test_search_and_productless_events_only_count(self) -> None:
        profile = Profile("u1")
        apply(profile, event("search", query="headphones", at=T0 + 1))
        apply(profile, event("view", "unknown-product", at=T0 + 2))  # product not in catalog
        assert profile.events == 2
        assert profile.is_empty()
        assert profile.updated_at == T0 + 2

    def test_every_category_level_counts_case_insensitively(self) -> None:
        profile = Profile("u1")
        apply(profile, event("view", "a"), product("a", "ANKER", "Electronics > Audio"))
        apply(profile, event("view", "b"), product("b", "anker", "electronics/audio/Headphones"))
        assert profile.categories == pytest.approx(
            {
                "electronics": 2.0,
                "electronics > audio": 2.0,
                "electronics > audio > headphones": 1.0,
            }
        )
        assert profile.brands == pytest.approx({"anker": 2.0})
        assert profile.labels["anker"] == "anker"  # the last spelling seen
        assert profile.top_categories(2) == [
            ("electronics", pytest.approx(2.0)),
            ("electronics > audio", pytest.approx(2.0)),
        ]

    def test_missing_parts_are_skipped_one_by_one(self) -> None:
        profile = Profile("u1")
        apply(profile, event("view", "bare"), product("bare"), np.array([0.0, 0.0]))
        assert (profile.brands, profile.categories, profile.price_weight) == ({}, {}, 0.0)
        assert profile.preference() is None  # a zero vector is no taste
        apply(profile, event("view", "priced"), product("priced", price=20.0))
        assert profile.price_weight == pytest.approx(1.0)
        assert profile.brands == {}

    def test_an_event_of_another_user_is_refused(self) -> None:
        with pytest.raises(ValueError, match="another user"):
            apply(Profile("u1"), event("view", ANKER.id, user="u2"), ANKER)

    def test_the_half_life_must_be_positive(self) -> None:
        with pytest.raises(ValueError, match="half-life"):
            Profile("u1").apply(event("view"), None, None, half_life_s=0)


class TestReading:
    def test_price_band_around_one_price(self) -> None:
        profile = Profile("u1")
        apply(profile, event("view", "a"), product("a", price=40.0))
        assert profile.price_band() is None  # one view is too little to go on
        apply(profile, event("view", "a"), product("a", price=40.0))
        band = profile.price_band()
        assert band is not None
        assert band == pytest.approx((32.0, 50.0))  # 40 / 1.25 .. 40 * 1.25

    def test_price_band_follows_the_spread(self) -> None:
        profile = Profile("u1")
        apply(profile, event("purchase", "a"), product("a", price=20.0))
        apply(profile, event("purchase", "b"), product("b", price=80.0))
        # log-mean: 40; log-std: log 2
        assert profile.price_band() == pytest.approx((20.0, 80.0))

    def test_preference_is_the_weighted_mean_direction(self) -> None:
        profile = Profile("u1")
        apply(profile, event("view", "a"), product("a"), np.array([3.0, 0.0]))
        apply(profile, event("view", "b"), product("b"), np.array([0.0, 0.5]))
        pref = profile.preference()
        assert pref is not None
        np.testing.assert_allclose(pref, [math.sqrt(0.5), math.sqrt(0.5)], rtol=1e-6)
        apply(profile, event("purchase", "b"), product("b"), np.array([0.0, 0.5]))
        pref = profile.preference()
        assert pref is not None
        assert pref[1] > pref[0]

    def test_a_new_embedding_size_restarts_the_taste_vector(self) -> None:
        profile = Profile("u1")
        apply(profile, event("view", "a"), product("a"), np.array([1.0, 0.0]))
        apply(profile, event("view", "b"), product("b"), np.array([0.0, 0.0, 2.0]))
        pref = profile.preference()
        assert pref is not None
        np.testing.assert_allclose(pref, [0.0, 0.0, 1.0])
        assert profile.vector_weight == pytest.approx(1.0)

    def test_prune_keeps_the_strongest(self) -> None:
        profile = Profile("u1")
        kinds: list[EventType] = ["view", "cart", "purchase"]
        for i, kind in enumerate(kinds):
            prod = product(f"p{i}", f"Brand{i}", f"Cat{i}")
            apply(profile, event(kind, prod.id), prod)
        profile.prune(2)
        assert set(profile.brands) == {"brand1", "brand2"}
        assert set(profile.categories) == {"cat1", "cat2"}
        assert set(profile.brand_buys) == {"brand1", "brand2"}
        assert set(profile.labels) == {"brand1", "brand2", "cat1", "cat2"}

    def test_prune_forgets_what_decayed_away(self) -> None:
        profile = Profile("u1")
        apply(profile, event("view", "a", at=T0), product("a", "Old"))
        apply(profile, event("view", "b", at=T0 + 20 * HALF_LIFE), product("b", "New"))
        profile.prune(10)
        assert set(profile.brands) == {"new"}

    def test_summary_scales_affinities(self) -> None:
        profile = Profile("u1")
        apply(profile, event("purchase", ANKER.id), ANKER)
        apply(profile, event("view", SONY.id), SONY)
        summary = profile.summary()
        assert summary["events"] == 2
        assert summary["brands"] == [
            {"name": "Anker", "affinity": 1.0},
            {"name": "Sony", "affinity": 0.2},
        ]
        assert summary["categories"][0] == {"name": "Electronics", "affinity": 1.0}
        assert summary["price_band"] is not None
        assert json.loads(json.dumps(summary)) == summary

    def test_stored_form_round_trips_exactly(self) -> None:
        profile = Profile("u1")
        rng = np.random.default_rng(0)
        for i, prod in enumerate([ANKER, SONY, ANKER]):
            apply(profile, event("cart", prod.id, at=T0 + i * 1234.5), prod, rng.normal(size=8))
        restored = Profile.from_dict(json.loads(json.dumps(profile.to_dict())))
        assert restored == profile
        assert restored.vector_sum is not None and profile.vector_sum is not None
        assert restored.vector_sum.dtype == np.float32
        assert restored.vector_sum.tobytes() == profile.vector_sum.tobytes()
        assert restored != Profile("u1")
        apart = profile.to_dict(vector=False)  # a store that keeps the vector apart
        assert "vector_sum" not in apart
        assert {**apart, "vector_sum": profile.to_dict()["vector_sum"]} == profile.to_dict()

    def test_the_taste_vector_stays_float32_and_weighted_by_unit_vectors(self) -> None:
        profile = Profile("u1")
        apply(profile, event("view", ANKER.id), ANKER, np.array([3.0, 4.0], dtype=np.float64))
        apply(profile, event("view", SONY.id), SONY, np.array([0.0, 2.0], dtype=np.float32))
        assert profile.vector_sum is not None and profile.vector_sum.dtype == np.float32
        np.testing.assert_allclose(profile.vector_sum, [0.6, 1.8], rtol=1e-6)
        before = profile.vector_sum.copy()
        apply(profile, event("view", SONY.id), SONY, np.zeros(2))  # no direction: skipped
        np.testing.assert_array_equal(profile.vector_sum, before)

    def test_another_format_version_is_refused(self) -> None:
        data = Profile("u1").to_dict()
        data["version"] = 99
        with pytest.raises(ValueError, match="version"):
            Profile.from_dict(data)
