"""Trending counts in Redis: the same contract as in process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from recommendation.stores.redis import PREFIX, RedisTrendingStore
from tests.recommendation.trending_contract import CONFIG, NOW, PRODUCTS, TrendingContract, event

pytestmark = pytest.mark.integration


class TestRedisStore(TrendingContract):
    @pytest.fixture
    def counts(self, redis_url: str) -> Iterator[RedisTrendingStore]:
        client = redis.Redis.from_url(redis_url)
        for key in client.scan_iter(f"{PREFIX}*"):
            client.delete(key)
        store = RedisTrendingStore(redis_url, CONFIG)
        yield store
        for key in client.scan_iter(f"{PREFIX}*"):
            client.delete(key)
        store.close()
        client.close()


def test_each_day_expires_after_the_window(redis_url: str) -> None:
    store = RedisTrendingStore(redis_url, CONFIG)
    client = redis.Redis.from_url(redis_url)
    try:
        store.record([event(1, "sony")], PRODUCTS, NOW)
        keys = list(client.scan_iter(f"{PREFIX}*"))
        assert len(keys) == 4  # the catalog and three category levels, today
        assert all(0 < client.ttl(k) <= (CONFIG.window_days + 1) * 86_400 for k in keys)
    finally:
        for key in client.scan_iter(f"{PREFIX}*"):
            client.delete(key)
        store.close()
        client.close()
