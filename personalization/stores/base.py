"""The profile store interface, its reports, and the ingest rules every backend shares.

Unlike a cache, a profile store is a source of truth: a backend failure raises
`ProfileStoreUnavailable` (the API queues a write in its event spool, `personalization.spool`,
and serves a read without personalisation), never a silent miss.

Opting out (`ProfileStore.set_enabled` with False) stops storing a user's events and tells
ranking to ignore the profile; it erases nothing. `ProfileStore.erase` removes everything of
the user, the opt-out setting included.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from personalization.events import Event, check_user_id
from personalization.profile import Profile
from retrieval.schema import Product
from retrieval.stores.base import StoreError

logger = logging.getLogger(__name__)

DAY_S = 86_400.0
DEFAULT_HALF_LIFE_S = 30 * DAY_S
DEFAULT_TTL_S = 180 * DAY_S  # a profile expires this long after its last write
DEFAULT_MAX_EVENTS = 1_000  # events (and event ids, for idempotency) kept per user
DEFAULT_MAX_KEYS = 50  # brands and categories kept per profile


Catalog = Callable[[Sequence[str]], tuple[Mapping[str, Product], Mapping[str, np.ndarray]]]
"""The products and vectors of product ids, from the document store: what a profile store
rebuilds a damaged profile with."""


class ProfileStoreUnavailable(RuntimeError):
    """The store cannot read or write now (backend down, disk error, too much contention)."""


@dataclass(frozen=True)
class IngestReport:
    """What `ProfileStore.add_events` did with a batch."""

    accepted: int = 0
    duplicates: int = 0  # event ids already applied (or twice in the batch)
    opted_out: int = 0  # events of users who opted out: not stored at all
    applied: tuple[Event, ...] = ()  # the accepted events themselves (each applied once)

    def __add__(self, other: IngestReport) -> IngestReport:
        return IngestReport(
            self.accepted + other.accepted,
            self.duplicates + other.duplicates,
            self.opted_out + other.opted_out,
            self.applied + other.applied,
        )


@dataclass(frozen=True)
class Erasure:
    """What `ProfileStore.erase` removed: the profile, how many events, the settings, and the
    names of the keys (Redis) or files (file store) deleted."""

    profile: bool = False
    events: int = 0
    settings: bool = False
    removed: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ProfileStoreStats:
    """Which backend, and whether it answers now."""

    backend: str
    available: bool
    quarantined: int = 0  # damaged profiles moved aside (the file store)


@dataclass(frozen=True)
class StoreLimits:
    """The settings every backend takes: decay, expiry, and how much is kept per user."""

    half_life_s: float = DEFAULT_HALF_LIFE_S
    ttl_s: float = DEFAULT_TTL_S
    max_events: int = DEFAULT_MAX_EVENTS
    max_keys: int = DEFAULT_MAX_KEYS

    def __post_init__(self) -> None:
        if self.half_life_s <= 0 or self.ttl_s <= 0:
            msg = "half_life_s and ttl_s must be positive"
            raise ValueError(msg)
        if self.max_events < 1 or self.max_keys < 1:
            msg = "max_events and max_keys must be at least 1"
            raise ValueError(msg)


class ProfileStore(Protocol):
    """Profiles, recent events and the opt-out setting, per user id."""

    def add_events(
        self,
        events: Sequence[Event],
        products: Mapping[str, Product],
        vectors: Mapping[str, np.ndarray],
    ) -> IngestReport:
        """Apply ``events`` (products and their vectors by product id) to their users' profiles.

        Idempotent on ``event_id`` per user; a user's events apply in time order; events of an
        opted-out user are not stored. A user id that does not match `USER_ID_PATTERN` is a
        `ValueError` before anything is written.
        """
        ...

    def profile(self, user_id: str) -> Profile | None:
        """The stored profile (decayed to its last event), or None (also when expired)."""
        ...

    def events(self, user_id: str, limit: int = 100) -> list[Event]:
        """The user's last ``limit`` events, the most recently recorded first."""
        ...

    def set_enabled(self, user_id: str, enabled: bool) -> None:
        """Opt the user into (True, the default) or out of personalisation."""
        ...

    def enabled(self, user_id: str) -> bool:
        """Whether personalisation is on for the user."""
        ...

    def erase(self, user_id: str) -> Erasure:
        """Delete everything stored about the user."""
        ...

    def stats(self) -> ProfileStoreStats:
        """The backend's name and whether it answers."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


def by_user(events: Iterable[Event]) -> dict[str, list[Event]]:
    """``events`` grouped per user, each group in time order (ties in the order given).

    Every user id is checked again here (`ValueError`), whatever built the events.
    """
    groups: dict[str, list[Event]] = {}
    for event in events:
        groups.setdefault(check_user_id(event.user_id), []).append(event)
    for group in groups.values():
        group.sort(key=lambda event: event.at)
    return groups


def apply_new(
    profile: Profile,
    events: Sequence[Event],
    seen: set[str],
    products: Mapping[str, Product],
    vectors: Mapping[str, np.ndarray],
    limits: StoreLimits,
) -> tuple[list[Event], int]:
    """Apply the events whose id is not in ``seen`` (adding theirs), then prune the profile.

    Returns the events applied and how many were duplicates.
    """
    applied: list[Event] = []
    duplicates = 0
    for event in events:
        if event.event_id in seen:
            duplicates += 1
            continue
        seen.add(event.event_id)
        product_id = event.product_id
        product = products.get(product_id) if product_id is not None else None
        vector = vectors.get(product_id) if product_id is not None else None
        profile.apply(event, product, vector, half_life_s=limits.half_life_s)
        applied.append(event)
    if applied:
        profile.prune(limits.max_keys)
    return applied, duplicates


def rebuilt_profile(
    user_id: str, events: Sequence[Event], catalog: Catalog | None, limits: StoreLimits
) -> Profile:
    """The profile the shopper's stored ``events`` give again, in time order, with their
    products from ``catalog``: what replaces a profile that does not load. Empty without
    events or a catalog, or when the catalog cannot be read (logged): it starts again."""
    profile = Profile(user_id)
    if not events or catalog is None:
        return profile
    ids = sorted({e.product_id for e in events if e.product_id is not None})
    try:
        products, vectors = catalog(ids) if ids else ({}, {})
    except StoreError as exc:
        logger.warning("a damaged profile starts empty, the catalog is unavailable: %s", exc)
        return profile
    for event in sorted(events, key=lambda e: e.at):
        pid = event.product_id
        product = products.get(pid) if pid is not None else None
        vector = vectors.get(pid) if pid is not None else None
        profile.apply(event, product, vector, half_life_s=limits.half_life_s)
    profile.prune(limits.max_keys)
    return profile
