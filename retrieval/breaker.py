"""A circuit breaker: after a dependency fails (times out, cannot be reached), stop calling it
for ``retry_after_s``, then let one call probe it.

    closed --failure--> open --retry_after_s--> half-open (one probe) --success--> closed
                                                                      --failure--> open

While open, and while the probe is out, `allow` says no at once, so callers fail fast instead
of each waiting out a timeout. A probe that never reports (its thread died) is replaced by
another after ``retry_after_s``. Thread-safe. Used by the Elasticsearch store
(`retrieval.stores.guarded`), the Redis cache and the Redis rate limiter; the last two log in
their own words (``log`` off) when `failed` and `succeeded` say the state changed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Literal

logger = logging.getLogger(__name__)

State = Literal["closed", "open", "half-open"]


class CircuitBreaker:
    """The breaker of one dependency, named ``name`` in logs; ``clock`` (seconds, monotonic) is
    injectable for tests."""

    def __init__(
        self,
        name: str,
        *,
        retry_after_s: float,
        clock: Callable[[], float] = time.monotonic,
        log: bool = True,
    ) -> None:
        if retry_after_s < 0:
            msg = f"retry_after_s must not be negative, not {retry_after_s}"
            raise ValueError(msg)
        self.name = name
        self.log = log
        self.retry_after_s = retry_after_s
        self._clock = clock
        self._lock = threading.Lock()
        self._state: State = "closed"
        self._until = 0.0  # open: when the probe is due; half-open: when the probe is lost
        self.opened = 0  # how many times it opened

    @property
    def state(self) -> State:
        """closed, open (failing fast), or half-open (one probe out)."""
        with self._lock:
            return self._state

    def allow(self, *, force: bool = False) -> bool:
        """Whether a call may go now: always while closed; once open, only the one probe after
        the pause (the caller must then report `succeeded` or `failed`). ``force``: go as a
        probe even before then (a call that matters more than latency, an erasure)."""
        with self._lock:
            if self._state == "closed":
                return True
            now = self._clock()
            if now < self._until and not force:
                return False
            self._state = "half-open"
            self._until = now + self.retry_after_s
            return True

    def probe_due(self) -> bool:
        """Whether the breaker is open and its pause is over: the next `allow` is a probe."""
        with self._lock:
            return self._state == "open" and self._clock() >= self._until

    def retry_in(self) -> float:
        """Seconds until a call may go again (0 while closed or when a probe is due)."""
        with self._lock:
            if self._state == "closed":
                return 0.0
            return max(0.0, self._until - self._clock())

    def succeeded(self) -> bool:
        """The dependency answered: close the breaker. Whether it was not closed."""
        with self._lock:
            was = self._state
            self._state = "closed"
        if was != "closed" and self.log:
            logger.info("%s answers again: circuit breaker closed", self.name)
        return was != "closed"

    def failed(self, error: object) -> bool:
        """The dependency failed (timed out, could not be reached): open the breaker, or keep
        it open, for ``retry_after_s``. Whether it was closed (this failure opened it)."""
        with self._lock:
            was = self._state
            self._state = "open"
            self._until = self._clock() + self.retry_after_s
            if was == "closed":
                self.opened += 1
        if not self.log:
            return was == "closed"
        if was == "closed":
            logger.warning(
                "%s failed (%s): circuit breaker open, failing fast for %.1f s",
                self.name,
                error,
                self.retry_after_s,
                extra={"breaker": self.name, "error": type(error).__name__},
            )
        elif was == "half-open":
            logger.info(
                "%s still failing (%s): circuit breaker open for %.1f s more",
                self.name,
                error,
                self.retry_after_s,
            )
        return was == "closed"
