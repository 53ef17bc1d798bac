"""Rate limits: the limiter interface, and the policy the API charges callers by.

A `Limiter` counts hits in named buckets. Both implementations (`MemoryLimiter` in-process,
`RedisLimiter` shared by every worker) use the same **fixed window that opens at a bucket's
first hit**: up to ``limit`` hits are allowed until ``window_s`` after that first hit, then the
count starts again. It is one counter per bucket (one Redis key with an expiry), atomic and
cheap, needs no clock shared between workers, and behaves the same in both backends; the price
is that a caller can spend up to twice the limit across the end of one window and the start of
the next, which is fine for protection against a runaway client.

Limits are protection, not correctness: a limiter whose backend fails lets requests through.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

from app.auth.access import Caller

LimitClass = Literal["search", "answers"]
WINDOW_S = 60.0  # the settings give limits per minute


@dataclass(frozen=True)
class Decision:
    """Whether a hit is allowed, how long until its bucket's window ends (when refused: how
    long to wait), and how many hits are left in this window."""

    allowed: bool
    retry_after_s: float
    remaining: int


class RateLimited(Exception):
    """A caller spent its limit (429 with Retry-After)."""

    def __init__(self, retry_after_s: float, message: str = "rate limit exceeded") -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

    @property
    def retry_after_header(self) -> str:
        """Whole seconds to wait, at least 1 (HTTP's Retry-After has no fractions)."""
        return str(max(1, math.ceil(self.retry_after_s)))


class Limiter(Protocol):
    """Hits counted per bucket in fixed windows."""

    def hit(self, bucket: str, limit: int, window_s: float) -> Decision:
        """Count one hit in ``bucket``: allowed while at most ``limit`` (at least 1) hits fell
        in the window of ``window_s`` seconds opened by the bucket's first hit."""
        ...

    def close(self) -> None:
        """Release connections and memory."""
        ...


def check_hit(limit: int, window_s: float) -> None:
    """`ValueError` unless ``limit`` is at least 1 and ``window_s`` positive."""
    if limit < 1 or not window_s > 0:
        msg = f"a rate limit needs limit >= 1 and window_s > 0, not {limit} and {window_s}"
        raise ValueError(msg)


class RateLimits:
    """Hits per minute per caller and class of request (0: that class is not limited)."""

    def __init__(
        self, limiter: Limiter, per_minute: Mapping[str, int], *, window_s: float = WINDOW_S
    ) -> None:
        self.limiter, self.per_minute, self.window_s = limiter, dict(per_minute), window_s

    def charge(self, caller: Caller, kind: LimitClass) -> Decision | None:
        """Count a request of class ``kind`` against ``caller``'s bucket (``{kind of caller}:
        {id}:{class}``); `RateLimited` when the caller has spent the limit; None: not limited."""
        limit = self.per_minute.get(kind, 0)
        if limit <= 0:
            return None
        decision = self.limiter.hit(f"{caller.kind}:{caller.id}:{kind}", limit, self.window_s)
        if not decision.allowed:
            per = "minute" if self.window_s == WINDOW_S else f"{self.window_s:g} s"
            msg = (
                f"rate limit of {limit} {kind} requests a {per} reached; "
                f"retry after {max(1, math.ceil(decision.retry_after_s))} s"
            )
            raise RateLimited(decision.retry_after_s, msg)
        return decision

    def close(self) -> None:
        """Close the limiter."""
        self.limiter.close()
