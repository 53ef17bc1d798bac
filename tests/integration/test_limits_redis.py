"""`RedisLimiter` against a real Redis: two workers enforce one limit; a dead Redis lets
requests through (fail open), logged once, and limits come back with Redis."""

from __future__ import annotations

import logging
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient

from app.limits import RedisLimiter, build_rate_limits
from app.limits.redis import KEY_PREFIX
from app.main import create_app
from app.services import build_services
from app.settings import Settings
from retrieval.stores.embedded import EmbeddedStore
from tests.conftest import AUTH
from tests.integration.servers import OwnRedis, free_port
from tests.quoting import QuotingLLM

pytestmark = pytest.mark.integration

FAST_S = 1.0


@pytest.fixture
def bucket(redis_url: str) -> Iterator[str]:
    """A bucket of this test's own; its key is deleted afterwards."""
    name = f"test-{uuid.uuid4().hex}"
    yield name
    client = redis.Redis.from_url(redis_url)
    client.delete(KEY_PREFIX + name)
    client.close()


def test_two_workers_share_one_limit(redis_url: str, bucket: str) -> None:
    workers = [RedisLimiter(redis_url), RedisLimiter(redis_url)]
    decisions = [workers[i % 2].hit(bucket, 5, 60) for i in range(8)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False] * 3
    assert [d.remaining for d in decisions[:5]] == [4, 3, 2, 1, 0]
    refused = decisions[-1]
    assert 59 < refused.retry_after_s <= 60 and refused.remaining == 0
    raw = redis.Redis.from_url(redis_url)
    assert 59_000 < raw.pttl(KEY_PREFIX + bucket) <= 60_000  # the key expires with the window
    raw.close()
    for worker in workers:
        worker.close()


def test_the_window_ends_and_the_limit_recovers(redis_url: str, bucket: str) -> None:
    limiter = RedisLimiter(redis_url)
    assert limiter.hit(bucket, 1, 0.2).allowed
    refused = limiter.hit(bucket, 1, 0.2)
    assert not refused.allowed and 0 < refused.retry_after_s <= 0.2
    time.sleep(0.3)
    assert limiter.hit(bucket, 1, 0.2).allowed
    limiter.close()


def test_two_api_workers_share_the_limit(
    redis_url: str, tmp_path: Path, store: EmbeddedStore
) -> None:
    prefix = f"{KEY_PREFIX}test-{uuid.uuid4().hex}:"
    config = Settings(
        data_dir=tmp_path,
        embedder="hashing-256",
        semantic_min_similarity=0.2,
        rate_limit_backend="redis",
        redis_url=redis_url,
        rate_limit_search_per_minute=3,
        _env_file=None,
    )
    assert config.rate_limit_store == "redis"
    clients = [
        TestClient(create_app(services=build_services(config, llm=QuotingLLM())), headers=AUTH)
        for _ in range(2)
    ]
    try:
        for client in clients:
            client.__enter__()
            limits = build_rate_limits(config)
            assert isinstance(limits.limiter, RedisLimiter)
            limits.limiter.close()
            limits.limiter = RedisLimiter(redis_url, prefix=prefix)  # keys of this test's own
            client.app.state.rate_limits = limits
        statuses = [
            clients[i % 2].get("/search", params={"q": "headphones", "cache": False}).status_code
            for i in range(5)
        ]
        assert statuses == [200, 200, 200, 429, 429]
    finally:
        for client in clients:
            client.__exit__(None, None, None)
        raw = redis.Redis.from_url(redis_url)
        for key in raw.scan_iter(match=prefix + "*"):
            raw.delete(key)
        raw.close()


def test_a_dead_redis_lets_requests_through(caplog: pytest.LogCaptureFixture) -> None:
    limiter = RedisLimiter(f"redis://127.0.0.1:{free_port()}/0", retry_after_s=60)
    with caplog.at_level(logging.WARNING, logger="app.limits.redis"):
        for _ in range(10):
            started = time.perf_counter()
            decision = limiter.hit("anyone:search", 1, 60)
            assert time.perf_counter() - started < FAST_S
            assert decision.allowed
    assert limiter.errors == 1 and not limiter.available  # the breaker spared the other calls
    assert len(caplog.records) == 1  # logged once per outage, not per request
    assert "letting requests through" in caplog.records[0].getMessage()
    limiter.close()


def test_a_dead_redis_does_not_fail_the_api(tmp_path: Path, store: EmbeddedStore) -> None:
    config = Settings(
        data_dir=tmp_path,
        embedder="hashing-256",
        semantic_min_similarity=0.2,
        rate_limit_backend="redis",
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
        rate_limit_search_per_minute=1,
        _env_file=None,
    )
    app = create_app(services=build_services(config, llm=QuotingLLM()))
    with TestClient(app, headers=AUTH) as client:
        for _ in range(3):
            assert client.get("/search", params={"q": "headphones"}).status_code == 200
        assert isinstance(app.state.rate_limits.limiter, RedisLimiter)


def test_limits_come_back_with_redis(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = OwnRedis(tmp_path)
    server.start()
    try:
        limiter = RedisLimiter(server.url, retry_after_s=0.2)
        assert limiter.hit("b", 1, 60).allowed
        assert not limiter.hit("b", 1, 60).allowed
        server.stop()
        with caplog.at_level(logging.INFO, logger="app.limits.redis"):
            assert all(limiter.hit("b", 1, 60).allowed for _ in range(5))  # fail open
            server.start()  # same port, empty
            time.sleep(0.25)
            assert limiter.hit("b", 1, 60).allowed  # the probe: a new window
            assert not limiter.hit("b", 1, 60).allowed  # limited again
        messages = [r.getMessage() for r in caplog.records]
        assert len([m for m in messages if "unavailable" in m]) == 1
        assert len([m for m in messages if "available again" in m]) == 1
        limiter.close()
    finally:
        server.stop()
