"""Rate limits per caller: the in-process limiter on a fake clock, and the API's 429 with
Retry-After, per key, per shopper and per class (search, answers), that recovers."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.auth.access import Caller
from app.limits import MemoryLimiter, RateLimited, RateLimits, build_rate_limits
from app.main import create_app
from app.services import build_services
from app.settings import Settings
from retrieval.stores.embedded import EmbeddedStore
from tests.app.test_access import ADMIN_KEY, EVENTS_KEY, KEYS, SEARCH_KEY, SECRET, _bearer, _token
from tests.quoting import QuotingLLM


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# -- the in-process limiter --------------------------------------------------------------------


def test_allows_the_limit_then_refuses_until_the_window_ends() -> None:
    clock = FakeClock()
    limiter = MemoryLimiter(clock=clock)
    decisions = []
    for _ in range(3):
        decisions.append(limiter.hit("b", 3, 60))
        clock.advance(10)
    assert [d.allowed for d in decisions] == [True, True, True]
    assert [d.remaining for d in decisions] == [2, 1, 0]
    assert [d.retry_after_s for d in decisions] == [60, 50, 40]
    refused = limiter.hit("b", 3, 60)  # 30 s after the window opened
    assert (refused.allowed, refused.retry_after_s, refused.remaining) == (False, 30, 0)
    clock.advance(29.5)
    assert not limiter.hit("b", 3, 60).allowed
    clock.advance(0.5)  # the window has ended: a new one opens
    again = limiter.hit("b", 3, 60)
    assert (again.allowed, again.retry_after_s, again.remaining) == (True, 60, 2)


def test_buckets_are_independent() -> None:
    clock = FakeClock()
    limiter = MemoryLimiter(clock=clock)
    assert limiter.hit("a", 1, 60).allowed
    assert not limiter.hit("a", 1, 60).allowed
    assert limiter.hit("b", 1, 60).allowed
    assert limiter.hit("a", 5, 60).allowed is True  # a bigger limit for the same bucket


def test_ended_windows_are_swept_and_bad_limits_refused() -> None:
    clock = FakeClock()
    limiter = MemoryLimiter(clock=clock, sweep_every_s=60)
    for i in range(100):
        limiter.hit(f"caller-{i}", 1, 10)
    assert len(limiter) == 100
    clock.advance(61)
    limiter.hit("new", 1, 10)
    assert len(limiter) == 1
    for limit, window in ((0, 60), (1, 0)):
        with pytest.raises(ValueError, match="limit"):
            limiter.hit("b", limit, window)


def test_thread_safe_exactly_the_limit_is_allowed() -> None:
    limiter = MemoryLimiter()
    allowed: list[bool] = []
    lock = threading.Lock()

    def hammer() -> None:
        for _ in range(200):
            ok = limiter.hit("shared", 500, 60).allowed
            with lock:
                allowed.append(ok)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert allowed.count(True) == 500 and len(allowed) == 1600


def test_rate_limits_charge_buckets_per_caller_and_class() -> None:
    clock = FakeClock()
    limits = RateLimits(MemoryLimiter(clock=clock), {"search": 1, "answers": 0})
    key, shopper = Caller("service", "front-end"), Caller("shopper", "front-end")
    assert limits.charge(key, "search") is not None
    with pytest.raises(RateLimited) as refused:
        limits.charge(key, "search")
    assert refused.value.retry_after_s == 60 and refused.value.retry_after_header == "60"
    assert "1 search requests a minute" in str(refused.value)
    assert limits.charge(shopper, "search") is not None  # same id, another kind of caller
    for _ in range(100):
        assert limits.charge(key, "answers") is None  # 0: not limited
    clock.advance(59.7)
    with pytest.raises(RateLimited) as refused:
        limits.charge(key, "search")
    assert refused.value.retry_after_header == "1"  # 0.3 s: at least 1


def test_the_backend_follows_the_cache_unless_set() -> None:
    def store(**values: Any) -> str:
        return Settings(_env_file=None, **values).rate_limit_store

    assert store() == "memory"
    assert store(cache="redis") == "redis"
    assert store(cache="redis", rate_limit_backend="memory") == "memory"
    assert store(cache="none", rate_limit_backend="redis") == "redis"
    defaults = Settings(_env_file=None)
    assert (defaults.rate_limit_search_per_minute, defaults.rate_limit_answers_per_minute) == (
        600,
        30,
    )
    limits = build_rate_limits(defaults)
    assert isinstance(limits.limiter, MemoryLimiter)
    assert limits.per_minute == {"search": 600, "answers": 30}


# -- through the API ---------------------------------------------------------------------------

ASK = "/products/pan-lodge/ask"
QUESTION = {"question": "does it work on induction?"}
SEARCH_AUTH, ADMIN_AUTH = _bearer(SEARCH_KEY), _bearer(ADMIN_KEY)


def _app_client(tmp_path: Path, **settings: Any) -> TestClient:
    config = Settings(
        data_dir=tmp_path,
        embedder="hashing-256",
        semantic_min_similarity=0.2,
        api_keys=KEYS,
        shopper_token_secret=SECRET,
        _env_file=None,
        **settings,
    )
    llm = QuotingLLM(default='[1] "Pre-seasoned cast iron" It works on induction.')
    return TestClient(create_app(services=build_services(config, llm=llm)))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def client(tmp_path: Path, store: EmbeddedStore, clock: FakeClock) -> Iterator[TestClient]:
    """3 searches and 2 answers a minute, counted on ``clock``."""
    settings = {"rate_limit_search_per_minute": 3, "rate_limit_answers_per_minute": 2}
    with _app_client(tmp_path, **settings) as client:
        limits = build_rate_limits(client.app.state.services.settings)
        assert limits.per_minute == {"search": 3, "answers": 2}
        limits.limiter = MemoryLimiter(clock=clock)
        client.app.state.rate_limits = limits
        yield client


def _search(client: TestClient, auth: dict[str, str], **params: Any) -> Any:
    return client.get("/search", params={"q": "headphones", **params}, headers=auth)


def _assert_limited(response: Any, retry_after: int) -> None:
    assert response.status_code == 429, response.text
    error = response.json()["error"]
    assert error["code"] == "rate_limited"
    assert "retry after" in error["message"]
    assert response.headers["retry-after"] == str(retry_after)


def test_rate_limits_return_429_and_recover(client: TestClient, clock: FakeClock) -> None:
    assert _search(client, SEARCH_AUTH).status_code == 200
    clock.advance(10)
    assert client.get("/products/hp-jbl", headers=SEARCH_AUTH).status_code == 200  # a search
    assert client.post("/search", json={"query": "pan"}, headers=SEARCH_AUTH).status_code == 200
    clock.advance(20.4)
    _assert_limited(_search(client, SEARCH_AUTH), 30)  # 29.6 s left of the window
    _assert_limited(client.get("/products/hp-jbl", headers=SEARCH_AUTH), 30)

    # answers are counted apart, and another key has its own limits
    assert client.post(ASK, json=QUESTION, headers=SEARCH_AUTH).status_code == 200
    assert _search(client, ADMIN_AUTH).status_code == 200

    clock.advance(29.6)  # the window has ended
    assert _search(client, SEARCH_AUTH).status_code == 200


def test_answers_have_their_own_smaller_limit(client: TestClient, clock: FakeClock) -> None:
    assert client.post(ASK, json=QUESTION, headers=ADMIN_AUTH).status_code == 200
    advice = {"question": "quiet headphones for flights"}
    assert client.post("/advice", json=advice, headers=ADMIN_AUTH).status_code == 200
    _assert_limited(client.post(ASK, json=QUESTION, headers=ADMIN_AUTH), 60)
    _assert_limited(client.post("/advice", json=advice, headers=ADMIN_AUTH), 60)
    streamed = client.post(ASK, json={**QUESTION, "stream": True}, headers=ADMIN_AUTH)
    _assert_limited(streamed, 60)  # JSON, not a stream
    assert _search(client, ADMIN_AUTH).status_code == 200
    clock.advance(60)
    assert client.post(ASK, json=QUESTION, headers=ADMIN_AUTH).status_code == 200


def test_each_shopper_has_own_limit(client: TestClient) -> None:
    alice, bob = _bearer(_token("alice")), _bearer(_token("bob"))
    for _ in range(3):
        assert _search(client, alice, user_id="alice").status_code == 200
    _assert_limited(_search(client, alice, user_id="alice"), 60)
    assert _search(client, bob, user_id="bob").status_code == 200


def test_unauthenticated_is_401_not_charged_and_events_unlimited(client: TestClient) -> None:
    for _ in range(5):
        assert _search(client, _bearer("sg_nobody_" + "x" * 43)).status_code == 401
    events = _bearer(EVENTS_KEY)
    for i in range(10):
        event = {"event_id": f"e{i}", "user_id": "alice", "type": "view", "product_id": "hp-jbl"}
        body = {"events": [event]}
        assert client.post("/events", json=body, headers=events).status_code == 200


def test_limits_are_built_from_the_settings_and_insecure_local_is_limited(
    tmp_path: Path, store: EmbeddedStore
) -> None:
    settings = {"insecure_local": True, "rate_limit_search_per_minute": 2}
    with _app_client(tmp_path, **settings) as client:
        assert _search(client, {}).status_code == 200
        assert _search(client, {}).status_code == 200
        response = _search(client, {})
        assert response.status_code == 429
        assert 59 <= int(response.headers["retry-after"]) <= 60
    assert client.app.state.rate_limits is None  # closed


def test_zero_disables_a_limit(tmp_path: Path, store: EmbeddedStore) -> None:
    with _app_client(tmp_path, rate_limit_search_per_minute=0) as client:
        for _ in range(20):
            assert _search(client, SEARCH_AUTH).status_code == 200


def test_429_is_documented(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path, method in (
        ("/search", "post"),
        ("/search", "get"),
        ("/products/{product_id}", "get"),
        ("/products/{product_id}/ask", "post"),
        ("/advice", "post"),
    ):
        assert "429" in paths[path][method]["responses"], (path, method)
