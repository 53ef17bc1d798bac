"""`RedisProfileStore` against a real Redis: concurrent workers, idempotency, TTLs, erasure."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator

import numpy as np
import pytest
import redis

from personalization.events import Event, EventType
from personalization.stores.base import ProfileStoreUnavailable
from personalization.stores.redis import FAST_ROUNDS, RedisProfileStore, UserKeys
from retrieval.schema import Product
from tests.integration.servers import free_port

pytestmark = pytest.mark.integration

T0 = 1_700_000_000.0
TTL_S = 3_600.0
ANKER = Product(id="p-anker", title="Anker Q30", brand="Anker", category="Audio", price=79.0)
SONY = Product(id="p-sony", title="Sony XM5", brand="Sony", category="Audio", price=348.0)
PRODUCTS = {p.id: p for p in (ANKER, SONY)}
VECTORS = {ANKER.id: np.array([0.1, 0.7, -0.2], dtype=np.float32)}


@pytest.fixture
def raw(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def user(raw: redis.Redis) -> Iterator[str]:
    """A user id of this test's own; its keys are deleted afterwards."""
    user_id = f"test-{uuid.uuid4().hex}"
    yield user_id
    raw.delete(*UserKeys.of(user_id).all())


@pytest.fixture
def store(redis_url: str) -> Iterator[RedisProfileStore]:
    store = RedisProfileStore(redis_url, ttl_s=TTL_S)
    yield store
    store.close()


def event(user: str, kind: EventType, product_id: str | None, n: int, at: float = T0) -> Event:
    return Event(f"e{n}", user, kind, at, product_id)


def keys_of(raw: redis.Redis, user: str) -> list[bytes]:
    return sorted(raw.scan_iter(match=f"*{user}*", count=1_000))


