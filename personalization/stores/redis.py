"""Profiles in Redis, shared by every API worker.

Per user: ``shopguide:profile:<user_id>`` (a hash: ``profile`` the profile as one JSON
document, ``vector_sum`` the taste vector as float32 bytes, ``rev`` the revision; a hash of the
earlier layout, one JSON field per part, still reads), ``shopguide:events:<user_id>`` (a list
of event JSON, newest first, trimmed to ``max_events``), ``shopguide:event-ids:<user_id>`` (a
sorted set of the applied event ids by event time, trimmed likewise: an event id is recognised
as a duplicate while it is among the last ``max_events``),
``shopguide:user-settings:<user_id>`` (the opt-out) and ``shopguide:quarantine:<user_id>``
(the last profile hash that did not load, moved aside when read and started again; erased with
the shopper; ``shopguide:profiles-quarantined`` counts them).

A batch is written in two round trips whatever the number of shoppers in it: one pipeline reads
every shopper's profile and which of the batch's event ids are known; the events are applied in
Python; one pipeline then calls, per shopper, a script (`WRITE_SCRIPT`) that writes the new
profile, events and ids only if the profile's revision (``rev``, a random token every write of
the profile sets anew) is still the one read and the shopper has not opted out meanwhile: a
compare-and-set per shopper, each touching only that shopper's keys. A shopper whose profile
changed in between (another worker, an erasure) is read and written again with the others so
changed, up to `FAST_ROUNDS` times; then, or when its profile does not load, it goes through
the careful path: an optimistic transaction (WATCH the profile and settings, read, apply, then
MULTI/EXEC), retried while another worker writes in between. So concurrent writers lose no
update and apply no event twice. Every write sets the time to live of the profile, events and
ids keys to ``ttl_s``; the opt-out setting does not expire (it is the shopper's choice, not
behaviour). Any Redis error raises `ProfileStoreUnavailable`; the shoppers written before it
stay written (each write is whole), and a batch sent again counts their events as duplicates.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import numpy as np
import orjson
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.typing import EncodableT, FieldT

from personalization.events import Event, check_user_id, hashed_user
from personalization.profile import Profile
from personalization.stores.base import (
    DEFAULT_HALF_LIFE_S,
    DEFAULT_MAX_EVENTS,
    DEFAULT_MAX_KEYS,
    DEFAULT_TTL_S,
    Catalog,
    Erasure,
    IngestReport,
    ProfileStoreStats,
    ProfileStoreUnavailable,
    StoreLimits,
    apply_new,
    by_user,
    rebuilt_profile,
)
from retrieval.schema import Product

logger = logging.getLogger(__name__)

T = TypeVar("T")

KEY_ROOT = "shopguide"
VECTOR_FIELD = "vector_sum"
PROFILE_FIELD = "profile"  # the rest of the profile, one JSON document
REVISION_FIELD = "rev"  # a fresh random token on every write of the profile
DISABLED = b"0"
BATCH_SHOPPERS = 500  # shoppers read and written per pair of pipelines
# The compare-and-set write of one shopper's batch. KEYS: profile, events, event ids, settings.
# ARGV: the revision read ("" for none), the time to live in ms, the events kept, the number n
# of profile fields, n field/value pairs, the number m of events, m event JSONs, m score/id
# pairs. Returns 1 when written, 0 when the profile changed since it was read (nothing
# written), -1 when the shopper opted out meanwhile (nothing written).
WRITE_SCRIPT = """
if redis.call('HGET', KEYS[4], 'enabled') == '0' then return -1 end
if (redis.call('HGET', KEYS[1], 'rev') or '') ~= ARGV[1] then return 0 end
local kept = tonumber(ARGV[3])
local at = 5 + 2 * tonumber(ARGV[4])
local m = tonumber(ARGV[at])
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 5, at - 1))
if redis.call('LPUSH', KEYS[2], unpack(ARGV, at + 1, at + m)) > kept then
  redis.call('LTRIM', KEYS[2], 0, kept - 1)
end
redis.call('ZADD', KEYS[3], unpack(ARGV, at + m + 1, at + 3 * m))
if redis.call('ZCARD', KEYS[3]) > kept then
  redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -kept - 1)
