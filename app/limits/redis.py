"""Rate limits in Redis, shared by every API worker, so that several enforce one limit.

Each bucket is one key, ``shopguide:rl:<bucket>``, counted by a Lua script (INCR, and PEXPIRE
on the window's first hit: atomic, one round trip), which expires with its window.

Limits are protection, not correctness: when Redis fails (refused connection, timeout, an
error reply) the limiter **fails open**, letting requests through unlimited rather than turning
them into errors. The failure is logged once per outage, not per request; the limiter then
stops calling Redis for ``retry_after_s`` (a circuit breaker, `retrieval.breaker.CircuitBreaker`,
as `RedisCache`), after which one call probes it, so limits come back by themselves with Redis.
"""

from __future__ import annotations

import logging
import threading

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from app.limits.base import Decision, check_hit
from retrieval.breaker import CircuitBreaker

logger = logging.getLogger(__name__)

KEY_PREFIX = "shopguide:rl:"
_FAILURES = (redis.RedisError, OSError)

# KEYS[1]: the bucket's key; ARGV[1]: the window in ms. Returns {hits, ms left in the window}.
_HIT = """
local hits = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {hits, ttl}
"""


class RedisLimiter:
    """Fixed windows (see `app.limits.base`) counted in Redis.

    ``socket_timeout_s`` bounds each connect and reply, so a hung Redis delays a request at
    most about that long before the breaker opens. A ``client`` given is used as it is and is
    not closed by `close`.
    """

    def __init__(
        self,
        url: str,
        *,
        socket_timeout_s: float = 0.1,
        retry_after_s: float = 5.0,
        client: redis.Redis | None = None,
        prefix: str = KEY_PREFIX,
    ) -> None:
        if socket_timeout_s <= 0 or retry_after_s < 0:
            msg = "socket_timeout_s must be positive and retry_after_s not negative"
            raise ValueError(msg)
        self.retry_after_s = retry_after_s
        self.prefix = prefix
        self._owns_client = client is None
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
        self._script = self._client.register_script(_HIT)  # EVALSHA, loaded again if need be
        self._breaker = CircuitBreaker("redis rate limiter", retry_after_s=retry_after_s, log=False)
        self._lock = threading.Lock()
        self.errors = 0

    @property
    def available(self) -> bool:
        """Whether the breaker is closed (Redis answered last time)."""
        return self._breaker.state == "closed"

    def hit(self, bucket: str, limit: int, window_s: float) -> Decision:
        """Count one hit in ``bucket`` (refused hits count too, until the window ends);
        allowed, unlimited, while Redis is unavailable."""
        check_hit(limit, window_s)
        if not self._breaker.allow():
            return Decision(True, 0.0, limit)
        try:
            hits, ttl_ms = self._script(
                keys=[self.prefix + bucket], args=[max(1, round(window_s * 1000))]
            )
        except _FAILURES as exc:
            self._failed(exc)
            return Decision(True, 0.0, limit)
        if self._breaker.succeeded():
            logger.info("redis rate limiter available again", extra={"limiter": "redis"})
        hits, left_s = int(hits), max(0, int(ttl_ms)) / 1000
        return Decision(hits <= limit, left_s, max(0, limit - hits))

    def _failed(self, exc: BaseException) -> None:
        with self._lock:
            self.errors += 1
        if self._breaker.failed(exc):
            logger.warning(
                "redis rate limiter unavailable (%s); letting requests through unlimited, "
                "retrying in %.1f s",
                exc,
                self.retry_after_s,
                extra={"limiter": "redis", "error": type(exc).__name__},
            )

    def close(self) -> None:
        """Close the connections this limiter opened."""
        if self._owns_client:
            try:
                self._client.close()
            except _FAILURES as exc:  # closing a broken pool must not fail a shutdown
                logger.debug("closing the redis client: %s", exc)
