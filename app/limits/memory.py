"""Rate limits in this process: one API worker's own counts (tests, a single-worker server)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from app.limits.base import Decision, check_hit


class MemoryLimiter:
    """Fixed windows (see `app.limits.base`) in a dict, under a lock (thread-safe).

    ``clock`` (seconds, monotonic) is injectable for tests. Buckets whose window has ended are
    swept at most every ``sweep_every_s``, so idle callers do not accumulate.
    """

    def __init__(
        self, *, clock: Callable[[], float] = time.monotonic, sweep_every_s: float = 60.0
    ) -> None:
        self._clock = clock
        self._sweep_every_s = sweep_every_s
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[int, float]] = {}  # bucket: (hits, window ends at)
        self._next_sweep = clock() + sweep_every_s

    def hit(self, bucket: str, limit: int, window_s: float) -> Decision:
        """Count one hit in ``bucket``; refused hits are not counted."""
        check_hit(limit, window_s)
        now = self._clock()
        with self._lock:
            if now >= self._next_sweep:
                self._windows = {b: w for b, w in self._windows.items() if w[1] > now}
                self._next_sweep = now + self._sweep_every_s
            hits, ends = self._windows.get(bucket, (0, now))
            if now >= ends:  # a new bucket, or its window has ended
                hits, ends = 0, now + window_s
            if hits >= limit:
                return Decision(False, ends - now, 0)
            self._windows[bucket] = (hits + 1, ends)
            return Decision(True, ends - now, limit - hits - 1)

    def __len__(self) -> int:
        with self._lock:
            return len(self._windows)

    def close(self) -> None:
        """Forget every count."""
        with self._lock:
            self._windows.clear()
