"""`RedisCache` against real Redis servers: the shared one, and one of its own to break."""

from __future__ import annotations

import logging
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from retrieval.caches.redis import RedisCache
from tests.integration.servers import OwnRedis, free_port

pytestmark = pytest.mark.integration

FAST_S = 1.0  # a call while Redis is down answers at once, not after the client's retries


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own on the shared Redis, emptied afterwards."""
    prefix = f"shopguide:test-{uuid.uuid4().hex}:"
    yield prefix
    RedisCache(redis_url).delete_prefix(prefix)


@pytest.fixture
def cache(redis_url: str) -> Iterator[RedisCache]:
    cache = RedisCache(redis_url)
    yield cache
    cache.close()


def timed(call: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    result = call()
    return result, time.perf_counter() - start


class TestRedisCache:
    def test_set_get_and_stats(self, cache: RedisCache, prefix: str) -> None:
        assert cache.get(prefix + "absent") is None
        cache.set(prefix + "k", b"\x00value\xff", 60)
        assert cache.get(prefix + "k") == b"\x00value\xff"
        stats = cache.stats()
        assert (stats.backend, stats.hits, stats.misses, stats.errors) == ("redis", 1, 1, 0)
        assert stats.available

    def test_ttl_is_set_in_milliseconds_and_expires(
        self, cache: RedisCache, redis_url: str, prefix: str
    ) -> None:
        cache.set(prefix + "short", b"1", 0.15)
        cache.set(prefix + "long", b"2", 60)
        raw = redis.Redis.from_url(redis_url)
        assert 0 < raw.pttl(prefix + "short") <= 150
        assert 59_000 < raw.pttl(prefix + "long") <= 60_000
        raw.close()
        assert cache.get(prefix + "short") == b"1"
        time.sleep(0.3)
        assert cache.get(prefix + "short") is None
        assert cache.get(prefix + "long") == b"2"

    def test_delete_prefix_in_batches_and_literally(self, cache: RedisCache, prefix: str) -> None:
        user = prefix + "user*[1]:"  # glob characters must match themselves
        for i in range(1_200):  # more than one SCAN/UNLINK batch
            cache.set(f"{user}{i}", b"x", 60)
        cache.set(prefix + "userX1]:0", b"keep", 60)
        cache.set(prefix + "other:0", b"keep", 60)
        assert cache.delete_prefix(user) == 1_200
        assert cache.get(f"{user}7") is None
        assert cache.get(prefix + "userX1]:0") == b"keep"
        assert cache.get(prefix + "other:0") == b"keep"
        assert cache.delete_prefix(user) == 0

    def test_nothing_listening(self, caplog: pytest.LogCaptureFixture) -> None:
        cache = RedisCache(f"redis://127.0.0.1:{free_port()}/0", retry_after_s=60)
        with caplog.at_level(logging.WARNING, logger="retrieval.caches.redis"):
            for _ in range(5):
                value, took = timed(lambda: cache.get("k"))
                assert value is None
                assert took < FAST_S
                cache.set("k", b"v", 60)
        stats = cache.stats()
        assert (stats.errors, stats.misses, stats.available) == (1, 5, False)
        assert len(caplog.records) == 1
        assert "unavailable" in caplog.records[0].getMessage()
        cache.close()


@pytest.fixture
def own_redis(redis_url: str, tmp_path: Path) -> Iterator[OwnRedis]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = OwnRedis(tmp_path)
    server.start()
    yield server
    server.stop()


class TestRedisOutage:
    RETRY_AFTER_S = 0.3

    def test_killed_then_restarted(
        self, own_redis: OwnRedis, caplog: pytest.LogCaptureFixture
    ) -> None:
        cache = RedisCache(own_redis.url, retry_after_s=self.RETRY_AFTER_S)
        cache.set("k", b"before", 60)
        assert cache.get("k") == b"before"
        own_redis.stop()

        with caplog.at_level(logging.INFO, logger="retrieval.caches.redis"):
            for _ in range(10):
                value, took = timed(lambda: cache.get("k"))
                assert value is None
                assert took < FAST_S
                _, took = timed(lambda: cache.set("k", b"during", 60))
                assert took < FAST_S
            stats = cache.stats()
            assert stats.errors >= 1
            assert not stats.available

            own_redis.start()  # same port, empty
            time.sleep(self.RETRY_AFTER_S + 0.05)
            cache.set("k", b"after", 60)
            assert cache.get("k") == b"after"
            assert cache.stats().available

        messages = [r.getMessage() for r in caplog.records]
        assert len([m for m in messages if "unavailable" in m]) == 1
        assert len([m for m in messages if "available again" in m]) == 1
        assert all(
            r.levelno == logging.WARNING for r in caplog.records if "unavailable" in r.getMessage()
        )
        cache.close()

    def test_hung_server_times_out(self, own_redis: OwnRedis) -> None:
        cache = RedisCache(own_redis.url, socket_timeout_s=0.05, retry_after_s=self.RETRY_AFTER_S)
        cache.set("k", b"v", 60)
        own_redis.pause()
        try:
            for _ in range(5):
                value, took = timed(lambda: cache.get("k"))
                assert value is None
                assert took < FAST_S
            assert cache.stats().errors == 1  # the breaker spared Redis the other calls
        finally:
            own_redis.resume()
        time.sleep(self.RETRY_AFTER_S + 0.05)
        assert cache.stats().available  # a due retry probes Redis
        assert cache.get("k") == b"v"
        cache.close()

    def test_erasure_is_tried_even_while_the_breaker_is_open(self, own_redis: OwnRedis) -> None:
        cache = RedisCache(own_redis.url, retry_after_s=60)
        cache.set("shopguide:u:1:a", b"x", 60)
        own_redis.stop()
        assert cache.get("shopguide:u:1:a") is None
        assert not cache.stats().available
        own_redis.start()
        cache.set("shopguide:u:1:b", b"x", 60)  # skipped: the breaker is open
        own_redis_client = redis.Redis.from_url(own_redis.url)
        own_redis_client.set("shopguide:u:1:c", b"x")
        assert cache.delete_prefix("shopguide:u:1:") == 1
        assert cache.stats().available
        assert own_redis_client.exists("shopguide:u:1:b", "shopguide:u:1:c") == 0
        own_redis_client.close()
        cache.close()
