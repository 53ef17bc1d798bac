"""Shoppers over the API: events, personalized search with reasons, opt-out and erasure, on
the embedded default (file profiles, in-process cache)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.services import build_services
from app.settings import Settings
from personalization.stores.file import user_file_name
from retrieval.stores.embedded import EmbeddedStore
from tests.conftest import AUTH
from tests.quoting import QuotingLLM

USER = "shopper-1"


def _client(tmp_path: Path, **settings: Any) -> TestClient:
    config = Settings(
        data_dir=tmp_path,
        embedder="hashing-256",
        semantic_min_similarity=0.2,
        _env_file=None,
        **settings,
    )
    # True of whichever headphones come first (their category): a reply in the answer format.
    llm = QuotingLLM(default='[?] "Headphones" These are headphones.')
    return TestClient(create_app(services=build_services(config, llm=llm)), headers=AUTH)


@pytest.fixture
def client(tmp_path: Path, store: EmbeddedStore) -> Iterator[TestClient]:
    with _client(tmp_path, personalize_weight=1.0) as client:
        yield client


def _buy(client: TestClient, product_id: str, times: int, user: str = USER) -> dict[str, Any]:
    events = [
        {
            "event_id": f"{user}-{product_id}-{i}",
            "user_id": user,
            "type": "purchase",
            "product_id": product_id,
        }
        for i in range(times)
    ]
    response = client.post("/events", json={"events": events})
    assert response.status_code == 200, response.text
    return response.json()


def _ids(body: dict[str, Any]) -> list[str]:
    return [r["id"] for r in body["results"]]


def _search(client: TestClient, **extra: Any) -> dict[str, Any]:
    response = client.post("/search", json={"query": "headphones", **extra})
    assert response.status_code == 200, response.text
    return response.json()


class TestEvents:
    def test_a_batch_is_recorded_and_a_repeated_event_id_is_not_counted_twice(
        self, client: TestClient
    ) -> None:
        assert _buy(client, "hp-sony", 2)["accepted"] == 2
        again = _buy(client, "hp-sony", 2)
        assert again["accepted"] == 0 and again["duplicates"] == 2
        profile = client.get(f"/users/{USER}/profile").json()
        assert profile["profile"]["events"] == 2
        assert len(profile["recent_events"]) == 2

    def test_an_event_outside_the_time_window_is_rejected_by_position_with_why(
        self, client: TestClient
    ) -> None:
        """One event dated in the year 9999 used to freeze a shopper's profile for good."""
        now = datetime.now(UTC)
        event = {"user_id": USER, "type": "purchase", "product_id": "hp-sony"}
        batch = [
            {**event, "event_id": "future", "at": "9999-12-31T23:59:59Z"},
            {**event, "event_id": "ahead", "at": (now + timedelta(seconds=60)).isoformat()},
            {**event, "event_id": "tomorrow", "at": (now + timedelta(days=1)).isoformat()},
            {**event, "event_id": "old", "at": (now - timedelta(days=400)).isoformat()},
            {**event, "event_id": "now"},
        ]
        body = client.post("/events", json={"events": batch}).json()
        assert body["accepted"] == 2  # a minute ahead is within the clock-skew allowance
        reasons = {r["index"]: r["reason"] for r in body["rejected"]}
        assert sorted(reasons) == [0, 2, 3]
        assert "in the future" in reasons[0] and "9999-12-31T23:59:59Z" in reasons[0]
        assert "in the future" in reasons[2]
        assert "older than the profile retention (180 days)" in reasons[3]
        profile = client.get(f"/users/{USER}/profile").json()
        assert profile["profile"]["events"] == 2
        # a purchase afterwards counts in full: nothing froze the profile
        assert _buy(client, "hp-anker", 1)["accepted"] == 1
        brands = client.get(f"/users/{USER}/profile").json()["profile"]["brands"]
        assert "Anker" in str(brands)

    def test_a_damaged_profile_heals_and_health_counts_it(
        self, client: TestClient, tmp_path: Path
    ) -> None:
        """A damaged profile file was a 503 on every request about the shopper."""
        assert _buy(client, "hp-sony", 1)["accepted"] == 1
        (tmp_path / "profiles" / user_file_name(USER)).write_text('{"version": 1, "profile": 7')
        assert client.get(f"/users/{USER}/profile").status_code == 200
        # unreadable, so the opt-out is kept off until the shopper turns it on again
        assert _buy(client, "hp-anker", 1)["opted_out"] == 1
        on = client.put(f"/users/{USER}/personalization", json={"enabled": True})
        assert on.status_code == 200
        assert _buy(client, "hp-anker", 1)["accepted"] == 1
        assert client.get("/health").json()["profiles"] == {
            "backend": "file",
            "available": True,
            "quarantined": 1,
        }

    def test_a_time_without_a_zone_is_utc(self, client: TestClient) -> None:
        at = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
        event = {"user_id": USER, "type": "view", "product_id": "hp-sony"}
        naive = at.replace(tzinfo=None).isoformat()
        client.post("/events", json={"events": [{**event, "event_id": "naive", "at": naive}]})
        [stored] = client.get(f"/users/{USER}/profile").json()["recent_events"]
        assert stored["at"] in (
            at.isoformat(),
            at.isoformat().replace("+00:00", "Z"),
            at.timestamp(),
        )

    def test_an_unknown_product_is_rejected_by_position_and_the_rest_recorded(
        self, client: TestClient
    ) -> None:
        body = client.post(
            "/events",
            json={
                "events": [
                    {"event_id": "e1", "user_id": USER, "type": "view", "product_id": "nope"},
                    {"event_id": "e2", "user_id": USER, "type": "view", "product_id": "hp-jbl"},
                    {"event_id": "e3", "user_id": USER, "type": "search", "query": "earbuds"},
                ]
            },
        ).json()
        assert body["accepted"] == 2
        assert body["rejected"] == [{"index": 0, "reason": "unknown product 'nope'"}]

    @pytest.mark.parametrize(
        ("event", "field"),
        [
            (
                {"event_id": "e", "user_id": "a:b", "type": "view", "product_id": "hp-jbl"},
                "user_id",
            ),
            ({"event_id": "e", "user_id": USER, "type": "like", "product_id": "hp-jbl"}, "type"),
            ({"event_id": "e", "user_id": USER, "type": "view"}, "events.0"),
            ({"event_id": "e", "user_id": USER, "type": "search"}, "events.0"),
            ({"user_id": USER, "type": "view", "product_id": "hp-jbl"}, "event_id"),
        ],
    )
    def test_a_bad_event_is_a_422_that_names_it(
        self, client: TestClient, event: dict[str, Any], field: str
    ) -> None:
        response = client.post("/events", json={"events": [event]})
        assert response.status_code == 422
        fields = [f["field"] for f in response.json()["error"]["fields"]]
        assert any(field in f for f in fields), fields

    @pytest.mark.parametrize(
        "at", ["1535-04-16T09:14:43+14:32", "1969-12-31T23:59:59Z", "0001-01-01T00:00:00"]
    )
    def test_a_time_before_1970_is_a_422_not_a_500(self, client: TestClient, at: str) -> None:
        # Found by the fuzzer (test_fuzz_api): an Event counts epoch seconds, none before 1970
        # (a naive year 1, read in local time, has none at all).
        event = {"event_id": "e", "user_id": USER, "type": "view", "product_id": "hp-jbl"}
        response = client.post("/events", json={"events": [{**event, "at": at}]})
        assert response.status_code == 422, response.text
        [field] = response.json()["error"]["fields"]
        assert field["field"] == "body.events.0.at"
        assert "must not be before 1970-01-01T00:00:00Z" in field["reason"]
        # 1970 itself is a valid time, and older than any profile keeps: rejected by position
        epoch = client.post("/events", json={"events": [{**event, "at": "1970-01-01T00:00:00Z"}]})
        assert epoch.status_code == 200 and epoch.json()["accepted"] == 0
        [rejected] = epoch.json()["rejected"]
        assert rejected["index"] == 0 and "older than the profile retention" in rejected["reason"]

    def test_an_empty_or_oversized_batch_is_a_422(self, client: TestClient) -> None:
        assert client.post("/events", json={"events": []}).status_code == 422
        event = {"user_id": USER, "type": "view", "product_id": "hp-jbl"}
        many = [{**event, "event_id": f"e{i}"} for i in range(1001)]
        assert client.post("/events", json={"events": many}).status_code == 422