end
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[2]) end
return 1
"""
FAST_ROUNDS = 3  # batched tries of a shopper another worker keeps changing, then the careful path
MAX_SCRIPT_EVENTS = 2_000  # more of one shopper in a batch take the careful path (Lua's stack)
_FAILURES = (redis.RedisError, OSError)
# What a damaged profile hash or event entry raises when decoded (orjson.JSONDecodeError is a
# ValueError).
_DAMAGE = (ValueError, TypeError, KeyError, AttributeError)
QUARANTINED_KEY = f"{KEY_ROOT}:profiles-quarantined"  # a count: no shopper in it


@dataclass(frozen=True)
class UserKeys:
    """The names of a user's keys."""

    profile: str
    events: str
    event_ids: str
    settings: str
    quarantine: str  # the last damaged profile moved aside, erased with the shopper

    @classmethod
    def of(cls, user_id: str) -> UserKeys:
        """The keys of ``user_id`` (`ValueError` when it does not match `USER_ID_PATTERN`)."""
        check_user_id(user_id)
        return cls(
            f"{KEY_ROOT}:profile:{user_id}",
            f"{KEY_ROOT}:events:{user_id}",
            f"{KEY_ROOT}:event-ids:{user_id}",
            f"{KEY_ROOT}:user-settings:{user_id}",
            f"{KEY_ROOT}:quarantine:{user_id}",
        )

    def all(self) -> list[str]:
        """Every key, in a fixed order."""
        return [self.profile, self.events, self.event_ids, self.settings, self.quarantine]


