"""Trending and pair counts in process, optionally kept in JSON files (the embedded default)."""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from personalization.events import Event
from recommendation.stores.base import TrendingConfig, day_of, increments, ranked
from retrieval.schema import Product

logger = logging.getLogger(__name__)

Counts = dict[str, dict[int, dict[str, float]]]  # scope -> day -> product -> weight
T = TypeVar("T")


class MemoryTrendingStore:
    """Counts in a dict; with ``path``, loaded from and written to that file (atomically, on
    every batch). One process: several API workers need the Redis store."""

    def __init__(self, config: TrendingConfig, path: Path | None = None) -> None:
        self.config = config
        self.path = path
        self._counts: Counts = {}
        self._lock = threading.Lock()
        if path is not None and path.is_file():
            self._counts = _load(path)

    def record(self, events: Sequence[Event], products: Mapping[str, Product], now: float) -> int:
        """Add the events' weights; drop days that left the window; save."""
        added = increments(events, products, now, self.config)
        if not added:
            return 0
        oldest = day_of(now) - self.config.window_days + 1
        with self._lock:
            for (scope, day), counts in added.items():
                into = self._counts.setdefault(scope, {}).setdefault(day, {})
                for pid, weight in counts.items():
                    into[pid] = into.get(pid, 0.0) + weight
            for days in self._counts.values():
                for day in [d for d in days if d < oldest]:
                    del days[day]
            if self.path is not None:
                _save(self.path, self._counts)
        return len({pid for counts in added.values() for pid in counts})

    def top(self, scope: str, limit: int, now: float) -> list[tuple[str, float]]:
        """The highest decayed counts in ``scope``."""
        scores: dict[str, float] = {}
        with self._lock:
            days = self._counts.get(scope, {})
            for day, weight in self.config.day_weights(now).items():
                for pid, count in days.get(day, {}).items():
                    scores[pid] = scores.get(pid, 0.0) + weight * count
        return ranked(scores, limit)

    def close(self) -> None:
        """Nothing to release."""


def _load(path: Path) -> Counts:
    return _read(
        path,
        "trending counts",
        lambda raw: {
            scope: {int(day): {str(p): float(w) for p, w in c.items()} for day, c in days.items()}
            for scope, days in raw.items()
        },
    )


def _read(path: Path, what: str, convert: Callable[[Any], T]) -> T | dict[str, Any]:
    """``convert`` of the file's JSON; empty, with a warning, when it does not read: counts are
    rebuilt by new events, and a damaged file must not stop the service."""
    try:
        return convert(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, AttributeError, TypeError) as exc:
        logger.warning("%s in %s unreadable, starting empty: %s", what, path, exc)
        return {}


def _save(path: Path, counts: Mapping[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=path.parent, prefix=path.name, suffix=".tmp", delete=False
    ) as f:
        json.dump(counts, f, separators=(",", ":"))
        f.flush()
        os.fsync(f.fileno())
    os.replace(f.name, path)


class MemoryPairCounts:
    """Pair counts in a dict; with ``path``, loaded from and written to that file."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._pairs: dict[str, dict[str, float]] = {}
        self._lock = threading.Lock()
        if path is not None and path.is_file():
            self._pairs = _load_pairs(path)

    def add(self, pairs: Mapping[tuple[str, str], float]) -> None:
        """Add each pair's weight both ways; save."""
        if not pairs:
            return
        with self._lock:
            for (a, b), weight in pairs.items():
                for one, other in ((a, b), (b, a)):
                    into = self._pairs.setdefault(one, {})
                    into[other] = into.get(other, 0.0) + weight
            if self.path is not None:
                _save(self.path, self._pairs)

    def partners(self, key: str, limit: int) -> list[tuple[str, float]]:
        """The keys that went with ``key`` most."""
        with self._lock:
            return ranked(dict(self._pairs.get(key, {})), limit)

    def close(self) -> None:
        """Nothing to release."""


def _load_pairs(path: Path) -> dict[str, dict[str, float]]:
    return _read(
        path,
        "pair counts",
        lambda raw: {str(a): {str(b): float(w) for b, w in c.items()} for a, c in raw.items()},
    )
