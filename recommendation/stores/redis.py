"""Trending counts in Redis (one sorted set per scope and day, expiring after the window) and
pair counts (one sorted set per key)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar, cast

import redis

from personalization.events import Event
from recommendation.stores.base import (
    DAY_S,
    TrendingConfig,
    TrendingUnavailable,
    increments,
    ranked,
)
from retrieval.schema import Product

logger = logging.getLogger(__name__)
T = TypeVar("T")
PREFIX = "trending:"
PAIRS = "together:"


def day_key(scope: str, day: int) -> str:
    """The sorted set of ``scope``'s counts on UTC day ``day``."""
    return f"{PREFIX}{scope}:{day}"


class RedisTrendingStore:
    """Counts with ``ZINCRBY``; a read sums the window's days with their decay weights
    (``ZUNION ... WEIGHTS``) and keeps the top. Every API worker shares them."""

    def __init__(
        self,
        url: str,
        config: TrendingConfig,
        *,
        client: redis.Redis | None = None,
        timeout_s: float = 2.0,
    ) -> None:
        self.config = config
        self._client = client or redis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )

    def record(self, events: Sequence[Event], products: Mapping[str, Product], now: float) -> int:
        """Add the events' weights in one pipeline; each day's set expires after the window."""
        added = increments(events, products, now, self.config)
        if not added:
            return 0
        ttl_s = round((self.config.window_days + 1) * DAY_S)

        def write(client: redis.Redis) -> None:
            pipe = client.pipeline(transaction=False)
            for (scope, day), counts in added.items():
                key = day_key(scope, day)
                for pid, weight in counts.items():
                    pipe.zincrby(key, weight, pid)
                pipe.expire(key, ttl_s)
            pipe.execute()

        _call(self._client, "record", write)
        return len({pid for counts in added.values() for pid in counts})

    def top(self, scope: str, limit: int, now: float) -> list[tuple[str, float]]:
        """The highest decayed counts in ``scope``: the window's days summed with weights."""
        weights = {day_key(scope, day): w for day, w in self.config.day_weights(now).items()}
        # ZUNION returns every member of the window: a scope's products with events in it
        rows = cast(
            "list[tuple[bytes, float]]",
            _call(
                self._client,
                "read",
                lambda client: client.zunion(weights, aggregate="SUM", withscores=True),
            ),
        )
        scores = {_text(pid): float(score) for pid, score in rows}
        return ranked(scores, limit)

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisPairCounts:
    """Pair counts with ``ZINCRBY`` on ``together:<key>``, shared by every API worker."""

    def __init__(
        self, url: str, *, client: redis.Redis | None = None, timeout_s: float = 2.0
    ) -> None:
        self._client = client or redis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )

    def add(self, pairs: Mapping[tuple[str, str], float]) -> None:
        """Add each pair's weight both ways in one pipeline."""
        if not pairs:
            return

        def write(client: redis.Redis) -> None:
            pipe = client.pipeline(transaction=False)
            for (a, b), weight in pairs.items():
                pipe.zincrby(PAIRS + a, weight, b)
                pipe.zincrby(PAIRS + b, weight, a)
            pipe.execute()

        _call(self._client, "record pairs", write)

    def partners(self, key: str, limit: int) -> list[tuple[str, float]]:
        """The keys that went with ``key`` most (ties by key)."""
        rows = cast(
            "list[tuple[bytes, float]]",
            _call(
                self._client,
                "read pairs",
                lambda client: client.zrevrange(PAIRS + key, 0, 4 * limit, withscores=True),
            ),
        )
        return ranked({_text(k): float(score) for k, score in rows}, limit)

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()


def _call(client: redis.Redis, what: str, call: Callable[[redis.Redis], T]) -> T:
    try:
        return call(client)
    except redis.RedisError as exc:
        msg = f"event counts: {what} failed: {exc}"
        raise TrendingUnavailable(msg) from exc