class TestPersonalizedSearch:
    def test_no_history_is_todays_ranking(self, client: TestClient) -> None:
        anonymous = _search(client, cache=False)
        cold = _search(client, user_id="nobody-yet", cache=False)
        assert _ids(cold) == _ids(anonymous)
        assert cold["personalized"] is False
        assert all(r["personal"] is None for r in cold["results"])

    def test_a_shoppers_brand_moves_up_and_says_why(self, client: TestClient) -> None:
        anonymous = _ids(_search(client))
        favourite = anonymous[-1]  # the least relevant headphones of the page
        brand = {"hp-sony": "Sony", "hp-anker": "Anker", "hp-jbl": "JBL", "ear-sport": "Beats"}
        _buy(client, favourite, 5)
        body = _search(client, user_id=USER)
        assert body["personalized"] is True
        ids = _ids(body)
        assert sorted(ids) == sorted(anonymous)  # re-ordered, nothing added or lost
        assert ids.index(favourite) < anonymous.index(favourite)
        moved = body["results"][ids.index(favourite)]["personal"]
        assert moved["relevance_rank"] == anonymous.index(favourite) + 1
        assert moved["moved"] == anonymous.index(favourite) - ids.index(favourite)
        assert f"you often buy {brand[favourite]}" in moved["reasons"]

    def test_a_request_or_the_shopper_can_opt_out(self, client: TestClient) -> None:
        anonymous = _ids(_search(client))
        _buy(client, anonymous[-1], 5)
        assert _ids(_search(client, user_id=USER)) != anonymous
        assert _ids(_search(client, user_id=USER, personalize=False)) == anonymous

        response = client.put(f"/users/{USER}/personalization", json={"enabled": False})
        assert response.status_code == 200 and response.json()["personalization"] is False
        assert _ids(_search(client, user_id=USER)) == anonymous
        assert _buy(client, "hp-sony", 1)["opted_out"] == 1  # nothing new is stored

    def test_an_irrelevant_product_is_never_lifted_by_a_brand(self, client: TestClient) -> None:
        _buy(client, "pan-lodge", 20)  # a frying pan
        body = _search(client, user_id=USER)
        assert "pan-lodge" not in _ids(body)

    def test_get_search_takes_the_user(self, client: TestClient) -> None:
        anonymous = _ids(_search(client))
        _buy(client, anonymous[-1], 5)
        response = client.get("/search", params={"q": "headphones", "user_id": USER})
        assert response.status_code == 200 and response.json()["personalized"] is True
        bad = client.get("/search", params={"q": "headphones", "user_id": "a b"})
        assert bad.status_code == 422


