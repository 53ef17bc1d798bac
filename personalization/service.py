"""What the API does with shoppers: record their events, rank for them, and erase them."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from personalization.events import Event, EventWindow
from personalization.policy import PersonalPolicy
from personalization.profile import Profile
from personalization.ranking import PersonalConfig
from personalization.stores.base import (
    Erasure,
    IngestReport,
    ProfileStore,
    ProfileStoreUnavailable,
)
from retrieval.caches.base import Cache, user_prefix
from retrieval.schema import Product
from retrieval.stores.base import DocumentStore

logger = logging.getLogger(__name__)

CONVERSATION_KEYS = "conversation:"


@dataclass(frozen=True)
class Rejected:
    """An event left out of a batch, by its position in the batch, and why."""

    index: int
    reason: str


@dataclass(frozen=True)
class Recorded:
    """What a batch of events did."""

    report: IngestReport
    rejected: list[Rejected] = field(default_factory=list)
    products: Mapping[str, Product] = field(default_factory=dict)  # the events' products


@dataclass(frozen=True)
class Erased:
    """Everything removed for one shopper."""

    user_id: str
    profile: bool
    events: int
    settings: bool
    cached_results: int
    conversations: int


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
    ``window`` bounds the event times `record` accepts (None: any).
    """

    def __init__(
        self,
        profiles: ProfileStore | None,
        store: DocumentStore,
        config: PersonalConfig,
        caches: Sequence[Cache] = (),
        window: EventWindow | None = None,
    ) -> None:
        self.profiles = profiles
        self.store = store
        self.config = config
        self.window = window
        self.caches = list(dict.fromkeys(caches))  # one cache may serve several uses

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
        the rest recorded. `ProfileStoreUnavailable` when the
        store is down (nothing is half-applied for a user: each user's events go together)."""
        profiles = self._store()
        ids = sorted({e.product_id for e in events if e.product_id is not None})
        products = self.store.get_products(ids) if ids else {}
        now = time.time() if now is None else now
        rejected: list[Rejected] = []
        for i, e in enumerate(events):
            refusal = self.window.refusal(e.at, now) if self.window is not None else None
            if refusal is not None:
                rejected.append(Rejected(i, refusal))
            elif e.product_id is not None and e.product_id not in products:
                rejected.append(Rejected(i, f"unknown product '{e.product_id}'"))
        skip = {r.index for r in rejected}
        kept = [e for i, e in enumerate(events) if i not in skip]
        vectors = self.store.product_vectors(list(products)) if products else {}
        report = profiles.add_events(kept, products, vectors) if kept else IngestReport()
        return Recorded(report, rejected, products)

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
        """Delete the shopper's profile, events and settings, and every cached result and
        conversation of theirs. `ProfileStoreUnavailable` or `CacheError` when a backend is
        down: then nothing is reported erased, and erasing again finishes the job."""
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
