"""The cache interface, and the keys and query normalisation that every cache user shares.

A cache is an optimisation, never a source of truth: implementations do not raise on a backend
failure; they answer a miss and count the error.
"""

from __future__ import annotations

import hashlib
import json
import math
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

KEY_ROOT = "shopguide"


@dataclass(frozen=True)
class CacheStats:
    """Counters since start-up, and whether the backend answers now."""

    backend: str
    hits: int
    misses: int
    errors: int
    available: bool


class CacheError(RuntimeError):
    """A strict `Cache.delete_prefix` could not reach the backend."""


class Cache(Protocol):
    """Bytes by string key, each entry with its own time to live."""

    def get(self, key: str) -> bytes | None:
        """The value, or None when absent, expired or the backend is down."""
        ...

    def set(self, key: str, value: bytes, ttl_s: float) -> None:
        """Store ``value`` for ``ttl_s`` seconds (best effort)."""
        ...

    def delete_prefix(self, prefix: str, *, strict: bool = False) -> int:
        """Remove every key that starts with ``prefix`` (`ValueError` when empty); returns how
        many were removed. ``strict``: a backend failure is a `CacheError`, not 0 (erasure
        must not report success it did not have)."""
        ...

    def stats(self) -> CacheStats:
        """Hits, misses, errors and availability."""
        ...

    def close(self) -> None:
        """Release connections and memory."""
        ...


def key_prefix(namespace: str) -> str:
    """The prefix of every key in ``namespace`` (for `Cache.delete_prefix`)."""
    if not namespace:
        msg = "the cache namespace must not be empty"
        raise ValueError(msg)
    return f"{KEY_ROOT}:{namespace}:"


def user_prefix(user_id: str) -> str:
    """The prefix of every entry tied to one shopper (their personalized results and
    conversations), so that erasing the shopper is one `Cache.delete_prefix`."""
    if not user_id or ":" in user_id:
        msg = f"a user id must be non-empty and hold no ':', got {user_id!r}"
        raise ValueError(msg)
    return key_prefix(f"user:{user_id}")


def cache_key(namespace: str, **parts: Any) -> str:
    """A stable key for ``parts``: ``shopguide:{namespace}:`` + sha256 of their canonical JSON.

    Mapping order does not matter, integral floats equal ints (``100.0`` is ``100``), tuples
    equal lists and sets are sorted; anything else JSON cannot hold is a `TypeError`.
    """
    canonical = json.dumps(
        _canonical(parts), sort_keys=True, separators=(",", ":"), allow_nan=False
    )
    return key_prefix(namespace) + hashlib.sha256(canonical.encode()).hexdigest()


def _canonical(value: Any) -> Any:
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return repr(value)  # "nan", "inf", "-inf"
        return int(value) if value.is_integer() else value  # also folds -0.0 into 0
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                msg = f"cache key parts need string mapping keys, got {key!r}"
                raise TypeError(msg)
            out[key] = _canonical(item)
        return out
    if isinstance(value, list | tuple):
        return [_canonical(item) for item in value]
    if isinstance(value, set | frozenset):
        items = [_canonical(item) for item in value]
        return sorted(items, key=lambda item: json.dumps(item, sort_keys=True))
    msg = f"cannot make a cache key from {type(value).__name__}"
    raise TypeError(msg)


def normalize_query(text: str) -> str:
    """Query text as a cache key sees it: NFKC, case-folded, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())
