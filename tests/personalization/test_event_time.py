"""Event time: the accepted window, profiles dated in the future repaired, and the profile
update's invariants over any accepted sequence (property-based)."""

from __future__ import annotations

import logging
import math
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from personalization.events import EVENT_WEIGHTS, Event, EventWindow
from personalization.profile import Profile
from personalization.stores.base import StoreLimits, apply_new
from tests.personalization.helpers import DAY, HALF_LIFE, T0, event, product

WINDOW = EventWindow(clock_skew_s=300, retention_s=180 * DAY)
PRODUCTS = {
    "sony": product("sony", "Sony", "Electronics > Audio", 348.0),
    "asus": product("asus", "ASUS", "Electronics > Laptops", 1299.0),
    "lodge": product("lodge", "Lodge", "Kitchen > Pans", 39.9),
    "jbl": product("jbl", "JBL", "Electronics > Audio", 29.9),
}
VECTORS = {
    pid: (v / np.linalg.norm(v)).astype(np.float32)
    for pid, v in zip(PRODUCTS, np.eye(4, 8, dtype=np.float32) + 0.1, strict=True)
}
LIMITS = StoreLimits(half_life_s=HALF_LIFE)


class TestWindow:
    @pytest.mark.parametrize(
        ("offset", "refused"),
        [
            (0.0, None),
            (299.0, None),  # a phone's clock a little ahead
            (301.0, "in the future"),
            (1e12, "in the future"),
            (-179 * DAY, None),
            (-181 * DAY, "older than the profile retention (180 days)"),
        ],
    )
    def test_refusals_say_why(self, offset: float, refused: str | None) -> None:
        reason = WINDOW.refusal(T0 + offset, T0)
        if refused is None:
            assert reason is None
        else:
            assert reason is not None and refused in reason

    def test_the_future_reason_names_both_times(self) -> None:
        reason = WINDOW.refusal(253402300799.0, T0)
        assert reason is not None
        assert "9999-12-31T23:59:59Z" in reason and "2023-11-14T22:13:20Z" in reason

    @pytest.mark.parametrize(
        "values", [{"clock_skew_s": -1}, {"clock_skew_s": 2 * DAY}, {"retention_s": 0}]
    )
    def test_a_window_that_makes_no_sense_is_refused(self, values: dict[str, float]) -> None:
        with pytest.raises(ValueError, match="clock-skew"):
            EventWindow(**values)