class TestErasure:
    def test_erasure_removes_everything_and_leaves_nothing_on_disk(
        self, client: TestClient, tmp_path: Path
    ) -> None:
        anonymous = _ids(_search(client))
        _buy(client, anonymous[-1], 3)
        _search(client, user_id=USER)  # a personalized result, cached under the shopper
        advice = client.post(
            "/advice",
            json={"question": "headphones", "user_id": USER, "conversation_id": "c1"},
        )
        assert advice.status_code == 200
        assert advice.json()["answer"].startswith("These are headphones [")

        erased = client.delete(f"/users/{USER}").json()
        assert erased == {
            "user_id": USER,
            "profile": True,
            "events": 3,
            "settings": False,
            "cached_results": 1,
            "conversations": 1,
            "queued": 0,
        }
        profile = client.get(f"/users/{USER}/profile").json()
        assert profile["profile"] is None and profile["recent_events"] == []
        assert _ids(_search(client, user_id=USER)) == anonymous
        for path in tmp_path.rglob("*"):
            if path.is_file():
                assert USER.encode() not in path.read_bytes(), path
        again = client.delete(f"/users/{USER}").json()
        assert again["profile"] is False and again["events"] == 0

    def test_profiles_off_is_a_clear_503_for_events(
        self, tmp_path: Path, store: EmbeddedStore
    ) -> None:
        with _client(tmp_path, profiles="none") as client:
            response = client.post(
                "/events",
                json={
                    "events": [
                        {"event_id": "e", "user_id": USER, "type": "view", "product_id": "hp-jbl"}
                    ]
                },
            )
            assert response.status_code == 503
            assert response.json()["error"]["code"] == "profiles_unavailable"
            assert (
                client.post("/search", json={"query": "headphones", "user_id": USER}).status_code
                == 200
            )


