"""An in-process LRU cache with a time to live per entry."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from retrieval.caches.base import CacheStats


class MemoryCache:
    """Thread-safe LRU of at most ``max_entries`` values; expired entries read as misses.

    Each worker process has its own; use `RedisCache` to share entries between processes.
    """

    def __init__(self, max_entries: int = 10_000) -> None:
        if max_entries <= 0:
            msg = f"max_entries must be positive, got {max_entries}"
            raise ValueError(msg)
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._lock = threading.Lock()
        self._hits = 0
        self._misses = 0

    def get(self, key: str) -> bytes | None:
        """The value, or None when absent or expired."""
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[0] <= now:
                del self._entries[key]
                entry = None
            if entry is None:
                self._misses += 1
                return None
            self._entries.move_to_end(key)
            self._hits += 1
            return entry[1]

    def set(self, key: str, value: bytes, ttl_s: float) -> None:
        """Store ``value`` for ``ttl_s`` seconds, evicting the least recently used entry."""
        with self._lock:
            if ttl_s <= 0:
                self._entries.pop(key, None)
                return
            self._entries[key] = (time.monotonic() + ttl_s, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def delete_prefix(self, prefix: str, *, strict: bool = False) -> int:
        """Remove every key that starts with ``prefix`` (not empty: `close` clears all)."""
        if not prefix:
            msg = "refusing to delete with an empty prefix"
            raise ValueError(msg)
        with self._lock:
            doomed = [key for key in self._entries if key.startswith(prefix)]
            for key in doomed:
                del self._entries[key]
            return len(doomed)

    def stats(self) -> CacheStats:
        """Hit and miss counts; always available."""
        with self._lock:
            return CacheStats("memory", self._hits, self._misses, 0, True)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def close(self) -> None:
        """Drop every entry."""
        with self._lock:
            self._entries.clear()
