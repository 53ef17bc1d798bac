"""Trending and pair counts in Redis: the same contracts as in process."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis

from recommendation.stores.redis import PAIRS, PREFIX, RedisPairCounts, RedisTrendingStore
from tests.recommendation.trending_contract import (
    CONFIG,
    NOW,
    PRODUCTS,
    PairContract,
    TrendingContract,
    event,
)

pytestmark = pytest.mark.integration


@contextmanager
def clean(redis_url: str) -> Iterator[redis.Redis]:
    """A client; the counts' keys are deleted before and after."""
    client = redis.Redis.from_url(redis_url)

    def delete() -> None:
        for prefix in (PREFIX, PAIRS):
            for key in client.scan_iter(f"{prefix}*"):
                client.delete(key)

    delete()
    try:
        yield client
    finally:
        delete()
        client.close()


class TestRedisStore(TrendingContract):
    @pytest.fixture
    def counts(self, redis_url: str) -> Iterator[RedisTrendingStore]:
        with clean(redis_url):
            store = RedisTrendingStore(redis_url, CONFIG)
            yield store
            store.close()


class TestRedisPairs(PairContract):
    @pytest.fixture
    def pairs(self, redis_url: str) -> Iterator[RedisPairCounts]:
        with clean(redis_url):
            store = RedisPairCounts(redis_url)
            yield store
            store.close()


def test_each_day_expires_after_the_window(redis_url: str) -> None:
    with clean(redis_url) as client:
        store = RedisTrendingStore(redis_url, CONFIG)
        store.record([event(1, "sony")], PRODUCTS, NOW)
        keys = list(client.scan_iter(f"{PREFIX}*"))
        assert len(keys) == 4  # the catalog and three category levels, today
        assert all(0 < client.ttl(k) <= (CONFIG.window_days + 1) * 86_400 for k in keys)
        store.close()