class TestTrending:
    def _trending(self, client: TestClient, **params: Any) -> dict[str, Any]:
        response = client.get("/trending", params=params)
        assert response.status_code == 200, response.text
        return response.json()

    def test_events_make_products_trend_once_each(self, client: TestClient) -> None:
        assert self._trending(client)["results"] == []
        _buy(client, "hp-jbl", 2)
        _buy(client, "hp-jbl", 2)  # the same event ids again: counted once
        _buy(client, "pan-lodge", 1, user="shopper-2")
        body = self._trending(client)
        assert _ids(body) == ["hp-jbl", "pan-lodge"]
        assert body["results"][0]["score"] == 10.0  # two purchases of weight 5
        assert body["results"][0]["reason"].startswith("popular lately")
        audio = self._trending(client, category="electronics > audio")
        assert _ids(audio) == ["hp-jbl"]
        assert _ids(self._trending(client, in_stock="true")) == ["pan-lodge"]

    def test_an_opted_out_shoppers_events_do_not_count(self, client: TestClient) -> None:
        client.put(f"/users/{USER}/personalization", json={"enabled": False})
        assert _buy(client, "hp-sony", 3)["opted_out"] == 3
        assert self._trending(client)["results"] == []

    def test_counts_survive_a_restart_on_the_embedded_default(
        self, tmp_path: Path, store: EmbeddedStore
    ) -> None:
        with _client(tmp_path) as first:
            _buy(first, "hp-sony", 1)
        with _client(tmp_path) as second:
            assert _ids(self._trending(second)) == ["hp-sony"]

    @pytest.mark.parametrize(
        "params",
        [{"size": 0}, {"page": 101}, {"price_min": 5, "price_max": 1}, {"nope": 1}],
    )
    def test_bad_requests_are_422(self, client: TestClient, params: dict[str, Any]) -> None:
        assert client.get("/trending", params=params).status_code == 422


class TestComplements:
    def test_what_goes_with_a_product_after_purchases(self, client: TestClient) -> None:
        events = [
            {"event_id": f"c{i}", "user_id": USER, "type": kind, "product_id": pid}
            for i, (kind, pid) in enumerate(
                [("purchase", "hp-sony"), ("cart", "pan-lodge"), ("view", "shoe-pegasus")]
            )
        ]
        assert client.post("/events", json={"events": events}).status_code == 200
        response = client.get("/products/hp-sony/complements")
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["source"] == "together"
        assert [r["id"] for r in body["results"]] == ["pan-lodge"]  # a view does not pair
        assert client.get("/products/pan-lodge/complements").json()["results"][0]["id"] == (
            "hp-sony"
        )
        fallback = client.get("/products/hp-anker/complements").json()
        assert fallback["source"] == "categories"
        assert [r["id"] for r in fallback["results"]] == ["pan-lodge"]

    def test_unknown_product_and_bad_requests(self, client: TestClient) -> None:
        assert client.get("/products/nope/complements").status_code == 404
        assert client.get("/products/hp-sony/complements", params={"size": 0}).status_code == 422
        empty = client.get("/products/hp-sony/complements").json()
        assert empty["results"] == [] and empty["source"] == "none"


class TestForYou:
    def _for_you(self, client: TestClient, user: str = USER, **params: Any) -> dict[str, Any]:
        response = client.get(f"/users/{user}/recommendations", params=params)
        assert response.status_code == 200, response.text
        return response.json()

    def test_a_new_shopper_gets_trending_products_labelled_as_such(
        self, client: TestClient
    ) -> None:
        _buy(client, "pan-lodge", 1, user="someone-else")
        body = self._for_you(client)
        assert body["personalized"] is False
        assert _ids(body) == ["pan-lodge"]
        assert body["results"][0]["reasons"] == ["popular with shoppers lately"]

    def test_a_shopper_gets_their_taste_without_what_they_bought(self, client: TestClient) -> None:
        _buy(client, "hp-sony", 3)
        body = self._for_you(client)
        assert body["personalized"] is True
        ids = _ids(body)
        assert "hp-sony" not in ids and ids  # bought: left out
        assert ids[0].startswith(("hp-", "ear-"))  # their taste: audio first
        assert all(r["reasons"] for r in body["results"][:2])
        assert all(0.0 <= r["score"] <= 1.0 for r in body["results"])
        assert "hp-sony" in _ids(self._for_you(client, include_bought="true"))
        assert self._for_you(client, personalize="false")["personalized"] is False

    def test_pages_are_cached_per_profile_version_and_erased(self, client: TestClient) -> None:
        _buy(client, "hp-sony", 1)
        assert self._for_you(client)["cached"] is False
        assert self._for_you(client)["cached"] is True
        _buy(client, "hp-anker", 1)  # a new profile version
        assert self._for_you(client)["cached"] is False
        assert client.delete(f"/users/{USER}").status_code == 200
        assert self._for_you(client)["personalized"] is False

    def test_an_opted_out_shopper_gets_everyones(self, client: TestClient) -> None:
        _buy(client, "hp-sony", 2)
        client.put(f"/users/{USER}/personalization", json={"enabled": False})
        assert self._for_you(client)["personalized"] is False

    def test_bad_requests(self, client: TestClient) -> None:
        assert client.get("/users/bad id!/recommendations").status_code in (404, 422)
        response = client.get(f"/users/{USER}/recommendations", params={"size": 0})
        assert response.status_code == 422