class TestRepair:
    def test_a_profile_dated_in_the_future_is_repaired_when_read_and_logged(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        frozen = Profile("u1")
        for at in (T0, T0 + DAY):
            frozen.apply(
                event("purchase", "sony", at=at), PRODUCTS["sony"], None, half_life_s=HALF_LIFE
            )
        frozen.apply(  # what one event dated in the year 9999 did before the window
            event("view", "sony", at=253402300799.0), PRODUCTS["sony"], None, half_life_s=HALF_LIFE
        )
        with caplog.at_level(logging.WARNING, logger="personalization.profile"):
            read = Profile.from_dict(frozen.to_dict())
        assert read.updated_at <= T0 + 10 * 365 * DAY  # back to the present
        [record] = [r for r in caplog.records if "repaired" in r.getMessage()]
        user = record.__dict__["user"]
        assert user != "u1" and len(user) == 16  # hashed
        # the shopper is no longer frozen: a purchase now counts in full
        now = read.updated_at
        read.apply(event("purchase", "asus", at=now), PRODUCTS["asus"], None, half_life_s=HALF_LIFE)
        assert read.brands["asus"] == pytest.approx(EVENT_WEIGHTS["purchase"])
        assert read.brands["asus"] > read.brands["sony"]

    def test_a_profile_of_the_present_is_left_alone(self) -> None:
        profile = Profile("u1")
        profile.apply(event("view", "sony", at=T0), PRODUCTS["sony"], None, half_life_s=HALF_LIFE)
        assert not profile.repair_future(T0)
        assert Profile.from_dict(profile.to_dict()).updated_at == T0


# -- properties of the profile update over any accepted sequence ------------------------------

_event = st.builds(
    lambda kind, pid, offset: (kind, pid, offset),
    st.sampled_from(["view", "click", "cart", "purchase", "search"]),
    st.sampled_from(sorted(PRODUCTS)),
    st.floats(min_value=-179 * DAY, max_value=300.0, allow_nan=False),
)


def _events(raw: list[tuple[str, str, float]]) -> list[Event]:
    return [
        Event(
            event_id=f"e{i}",
            user_id="u1",
            type=kind,  # type: ignore[arg-type]
            at=T0 + offset,
            product_id=None if kind == "search" else pid,
            query="q" if kind == "search" else None,
        )
        for i, (kind, pid, offset) in enumerate(raw)
    ]


def _profile(arrivals: list[list[Event]]) -> Profile:
    """The profile after the batches arrive in this order (ids seen across batches)."""
    profile, seen = Profile("u1"), set[str]()
    for batch in arrivals:
        apply_new(profile, batch, seen, PRODUCTS, VECTORS, LIMITS)
    return profile


def _sums(profile: Profile) -> dict[str, float]:
    sums = {f"brand:{k}": v for k, v in profile.brands.items()}
    sums |= {f"category:{k}": v for k, v in profile.categories.items()}
    sums |= {
        "price_weight": profile.price_weight,
        "price_log_sum": profile.price_log_sum,
        "vector_weight": profile.vector_weight,
        "events": float(profile.events),
    }
    return sums


@settings(max_examples=150, deadline=None)
@given(st.lists(_event, min_size=1, max_size=40), st.randoms(use_true_random=False), st.data())
def test_any_arrival_order_with_repeats_gives_the_same_finite_profile(
    raw: list[tuple[str, str, float]], rng: random.Random, data: st.DataObject
) -> None:
    events = _events(raw)
    assert all(WINDOW.refusal(e.at, T0) is None for e in events)  # accepted ones only
    in_order = _profile([sorted(events, key=lambda e: e.at)])
    # another arrival: shuffled, some events sent twice, split into batches
    repeats = data.draw(st.lists(st.sampled_from(events), max_size=10))
    shuffled = events + repeats
    rng.shuffle(shuffled)
    cut = data.draw(st.integers(min_value=0, max_value=len(shuffled)))
    other = _profile([shuffled[:cut], shuffled[cut:]])
    a, b = _sums(in_order), _sums(other)
    assert a.keys() == b.keys()
    for key, value in a.items():
        assert math.isfinite(value), key
        assert value >= 0 or key == "price_log_sum", key
        assert b[key] == pytest.approx(value, rel=1e-6, abs=1e-9), key
    assert in_order.events == other.events == len(events)
    assert in_order.updated_at == other.updated_at == max(e.at for e in events)


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(["view", "click", "cart", "purchase"]),
    st.floats(min_value=-179 * DAY, max_value=0, allow_nan=False),
    st.floats(min_value=1.0, max_value=179 * DAY, allow_nan=False),
)
def test_a_newer_event_never_weighs_less_than_an_older_one_of_its_type(
    kind: str, older: float, gap: float
) -> None:
    newer = min(older + gap, 300.0)
    weights = []
    for offset in (older, newer):
        profile = Profile("u1")
        profile.apply(  # the same reference event, then the one measured
            event("view", "jbl", at=T0 + 300.0), PRODUCTS["jbl"], None, half_life_s=HALF_LIFE
        )
        profile.apply(
            event(kind, "asus", at=T0 + offset),  # type: ignore[arg-type]
            PRODUCTS["asus"],
            None,
            half_life_s=HALF_LIFE,
        )
        weights.append(profile.brands["asus"])
    assert weights[1] >= weights[0] > 0
