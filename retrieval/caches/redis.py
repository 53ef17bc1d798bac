"""A cache in Redis, shared by every worker, that never fails a request.

Any Redis error (refused connection, timeout, an error reply) is counted, logged once, and
answered as a miss; the cache then stops calling Redis for ``retry_after_s`` (a circuit
breaker, `retrieval.breaker.CircuitBreaker`), after which one call probes it, so the cache
comes back by itself with Redis.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from retrieval.breaker import CircuitBreaker
from retrieval.caches.base import CacheError, CacheStats

logger = logging.getLogger(__name__)

T = TypeVar("T")

_FAILURES = (redis.RedisError, OSError)
_BATCH = 500


def _glob_escape(text: str) -> str:
    """``text`` with Redis glob characters escaped, for SCAN MATCH."""
    return "".join(f"\\{c}" if c in "*?[]\\^-" else c for c in text)


class RedisCache:
    """Values in Redis with SET ... PX; keys removed by prefix with SCAN + UNLINK.

    ``socket_timeout_s`` bounds each connect and each reply, so a hung Redis costs a request
    at most about that long before the breaker opens. A ``client`` given is used as it is (it
    must not decode responses) and is not closed by `close`.
    """

    def __init__(
        self,
        url: str,
        *,
        socket_timeout_s: float = 0.1,
        retry_after_s: float = 5.0,
        client: redis.Redis | None = None,
    ) -> None:
        if socket_timeout_s <= 0 or retry_after_s < 0:
            msg = "socket_timeout_s must be positive and retry_after_s not negative"
            raise ValueError(msg)
        self.socket_timeout_s = socket_timeout_s
        self.retry_after_s = retry_after_s
        self._owns_client = client is None
        # Connects lazily, on the first command. One retry on a connection error replaces a
        # pooled connection that a Redis restart closed; timeouts are not retried.
        self._client = (
            client
            if client is not None
            else redis.Redis.from_url(
                url,
                socket_timeout=socket_timeout_s,
                socket_connect_timeout=socket_timeout_s,
                retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
            )
        )
        self._lock = threading.Lock()
        self._breaker = CircuitBreaker("redis cache", retry_after_s=retry_after_s, log=False)
        self._hits = 0
        self._misses = 0
        self._errors = 0

    # -- the breaker -----------------------------------------------------------------------

    def _run(
        self, operation: str, action: Callable[[redis.Redis], T], *, force: bool = False
    ) -> tuple[bool, T | None]:
        """(True, result) when Redis answered; (False, None) when skipped (the breaker open,
        unless ``force``) or failed."""
        if not self._breaker.allow(force=force):
            return False, None
        try:
            result = action(self._client)
        except _FAILURES as exc:
            with self._lock:
                self._errors += 1
            if self._breaker.failed(exc):
                logger.warning(
                    "redis cache unavailable (%s failed: %s); serving without it, "
                    "retrying in %.1f s",
                    operation,
                    exc,
                    self.retry_after_s,
                    extra={"cache": "redis", "operation": operation, "error": type(exc).__name__},
                )
            return False, None
        if self._breaker.succeeded():
            logger.info("redis cache available again", extra={"cache": "redis"})
        return True, result

    # -- the cache -------------------------------------------------------------------------

    def get(self, key: str) -> bytes | None:
        """The value, or None when absent, expired, or Redis is unavailable."""
        ok, value = self._run("GET", lambda client: client.get(key))
        with self._lock:
            if ok and value is not None:
                self._hits += 1
            else:
                self._misses += 1
        if isinstance(value, str):  # a client that decodes responses
            return value.encode()
        return value

    def set(self, key: str, value: bytes, ttl_s: float) -> None:
        """SET with a PX expiry; nothing when ``ttl_s`` is not positive or Redis is down."""
        if ttl_s <= 0:
            return
        px = max(1, round(ttl_s * 1000))
        self._run("SET", lambda client: client.set(key, value, px=px))

    def delete_prefix(self, prefix: str, *, strict: bool = False) -> int:
        """UNLINK every key under ``prefix`` (SCAN in batches); 0 when Redis is down, or with
        ``strict`` a `CacheError`.

        Tried even while the breaker is open, as erasure matters more than latency.
        """
        if not prefix:
            msg = "refusing to delete with an empty prefix"
            raise ValueError(msg)
        pattern = _glob_escape(prefix) + "*"

        def unlink_all(client: redis.Redis) -> int:
            removed = 0
            batch: list[bytes] = []
            for key in client.scan_iter(match=pattern, count=_BATCH):
                batch.append(key)
                if len(batch) >= _BATCH:
                    removed += client.unlink(*batch)
                    batch.clear()
            if batch:
                removed += client.unlink(*batch)
            return removed

        ok, removed = self._run("UNLINK", unlink_all, force=True)
        if not ok:
            logger.error(
                "could not delete the cache keys under %r",
                prefix,
                extra={"cache": "redis", "prefix": prefix},
            )
            if strict:
                msg = "Redis did not answer: the cache entries could not be deleted"
                raise CacheError(msg)
        return removed or 0

    def stats(self) -> CacheStats:
        """Counters, and whether the breaker is closed (probing Redis when a retry is due)."""
        if self._breaker.probe_due():
            self._run("PING", lambda client: client.ping())
        available = self._breaker.state == "closed"
        with self._lock:
            return CacheStats("redis", self._hits, self._misses, self._errors, available)

    def close(self) -> None:
        """Close the connections this cache opened."""
        if self._owns_client:
            try:
                self._client.close()
            except _FAILURES as exc:  # closing a broken pool must not fail a shutdown
                logger.debug("closing the redis client: %s", exc)
