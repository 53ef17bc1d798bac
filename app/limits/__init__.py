"""Rate limits per caller: search and answers counted separately (answers are the expensive
ones), in this process or shared through Redis; see `app.limits.base`."""

from __future__ import annotations

from app.limits.base import Decision, Limiter, RateLimited, RateLimits
from app.limits.memory import MemoryLimiter
from app.limits.redis import RedisLimiter
from app.settings import Settings

__all__ = [
    "Decision",
    "Limiter",
    "MemoryLimiter",
    "RateLimited",
    "RateLimits",
    "RedisLimiter",
    "build_rate_limits",
]


def build_rate_limits(settings: Settings) -> RateLimits:
    """The limits ``settings`` configure, counted where RATE_LIMIT_BACKEND says (unset: in
    Redis when CACHE=redis, as several workers then share one limit; otherwise in-process)."""
    limiter: Limiter
    if settings.rate_limit_store == "redis":
        limiter = RedisLimiter(
            settings.redis_url,
            socket_timeout_s=settings.redis_timeout_s,
            retry_after_s=settings.redis_retry_after_s,
        )
    else:
        limiter = MemoryLimiter()
    per_minute = {
        "search": settings.rate_limit_search_per_minute,
        "answers": settings.rate_limit_answers_per_minute,
    }
    return RateLimits(limiter, per_minute)
