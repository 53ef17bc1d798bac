"""What the API does with shoppers: record their events, rank for them, and erase them."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from personalization.events import Event, EventWindow
from personalization.policy import PersonalPolicy
from personalization.profile import Profile
from personalization.ranking import PersonalConfig
from personalization.spool import EventSpool
from personalization.stores.base import (
    Erasure,
    IngestReport,
    ProfileStore,
    ProfileStoreUnavailable,
)
from retrieval.caches.base import Cache, user_prefix
from retrieval.schema import Product
from retrieval.stores.base import DocumentStore, StoreUnavailable

logger = logging.getLogger(__name__)

CONVERSATION_KEYS = "conversation:"
DOWN = (ProfileStoreUnavailable, StoreUnavailable)  # the outages the spool rides out


@dataclass(frozen=True)
class Rejected:
    """An event left out of a batch, by its position in the batch, and why."""

    index: int
    reason: str


@dataclass(frozen=True)
class Recorded:
    """What a batch of events did: applied (``report``), rejected, or ``queued`` in the spool
    while the profile store or the catalog is down (applied when it returns)."""

    report: IngestReport
    rejected: list[Rejected] = field(default_factory=list)
    products: Mapping[str, Product] = field(default_factory=dict)  # the events' products
    queued: int = 0


@dataclass(frozen=True)
class Erased:
    """Everything removed for one shopper."""

    user_id: str
    profile: bool
    events: int
    settings: bool
    cached_results: int
    conversations: int
    queued: int = 0  # events waiting in the spool, erased before they were applied


@dataclass(frozen=True)
class Ranking:
    """How one request is ranked: the policy (None: relevance alone) and, when a profile takes
    part, its version (part of a cache key: a new event changes the results)."""

    policy: PersonalPolicy | None
    profile_version: str | None = None

    @property
    def personalized(self) -> bool:
        """Whether a profile re-orders the results."""
        return self.profile_version is not None


class Personalization:
    """Profiles from behaviour events, personalized ranking, and erasure of a shopper.

    ``caches`` are the caches that may hold a shopper's entries under `user_prefix` (their
    personalized results, their conversations); erasure empties that prefix in each.
    ``window`` bounds the event times `record` accepts (None: any). ``spool`` keeps the events
    that arrive while the profile store or the catalog is down (None: they are refused, 503);
    ``on_applied`` is told of the events applied from it (the trending and pair counts).
    """

    def __init__(
        self,
        profiles: ProfileStore | None,
        store: DocumentStore,
        config: PersonalConfig,
        caches: Sequence[Cache] = (),
        window: EventWindow | None = None,
        spool: EventSpool | None = None,
        on_applied: Callable[[IngestReport, Mapping[str, Product]], object] | None = None,
    ) -> None:
        self.profiles = profiles
        self.store = store
        self.config = config
        self.window = window
        self.caches = list(dict.fromkeys(caches))  # one cache may serve several uses
        self.spool = spool
        self.on_applied = on_applied
        self._spool_waits = False  # the last drain found a store down
        self._stop: threading.Event | None = None
        self._drainer: threading.Thread | None = None

    @property
    def diversifies(self) -> bool:
        """Whether a policy applies even without a shopper (diversity is configured)."""
        return self.config.brand_cap is not None or self.config.dedupe_similarity is not None

    def ranking(self, user_id: str | None, *, personalize: bool = True) -> Ranking:
        """The ranking of a request: personalized when the shopper has a profile, has not
        opted out, and the request did not opt out; a profile store that is down serves the
        request unpersonalized (logged), never fails it."""
        profile = None
        wanted = user_id is not None and personalize and self.config.weight > 0
        if wanted and self.profiles is not None:
            assert user_id is not None
            try:
                if self.profiles.enabled(user_id):
                    profile = self.profiles.profile(user_id)
            except ProfileStoreUnavailable as exc:
                logger.warning("profiles unavailable, serving unpersonalized: %s", exc)
        if profile is None or profile.is_empty():
            return self._unpersonalized()
        # the stored profile's version: it changes with each event, not with the clock
        version = f"{profile.updated_at:.3f}/{profile.events}"
        policy = PersonalPolicy(
            self.store, profile.decayed(time.time(), self.config.half_life_s), self.config
        )
        if not policy.personalized:  # everything decayed away
            return self._unpersonalized()
        return Ranking(policy, version)

    def record(self, events: Sequence[Event], *, now: float | None = None) -> Recorded:
        """Apply a batch of events; an event outside the accepted time window (``window``, at
        ``now``: in the future beyond the clock-skew allowance, or older than the retention)
        or about a product the catalog does not hold is rejected (by position, with why) and
        the rest recorded (nothing is half-applied for a user: each user's events go together).

        While the profile store or the catalog is down, the events in the window are queued
        in the spool instead (``queued``; their products are checked when they are applied).
        What the spool holds is applied (a chunk) before the batch, or right after the first
        batch that goes through again; meanwhile the drain thread tries. `SpoolFull` (a
        `ProfileStoreUnavailable` with ``retry_after_s``) when the spool cannot take them;
        `ProfileStoreUnavailable` when profiles are off, or down without a spool."""
        self._store()
        now = time.time() if now is None else now
        rejected: list[Rejected] = []
        for i, e in enumerate(events):
            refusal = self.window.refusal(e.at, now) if self.window is not None else None
            if refusal is not None:
                rejected.append(Rejected(i, refusal))
        skip = {r.index for r in rejected}
        kept = [(i, e) for i, e in enumerate(events) if i not in skip]
        if self.spool is None:
            return self._apply_batch(kept, rejected)
        try:
            # Not while the last drain found a store down: each batch would pay for reading
            # a chunk of the spool again; the drain thread finds out when the store is back.
            if self.spool.pending and not self._spool_waits:
                try:
                    self._drain_spool(self.spool, limit=self.spool.chunk, orphans=False)
                except DOWN:
                    self._spool_waits = True
                    raise
                except Exception:  # the batch itself may go through: the spool waits
                    logger.exception("draining the event spool failed")
            recorded = self._apply_batch(kept, rejected)
        except DOWN as exc:
            self._spool_waits = True
            queued = self.spool.append([e for _, e in kept])  # SpoolFull: 503, Retry-After
            logger.warning("store down, %d events queued in the spool: %s", queued, exc)
            return Recorded(IngestReport(), rejected, {}, queued=queued)
        if self._spool_waits:  # the stores answer again: what waits goes next, not later
            self._spool_waits = False
            try:
                self._drain_spool(self.spool, limit=self.spool.chunk, orphans=False)
            except DOWN as exc:
                self._spool_waits = True
                logger.info("the spool waits (%d events): %s", self.spool.pending, exc)
            except Exception:  # the batch is recorded: the drain thread tries again
                logger.exception("draining the event spool failed")
        return recorded

    def _apply_batch(self, kept: list[tuple[int, Event]], rejected: list[Rejected]) -> Recorded:
        """Apply the events in the window; those about unknown products are rejected."""
        profiles = self._store()
        ids = sorted({e.product_id for _, e in kept if e.product_id is not None})
        products = self.store.get_products(ids) if ids else {}
        unknown = [
            Rejected(i, f"unknown product '{e.product_id}'")
            for i, e in kept
            if e.product_id is not None and e.product_id not in products
        ]
        skip = {r.index for r in unknown}
        applied = [e for i, e in kept if i not in skip]
        vectors = self.store.product_vectors(list(products)) if products else {}
        report = profiles.add_events(applied, products, vectors) if applied else IngestReport()
        return Recorded(report, sorted(rejected + unknown, key=lambda r: r.index), products)

    # -- the spool -------------------------------------------------------------------------

    def drain(self, limit: int | None = None) -> int:
        """Apply what the spool holds (``limit`` events at most; None: all), with the files
        of stopped processes; how many events were applied or rejected. Stops, keeping the
        rest, while the store is down (logged)."""
        if self.spool is None or self.profiles is None:
            return 0
        try:
            drained = self._drain_spool(self.spool, limit=limit, orphans=True)
        except DOWN as exc:
            self._spool_waits = True
            logger.info("the spool waits (%d events): %s", self.spool.stats().queued, exc)
            return 0
        self._spool_waits = False
        return drained

    def _drain_spool(self, spool: EventSpool, *, limit: int | None, orphans: bool) -> int:
        drained = spool.drain(self._apply_queued, limit=limit, orphans=orphans)
        if drained:
            logger.info("applied %d events from the spool", drained)
        return drained

    def _apply_queued(self, events: list[Event]) -> None:
        """Apply events from the spool: those about unknown products are logged and left out;
        the profile store ignores those applied already (by event id)."""
        ids = sorted({e.product_id for e in events if e.product_id is not None})
        products = self.store.get_products(ids) if ids else {}
        known = [e for e in events if e.product_id is None or e.product_id in products]
        if len(known) < len(events):
            missing = sorted({e.product_id or "" for e in events} - set(products) - {""})
            logger.warning(
                "dropped %d queued events about unknown products: %s",
                len(events) - len(known),
                ", ".join(missing[:10]),
            )
        vectors = self.store.product_vectors(list(products)) if products else {}
        report = self._store().add_events(known, products, vectors) if known else IngestReport()
        if self.on_applied is not None and report.applied:
            try:
                self.on_applied(report, products)
            except Exception:  # counts are secondary: the events are applied
                logger.exception("counting %d events from the spool failed", len(report.applied))

    def start_draining(self, interval_s: float) -> None:
        """Drain the spool now and then every ``interval_s`` seconds, in a daemon thread,
        until `stop_draining`."""
        if self.spool is None or self.profiles is None or self._drainer is not None:
            return
        stop = self._stop = threading.Event()

        def loop() -> None:
            while True:
                try:
                    self.drain()
                except Exception:  # never let the thread die: try again next time
                    logger.exception("draining the event spool failed")
                if stop.wait(interval_s):
                    return

        self._drainer = threading.Thread(target=loop, name="event-spool", daemon=True)
        self._drainer.start()

    def stop_draining(self) -> None:
        """Stop the drain thread (waits for the chunk it applies)."""
        if self._stop is not None and self._drainer is not None:
            self._stop.set()
            self._drainer.join()
        self._stop = self._drainer = None

    def close(self) -> None:
        """Stop draining, leave the spool (what it holds waits for the next process), and
        close the profile store."""
        self.stop_draining()
        if self.spool is not None:
            self.spool.close()
        if self.profiles is not None:
            self.profiles.close()

    def shopper(self, user_id: str, limit: int = 50) -> tuple[Profile | None, list[Event]]:
        """The profile and last ``limit`` events that recommendations may use: nothing for a
        shopper who opted out, when profiles are off, or while their store is down (logged:
        the caller serves everyone's recommendations instead)."""
        if self.profiles is None or self.config.weight <= 0:
            return None, []
        try:
            if not self.profiles.enabled(user_id):
                return None, []
            return self.profiles.profile(user_id), self.profiles.events(user_id, limit)
        except ProfileStoreUnavailable as exc:
            logger.warning("profiles unavailable, recommending unpersonalized: %s", exc)
            return None, []

    def history(self, user_id: str, limit: int = 200) -> list[Event]:
        """The shopper's last ``limit`` stored events, newest first (none when profiles are
        off). `ProfileStoreUnavailable` when the store is down."""
        return self.profiles.events(user_id, limit) if self.profiles is not None else []

    def erase(self, user_id: str) -> Erased:
        """Delete the shopper's events queued in the spool (every process's file), their
        profile, events and settings, and every cached result and conversation of theirs.
        `ProfileStoreUnavailable` or `CacheError` when a backend is down: then nothing is
        reported erased, and erasing again finishes the job."""
        queued = self.spool.erase(user_id) if self.spool is not None else 0  # first: not applied
        erasure = self.profiles.erase(user_id) if self.profiles is not None else Erasure()
        prefix = user_prefix(user_id)
        conversations = results = 0
        for cache in self.caches:  # CacheError: retry (erasing again is harmless)
            conversations += cache.delete_prefix(prefix + CONVERSATION_KEYS, strict=True)
            results += cache.delete_prefix(prefix, strict=True)
        logger.info("erased user %s", user_id)
        return Erased(
            user_id=user_id,
            profile=erasure.profile,
            events=erasure.events,
            settings=erasure.settings,
            cached_results=results,
            conversations=conversations,
            queued=queued,
        )

    def _unpersonalized(self) -> Ranking:
        """Relevance order, diversified when diversity is configured."""
        policy = PersonalPolicy(self.store, None, self.config) if self.diversifies else None
        return Ranking(policy)

    def _store(self) -> ProfileStore:
        if self.profiles is None:
            msg = "profiles are off (SHOPGUIDE_PROFILES=none)"
            raise ProfileStoreUnavailable(msg)
        return self.profiles