class RedisProfileStore:
    """Profiles in Redis at ``url``, or through ``client`` (used as it is, never closed here;
    it must not decode responses).

    ``socket_timeout_s`` bounds each connect and reply; ``max_attempts`` bounds the
    optimistic retries of one user's write under contention.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        client: redis.Redis | None = None,
        half_life_s: float = DEFAULT_HALF_LIFE_S,
        ttl_s: float = DEFAULT_TTL_S,
        max_events: int = DEFAULT_MAX_EVENTS,
        max_keys: int = DEFAULT_MAX_KEYS,
        socket_timeout_s: float = 1.0,
        max_attempts: int = 50,
        catalog: Catalog | None = None,
    ) -> None:
        self.catalog = catalog  # rebuilds a damaged profile from the stored events
        if (url is None) == (client is None):
            msg = "give either a Redis url or a client"
            raise ValueError(msg)
        if socket_timeout_s <= 0 or max_attempts < 1:
            msg = "socket_timeout_s must be positive and max_attempts at least 1"
            raise ValueError(msg)
        self.limits = StoreLimits(half_life_s, ttl_s, max_events, max_keys)
        self.max_attempts = max_attempts
        self._owns_client = client is None
        if client is None:
            # Connects lazily. One retry on a connection error replaces a pooled connection
            # that a Redis restart closed.
            client = redis.Redis.from_url(
                str(url),
                socket_timeout=socket_timeout_s,
                socket_connect_timeout=socket_timeout_s,
                retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
            )
        elif client.get_connection_kwargs().get("decode_responses"):
            msg = "the Redis client must not decode responses (the vector is bytes)"
            raise ValueError(msg)
        self._client = client
        self._write = client.register_script(WRITE_SCRIPT)

    # -- the store -------------------------------------------------------------------------

    def add_events(
        self,
        events: Sequence[Event],
        products: Mapping[str, Product],
        vectors: Mapping[str, np.ndarray],
    ) -> IngestReport:
        """Apply ``events`` per user, in time order, once per event id (see `ProfileStore`)."""
        report = IngestReport()
        groups = list(by_user(events).items())
        for start in range(0, len(groups), BATCH_SHOPPERS):
            chunk = groups[start : start + BATCH_SHOPPERS]
            add = partial(self._add_batch, groups=chunk, products=products, vectors=vectors)
            report += self._call("add events", add)
        return report

    def _add_batch(
        self,
        client: redis.Redis,
        groups: Sequence[tuple[str, list[Event]]],
        products: Mapping[str, Product],
        vectors: Mapping[str, np.ndarray],
    ) -> IngestReport:
        """Write ``groups`` in batched rounds (`_try_batch`): the shoppers another worker
        changed meanwhile go again in the next round, up to `FAST_ROUNDS`; those left, and
        the profiles that do not load, through `_add_user`."""
        report = IngestReport()
        pending, careful = list(groups), []
        for _ in range(FAST_ROUNDS):
            done, pending, damaged = self._try_batch(client, pending, products, vectors)
            report += done
            careful += damaged
            if not pending:
                break
        for user_id, group in [*careful, *pending]:
            report += self._add_user(client, user_id, group, products, vectors)
        return report

    def _try_batch(
        self,
        client: redis.Redis,
        groups: Sequence[tuple[str, list[Event]]],
        products: Mapping[str, Product],
        vectors: Mapping[str, np.ndarray],
    ) -> tuple[IngestReport, list[tuple[str, list[Event]]], list[tuple[str, list[Event]]]]:
        """Read every shopper of ``groups`` in one pipeline, then write each one whose profile
        is unchanged, and who has not opted out, in another (`WRITE_SCRIPT`). Returns what was
        written, the shoppers changed meanwhile, and those for the careful path (a profile
        that does not load, too many events for one script call)."""
        keys = [UserKeys.of(user_id) for user_id, _ in groups]
        read = client.pipeline(transaction=False)
        for user_keys, (_, group) in zip(keys, groups, strict=True):
            read.hgetall(user_keys.profile)  # the opt-out is checked by the write
            read.zmscore(user_keys.event_ids, [event.event_id for event in group])
        replies = read.execute()
        accepted: list[Event] = []
        duplicates_n = opted_out = 0
        careful: list[tuple[str, list[Event]]] = []
        changed: list[tuple[str, list[Event]]] = []
        written: list[tuple[tuple[str, list[Event]], list[Event], int]] = []
        write = client.pipeline(transaction=False)
        ttl_ms = max(1, round(self.limits.ttl_s * 1000))
        for n, (user_keys, (user_id, group)) in enumerate(zip(keys, groups, strict=True)):
            fields, scores = replies[2 * n : 2 * n + 2]
            try:
                profile = _decode(user_id, fields)
            except _DAMAGE:  # moved aside and rebuilt on the careful path
                careful.append((user_id, group))
                continue
            seen = {e.event_id for e, score in zip(group, scores, strict=True) if score is not None}
            applied, duplicates = apply_new(profile, group, seen, products, vectors, self.limits)
            if not applied:
                duplicates_n += duplicates
                continue
            if len(applied) > MAX_SCRIPT_EVENTS:
                careful.append((user_id, group))
                continue
            profile_fields = _encode(profile)
            self._write(
                keys=[user_keys.profile, user_keys.events, user_keys.event_ids, user_keys.settings],
                args=[
                    fields.get(REVISION_FIELD.encode(), b""),
                    ttl_ms,
                    self.limits.max_events,
                    len(profile_fields),
                    *[part for pair in profile_fields.items() for part in pair],
                    len(applied),
                    *[orjson.dumps(e.to_dict()) for e in applied],
                    *[part for e in applied for part in (e.at, e.event_id)],
                ],
                client=write,
            )
            written.append(((user_id, group), applied, duplicates))
        outcomes = write.execute() if written else []
        for (shopper, applied, duplicates), outcome in zip(written, outcomes, strict=True):
            if outcome == 1:
                accepted += applied
                duplicates_n += duplicates
            elif outcome == -1:
                opted_out += len(shopper[1])
            else:  # changed since it was read: read, apply and write again
                changed.append(shopper)
        report = IngestReport(len(accepted), duplicates_n, opted_out, tuple(accepted))
        return report, changed, careful

    def _add_user(
        self,
        client: redis.Redis,
        user_id: str,
        events: Sequence[Event],
        products: Mapping[str, Product],
        vectors: Mapping[str, np.ndarray],
    ) -> IngestReport:
        keys = UserKeys.of(user_id)
        ttl_ms = max(1, round(self.limits.ttl_s * 1000))
        ids = [event.event_id for event in events]
        for attempt in range(self.max_attempts):
            with client.pipeline(transaction=True) as pipe:
                try:
                    pipe.watch(keys.profile, keys.settings)
                    if pipe.hget(keys.settings, "enabled") == DISABLED:
                        return IngestReport(opted_out=len(events))
                    damage = None
                    try:
                        profile = _decode(user_id, pipe.hgetall(keys.profile))
                    except _DAMAGE as exc:  # rebuilt from the events stored
                        stored = _parsed(pipe.lrange(keys.events, 0, -1))
                        damage = exc
                        profile = rebuilt_profile(user_id, stored, self.catalog, self.limits)
                    scores = pipe.zmscore(keys.event_ids, ids)
                    seen = {i for i, score in zip(ids, scores, strict=True) if score is not None}
                    applied, duplicates = apply_new(
                        profile, events, seen, products, vectors, self.limits
                    )
                    if not applied:
                        return IngestReport(duplicates=duplicates)
                    pipe.multi()
                    if damage is not None:  # moved aside, the profile starts again
                        pipe.rename(keys.profile, keys.quarantine)
                        pipe.incr(QUARANTINED_KEY)
                    pipe.delete(keys.profile)
                    pipe.hset(keys.profile, mapping=_encode(profile))
                    pipe.lpush(keys.events, *[orjson.dumps(e.to_dict()) for e in applied])
                    pipe.ltrim(keys.events, 0, self.limits.max_events - 1)
                    pipe.zadd(keys.event_ids, {e.event_id: e.at for e in applied})
                    pipe.zremrangebyrank(keys.event_ids, 0, -self.limits.max_events - 1)
                    for key in (keys.profile, keys.events, keys.event_ids):
                        pipe.pexpire(key, ttl_ms)
                    pipe.execute()
                    if damage is not None:
                        _log_quarantine(user_id, damage)
                    return IngestReport(
                        accepted=len(applied), duplicates=duplicates, applied=tuple(applied)
                    )
                except redis.WatchError:
                    logger.debug("a profile changed meanwhile (attempt %d)", attempt + 1)
                    time.sleep(0.001 * attempt)
        msg = f"could not update a profile after {self.max_attempts} attempts (contention)"
        raise ProfileStoreUnavailable(msg)

    def profile(self, user_id: str) -> Profile | None:
        """The stored profile, or None (Redis expires it ``ttl_s`` after the last write)."""
        keys = UserKeys.of(user_id)
        fields = self._call("read profile", lambda client: client.hgetall(keys.profile))
        if not fields:
            return None
        try:
            return _decode(user_id, fields)
        except _DAMAGE as exc:
            self._quarantine(keys, user_id, exc)
        stored = self.events(user_id, self.limits.max_events)
        profile = rebuilt_profile(user_id, stored, self.catalog, self.limits)
        if not profile.events:
            return None
        ttl_ms = max(1, round(self.limits.ttl_s * 1000))

        def keep(client: redis.Redis) -> None:
            with client.pipeline(transaction=True) as pipe:
                pipe.watch(keys.profile)
                if pipe.exists(keys.profile):  # a write made a new one meanwhile
                    return
                pipe.multi()
                pipe.hset(keys.profile, mapping=_encode(profile))
                pipe.pexpire(keys.profile, ttl_ms)
                with contextlib.suppress(redis.WatchError):
                    pipe.execute()

        self._call("rebuild profile", keep)
        logger.info(
            "damaged profile rebuilt",
            extra={"user": hashed_user(user_id), "events": profile.events},
        )
        return profile

    def _quarantine(self, keys: UserKeys, user_id: str, damage: Exception) -> None:
        """Move a profile that does not load aside (RENAME: atomic) and count it."""

        def move(client: redis.Redis) -> None:
            pipe = client.pipeline(transaction=True)
            pipe.rename(keys.profile, keys.quarantine)
            pipe.incr(QUARANTINED_KEY)
            try:
                pipe.execute()
            except redis.ResponseError:  # moved meanwhile by another reader
                logger.debug("profile already moved aside")

        self._call("quarantine profile", move)
        _log_quarantine(user_id, damage)

    def events(self, user_id: str, limit: int = 100) -> list[Event]:
        """The last ``limit`` events stored, the most recently recorded first."""
        if limit < 0:
            msg = f"limit must not be negative, got {limit}"
            raise ValueError(msg)
        if limit == 0:
            return []
        keys = UserKeys.of(user_id)
        return _parsed(
            self._call("read events", lambda client: client.lrange(keys.events, 0, limit - 1))
        )

    def set_enabled(self, user_id: str, enabled: bool) -> None:
        """Opt in (the default; the setting is removed) or out (kept until `erase`)."""
        keys = UserKeys.of(user_id)
        if enabled:
            self._call("opt in", lambda client: client.delete(keys.settings))
        else:
            self._call("opt out", lambda client: client.hset(keys.settings, "enabled", DISABLED))

    def enabled(self, user_id: str) -> bool:
        """Whether personalisation is on for the user (True unless they opted out)."""
        keys = UserKeys.of(user_id)
        value = self._call("read settings", lambda client: client.hget(keys.settings, "enabled"))
        return value != DISABLED

    def erase(self, user_id: str) -> Erasure:
        """Delete every key of the user in one transaction, and say what there was."""
        keys = UserKeys.of(user_id)

        def erase_all(client: redis.Redis) -> list[Any]:
            pipe = client.pipeline(transaction=True)
            pipe.exists(keys.profile)
            pipe.llen(keys.events)
            pipe.exists(keys.settings)
            for key in keys.all():
                pipe.delete(key)
            return list(pipe.execute())

        replies = self._call("erase", erase_all)
        deleted = replies[3:]
        return Erasure(
            profile=bool(replies[0]),
            events=int(replies[1]),
            settings=bool(replies[2]),
            removed=[key for key, count in zip(keys.all(), deleted, strict=True) if count],
        )

    def stats(self) -> ProfileStoreStats:
        """``redis``, available when it answers, and the profiles quarantined so far."""
        try:
            count = self._client.get(QUARANTINED_KEY)
        except _FAILURES:
            return ProfileStoreStats("redis", available=False)
        return ProfileStoreStats("redis", available=True, quarantined=int(count or 0))

    def close(self) -> None:
        """Close the connections this store opened."""
        if self._owns_client:
            try:
                self._client.close()
            except _FAILURES as exc:  # closing a broken pool must not fail a shutdown
                logger.debug("closing the redis client: %s", exc)

    def _call(self, operation: str, action: Callable[[redis.Redis], T]) -> T:
        """``action`` on the client; any Redis failure as `ProfileStoreUnavailable`."""
        try:
            return action(self._client)
        except _FAILURES as exc:
            logger.warning(
                "profile store unavailable (%s failed: %s)",
                operation,
                exc,
                extra={"profile_store": "redis", "error": type(exc).__name__},
            )
            msg = f"the Redis profile store is unavailable ({operation}: {exc})"
            raise ProfileStoreUnavailable(msg) from exc


def _encode(profile: Profile) -> dict[FieldT, EncodableT]:
    """The profile's hash fields: a new revision, the profile as one JSON document (`Profile.
    to_dict` without the vector) and the taste vector as little-endian float32 bytes."""
    fields: dict[FieldT, EncodableT] = {
        REVISION_FIELD: secrets.token_hex(8),
        PROFILE_FIELD: orjson.dumps(profile.to_dict(vector=False)),
    }
    if profile.vector_sum is not None:
        fields[VECTOR_FIELD] = np.asarray(profile.vector_sum, dtype="<f4").tobytes()
    return fields


def _parsed(raw: Sequence[bytes | str]) -> list[Event]:
    """The stored events that parse; one damaged entry does not hide the others (logged)."""
    events = []
    for item in raw:
        try:
            events.append(Event.from_dict(orjson.loads(item)))
        except _DAMAGE as exc:
            logger.warning("damaged event skipped: %s", type(exc).__name__)
    return events


def _log_quarantine(user_id: str, damage: Exception) -> None:
    logger.warning(
        "damaged profile quarantined",
        extra={"user": hashed_user(user_id), "damage": type(damage).__name__},
    )


def _decode(user_id: str, fields: Mapping[bytes | str, bytes | str]) -> Profile:
    """The profile of ``fields`` (HGETALL of a client that does not decode), or an empty one
    when there are none. A hash of the earlier layout (one JSON field per part of
    `Profile.to_dict`) reads too."""
    if not fields:
        return Profile(user_id)
    document = fields.get(PROFILE_FIELD.encode())
    if document is not None:
        data: dict[str, Any] = orjson.loads(document)
    else:
        skip = {REVISION_FIELD.encode(), VECTOR_FIELD.encode()}
        data = {
            _raw(name).decode(): orjson.loads(value)
            for name, value in fields.items()
            if name not in skip
        }
    vector = fields.get(VECTOR_FIELD.encode())
    if vector is not None:
        data[VECTOR_FIELD] = np.frombuffer(_raw(vector), dtype="<f4").astype(np.float32)
    return Profile.from_dict(data)


def _raw(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()