def test_two_workers_writing_one_user_lose_no_update(redis_url: str, user: str) -> None:
    workers = [RedisProfileStore(redis_url), RedisProfileStore(redis_url)]
    per_thread, threads_n = 25, 6

    def send(thread: int) -> None:
        store = workers[thread % 2]
        for i in range(per_thread):
            store.add_events([event(user, "view", ANKER.id, thread * 1_000 + i)], PRODUCTS, {})

    threads = [threading.Thread(target=send, args=(t,)) for t in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    profile = workers[0].profile(user)
    assert profile is not None
    assert profile.events == per_thread * threads_n
    assert profile.brands["anker"] == pytest.approx(per_thread * threads_n)  # same time: no decay
    assert len(workers[1].events(user, limit=1_000)) == per_thread * threads_n
    for worker in workers:
        worker.close()


def test_profile_round_trips_and_events_are_idempotent(store: RedisProfileStore, user: str) -> None:
    events = [
        event(user, "purchase", ANKER.id, 1),
        event(user, "view", SONY.id, 2, at=T0 + 60),
        event(user, "search", None, 3, at=T0 + 120),
    ]
    report = store.add_events([*events, events[0]], PRODUCTS, VECTORS)
    assert (report.accepted, report.duplicates, report.opted_out) == (3, 1, 0)
    again = store.add_events(events, PRODUCTS, VECTORS)
    assert (again.accepted, again.duplicates) == (0, 3)
    profile = store.profile(user)
    assert profile is not None
    assert profile.events == 3
    assert profile.brand_buys.keys() == {"anker"}
    assert profile.vector_sum is not None and profile.vector_sum.dtype == np.float32
    assert [e.event_id for e in store.events(user)] == ["e3", "e2", "e1"]
    assert store.events(user, limit=1) == [events[2]]
    assert store.profile(f"{user}-nobody") is None


def test_events_and_ids_are_trimmed(redis_url: str, raw: redis.Redis, user: str) -> None:
    store = RedisProfileStore(redis_url, max_events=3)
    store.add_events([event(user, "view", ANKER.id, i, at=T0 + i) for i in range(5)], PRODUCTS, {})
    keys = UserKeys.of(user)
    assert raw.llen(keys.events) == 3
    assert raw.zrange(keys.event_ids, 0, -1) == [b"e2", b"e3", b"e4"]
    store.add_events([event(user, "view", ANKER.id, 5, at=T0 + 5)], PRODUCTS, {})
    store.add_events([event(user, "view", ANKER.id, 6, at=T0 + 6)], PRODUCTS, {})
    assert [e.event_id for e in store.events(user)] == ["e6", "e5", "e4"]
    assert raw.zrange(keys.event_ids, 0, -1) == [b"e4", b"e5", b"e6"]
    store.close()


def test_every_behaviour_key_has_the_ttl(
    store: RedisProfileStore, raw: redis.Redis, user: str
) -> None:
    store.add_events([event(user, "cart", ANKER.id, 1)], PRODUCTS, VECTORS)
    store.set_enabled(user, False)
    keys = UserKeys.of(user)
    for key in (keys.profile, keys.events, keys.event_ids):
        assert 0 < raw.pttl(key) <= TTL_S * 1000, key
    assert raw.pttl(keys.settings) == -1  # the opt-out does not expire
    assert len(keys_of(raw, user)) == 4


def test_opt_out_stores_nothing_new(store: RedisProfileStore, user: str) -> None:
    store.add_events([event(user, "view", ANKER.id, 1)], PRODUCTS, {})
    assert store.enabled(user)
    store.set_enabled(user, False)
    assert not store.enabled(user)
    report = store.add_events([event(user, "purchase", SONY.id, 2)], PRODUCTS, {})
    assert (report.accepted, report.opted_out) == (0, 1)
    profile = store.profile(user)
    assert profile is not None and profile.events == 1
    store.set_enabled(user, True)
    assert store.enabled(user)
    assert store.add_events([event(user, "purchase", SONY.id, 2)], PRODUCTS, {}).accepted == 1


def test_erase_leaves_no_key_of_the_user(
    store: RedisProfileStore, raw: redis.Redis, user: str
) -> None:
    other = f"{user}-other"
    store.add_events(
        [event(user, "purchase", ANKER.id, 1), event(other, "view", SONY.id, 1)], PRODUCTS, VECTORS
    )
    store.set_enabled(user, False)
    erasure = store.erase(user)
    assert (erasure.profile, erasure.events, erasure.settings) == (True, 1, True)
    keys = UserKeys.of(user)
    assert sorted(erasure.removed) == sorted(set(keys.all()) - {keys.quarantine})  # none made
    assert [key for key in keys_of(raw, user) if not key.endswith(b"-other")] == []
    assert store.profile(other) is not None
    assert store.erase(user).removed == []
    store.erase(other)
    assert keys_of(raw, user) == []


def test_a_redis_that_is_down_raises_unavailable() -> None:
    store = RedisProfileStore(f"redis://127.0.0.1:{free_port()}/0", socket_timeout_s=0.5)
    with pytest.raises(ProfileStoreUnavailable, match="unavailable"):
        store.add_events([event("u1", "view", ANKER.id, 1)], PRODUCTS, {})
    for call in (store.profile, store.events, store.enabled, store.erase):
        with pytest.raises(ProfileStoreUnavailable):
            call("u1")
    with pytest.raises(ProfileStoreUnavailable):
        store.set_enabled("u1", False)
    assert not store.stats().available
    store.close()


def test_stats_and_client_checks(redis_url: str) -> None:
    store = RedisProfileStore(redis_url)
    assert (store.stats().backend, store.stats().available) == ("redis", True)
    store.close()
    decoding = redis.Redis.from_url(redis_url, decode_responses=True)
    with pytest.raises(ValueError, match="decode"):
        RedisProfileStore(client=decoding)
    decoding.close()
    with pytest.raises(ValueError, match="either"):
        RedisProfileStore()


def test_a_profile_dated_in_the_future_is_repaired_when_read_and_unfrozen_by_new_events(
    store: RedisProfileStore, user: str
) -> None:
    """What one event dated in the year 9999 did to a shopper before events were checked."""
    assert store.add_events([event(user, "view", SONY.id, 1, at=253402300799.0)], PRODUCTS, VECTORS)
    read = store.profile(user)
    assert read is not None and read.updated_at < 253402300799.0
    now = read.updated_at
    store.add_events([event(user, "purchase", ANKER.id, 2, at=now)], PRODUCTS, VECTORS)
    after = store.profile(user)
    assert after is not None and after.brands["anker"] > after.brands["sony"]


def test_a_damaged_profile_is_moved_aside_and_the_shopper_starts_again(
    store: RedisProfileStore, user: str, raw: redis.Redis
) -> None:
    keys = UserKeys.of(user)
    store.add_events([event(user, "purchase", SONY.id, 1)], PRODUCTS, VECTORS)
    raw.hset(keys.profile, "profile", b"{not json")
    before = store.stats().quarantined
    assert store.profile(user) is None  # moved aside, not a 503
    assert raw.exists(keys.quarantine) and not raw.exists(keys.profile)
    assert store.stats().quarantined == before + 1
    # damaged again, this time met by a write: the batch still applies, ids still known
    store.add_events([event(user, "view", ANKER.id, 2)], PRODUCTS, VECTORS)
    raw.hset(keys.profile, "profile", b"[1, 2")
    report = store.add_events(
        [event(user, "view", ANKER.id, 2), event(user, "cart", ANKER.id, 3)], PRODUCTS, VECTORS
    )
    assert (report.accepted, report.duplicates) == (1, 1)
    profile = store.profile(user)
    assert profile is not None and set(profile.brands) == {"anker"}
    assert store.stats().quarantined == before + 2
    assert keys.quarantine in store.erase(user).removed
    assert not raw.exists(keys.quarantine)


def test_a_damaged_profile_is_rebuilt_from_the_stored_events_with_the_catalog(
    redis_url: str, user: str, raw: redis.Redis
) -> None:
    def catalog(ids: object) -> tuple[dict[str, Product], dict[str, np.ndarray]]:
        return {pid: PRODUCTS[pid] for pid in ids if pid in PRODUCTS}, {}  # type: ignore[attr-defined]

    store = RedisProfileStore(redis_url, ttl_s=TTL_S, catalog=catalog)
    keys = UserKeys.of(user)
    store.add_events(
        [event(user, "purchase", SONY.id, 1), event(user, "view", ANKER.id, 2)], PRODUCTS, {}
    )
    before = store.profile(user)
    raw.hset(keys.profile, "profile", b"{not json")
    rebuilt = store.profile(user)  # on read: moved aside, rebuilt, written back
    assert before is not None and rebuilt is not None
    assert rebuilt.events == 2 and rebuilt.brands == pytest.approx(before.brands)
    assert raw.exists(keys.quarantine) and raw.pttl(keys.profile) > 0
    assert store.profile(user) == rebuilt
    raw.hset(keys.profile, "profile", b"[1, 2")  # met by a write: rebuilt, then the batch
    report = store.add_events([event(user, "cart", ANKER.id, 3)], PRODUCTS, {})
    assert report.accepted == 1
    after = store.profile(user)
    assert after is not None and after.events == 3 and set(after.brands) == {"sony", "anker"}
    store.close()


def test_batches_over_many_users_from_two_writers_count_each_distinct_event_once(
    redis_url: str, raw: redis.Redis
) -> None:
    """Two workers send batches over 300 shoppers each, the same events partly, ids repeated:
    each shopper ends with exactly its distinct events (no update lost, none applied twice)."""
    run = uuid.uuid4().hex[:8]
    users = [f"test-{run}-{n}" for n in range(300)]
    events = [
        Event(f"e{n}", users[(n * 7) % 300], "view", T0 + n % 50, ANKER.id) for n in range(1_500)
    ]
    halves = [events[:1_000], events[500:]]  # 500 shared events, 1,000 each
    halves = [[*half, *half[::10]] for half in halves]  # ids repeated within the batches too
    workers = [RedisProfileStore(redis_url), RedisProfileStore(redis_url)]
    reports = []

    def send(worker: int) -> None:
        for round_ in range(3):  # the same batches again: all duplicates then
            reports.append((round_, workers[worker].add_events(halves[worker], PRODUCTS, VECTORS)))

    threads = [threading.Thread(target=send, args=(w,)) for w in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert sum(report.accepted for _, report in reports) == len(events)
        assert sum(len(report.applied) for _, report in reports) == len(events)
        for user in users:
            expected = {e.event_id for e in events if e.user_id == user}
            profile = workers[0].profile(user)
            assert profile is not None and profile.events == len(expected), user
            assert profile.brands["anker"] == pytest.approx(len(expected), rel=0.5)
            stored = workers[1].events(user, limit=1_000)
            assert sorted(e.event_id for e in stored) == sorted(expected)
            keys = UserKeys.of(user)
            assert raw.zcard(keys.event_ids) == len(expected)
            for key in (keys.profile, keys.events, keys.event_ids):
                assert raw.pttl(key) > 0, key
    finally:
        for worker in workers:
            worker.close()
        raw.delete(*[key for user in users for key in UserKeys.of(user).all()])


class Meanwhile(dict[str, Product]):
    """The batch's products, doing ``act`` on the store's first ``times`` lookups: between the
    store's read of the shoppers and its write (a write by another worker, an erasure...)."""

    def __init__(self, act: Callable[[], object], times: int = 1) -> None:
        super().__init__(PRODUCTS)
        self.act, self.times = act, times

    def get(self, key: str, default: Product | None = None) -> Product | None:  # type: ignore[override]
        if self.times > 0:
            self.times -= 1
            self.act()
        return super().get(key, default)


def test_a_profile_written_by_another_worker_between_read_and_write_loses_nothing(
    redis_url: str, user: str
) -> None:
    store, other = RedisProfileStore(redis_url), RedisProfileStore(redis_url)
    store.add_events([event(user, "view", SONY.id, 1)], PRODUCTS, VECTORS)
    meanwhile = Meanwhile(
        lambda: other.add_events([event(user, "purchase", SONY.id, 2)], PRODUCTS, VECTORS)
    )
    bystander = f"{user}-b"
    report = store.add_events(
        [
            event(user, "cart", ANKER.id, 3),
            event(user, "purchase", SONY.id, 2),
            event(bystander, "view", ANKER.id, 4),
        ],
        meanwhile,
        VECTORS,
    )
    # the compare-and-set saw the other write: the shopper was read and applied again
    assert (report.accepted, report.duplicates) == (2, 1)
    profile = store.profile(user)
    assert profile is not None and profile.events == 3
    assert profile.brand_buys.keys() == {"anker", "sony"}
    assert sorted(e.event_id for e in store.events(user)) == ["e1", "e2", "e3"]
    by = store.profile(bystander)
    assert by is not None and by.events == 1
    store.erase(bystander)
    store.close()
    other.close()


def test_a_shopper_changed_in_every_batched_round_takes_the_careful_transaction(
    redis_url: str, user: str, raw: redis.Redis
) -> None:
    store, other = RedisProfileStore(redis_url), RedisProfileStore(redis_url)
    ids = iter(range(100, 200))
    meanwhile = Meanwhile(
        lambda: other.add_events([event(user, "view", SONY.id, next(ids))], PRODUCTS, VECTORS),
        times=FAST_ROUNDS,
    )
    watches = raw.info("commandstats").get("cmdstat_watch", {}).get("calls", 0)
    report = store.add_events([event(user, "purchase", ANKER.id, 1)], meanwhile, VECTORS)
    assert report.accepted == 1
    assert raw.info("commandstats")["cmdstat_watch"]["calls"] > watches
    profile = store.profile(user)
    assert profile is not None and profile.events == 1 + FAST_ROUNDS
    assert set(profile.brands) == {"anker", "sony"}
    store.close()
    other.close()


def test_an_erasure_between_read_and_write_is_not_undone(
    redis_url: str, user: str, raw: redis.Redis
) -> None:
    store = RedisProfileStore(redis_url)
    store.add_events([event(user, "purchase", SONY.id, 1)], PRODUCTS, VECTORS)
    meanwhile = Meanwhile(lambda: RedisProfileStore(redis_url).erase(user))
    report = store.add_events([event(user, "view", ANKER.id, 2)], meanwhile, VECTORS)
    assert report.accepted == 1
    profile = store.profile(user)
    assert profile is not None and profile.events == 1  # only what came after the erasure
    assert set(profile.brands) == {"anker"}
    assert [e.event_id for e in store.events(user)] == ["e2"]
    assert raw.zrange(UserKeys.of(user).event_ids, 0, -1) == [b"e2"]
    store.close()


def test_an_opt_out_between_read_and_write_stores_nothing(redis_url: str, user: str) -> None:
    store = RedisProfileStore(redis_url)
    meanwhile = Meanwhile(lambda: store.set_enabled(user, False))
    report = store.add_events([event(user, "view", ANKER.id, 1)], meanwhile, VECTORS)
    assert (report.accepted, report.opted_out) == (0, 1)
    assert store.profile(user) is None and store.events(user) == []
    store.close()


def test_a_profile_hash_of_the_earlier_layout_reads_and_is_rewritten(
    store: RedisProfileStore, user: str, raw: redis.Redis
) -> None:
    store.add_events([event(user, "purchase", ANKER.id, 1)], PRODUCTS, VECTORS)
    before = store.profile(user)
    assert before is not None and before.vector_sum is not None
    keys = UserKeys.of(user)
    old_layout: dict[str, str | bytes] = {  # one JSON field per part, no revision
        k: json.dumps(v) for k, v in before.to_dict(vector=False).items()
    }
    old_layout["vector_sum"] = before.vector_sum.astype("<f4").tobytes()
    raw.delete(keys.profile)
    raw.hset(keys.profile, mapping=old_layout)  # type: ignore[arg-type]
    assert store.profile(user) == before
    store.add_events([event(user, "view", SONY.id, 2)], PRODUCTS, VECTORS)
    assert sorted(raw.hkeys(keys.profile)) == [b"profile", b"rev", b"vector_sum"]
    after = store.profile(user)
    assert after is not None and after.events == 2 and after.brand_buys.keys() == {"anker"}


def test_every_write_of_a_profile_sets_a_new_revision(
    store: RedisProfileStore, user: str, raw: redis.Redis
) -> None:
    keys = UserKeys.of(user)
    revisions = set()
    for n in range(3):
        store.add_events([event(user, "view", ANKER.id, n)], PRODUCTS, VECTORS)
        revisions.add(raw.hget(keys.profile, "rev"))
    assert len(revisions) == 3 and None not in revisions
