"""`FileProfileStore`: ingest rules, opt-out, erasure, atomic writes and expiry."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from personalization.stores.base import ProfileStoreUnavailable
from personalization.stores.file import FileProfileStore, user_file_name
from retrieval.stores.base import StoreUnavailable
from tests.personalization.helpers import DAY, HALF_LIFE, T0, event, product

ANKER = product("p-anker", "Anker", "Electronics > Audio > Headphones", 50.0)
SONY = product("p-sony", "Sony", "Electronics > Audio > Headphones", 300.0)
PRODUCTS = {p.id: p for p in (ANKER, SONY)}
VECTORS = {ANKER.id: np.array([1.0, 0.0], dtype=np.float32)}


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> FileProfileStore:
    return FileProfileStore(tmp_path / "profiles", half_life_s=HALF_LIFE, clock=clock)


def user_files(folder: Path) -> list[Path]:
    return sorted(path for path in folder.iterdir() if path.name not in (".lock", "quarantine"))


class TestIngest:
    def test_events_build_the_profile(self, store: FileProfileStore) -> None:
        events = [
            event("view", SONY.id, at=T0 + 2),
            event("purchase", ANKER.id, at=T0 + 1),
            event("search", query="headphones", at=T0 + 3),
        ]
        report = store.add_events(events, PRODUCTS, VECTORS)
        assert (report.accepted, report.duplicates, report.opted_out) == (3, 0, 0)
        profile = store.profile("u1")
        assert profile is not None
        assert profile.events == 3
        assert profile.brands == pytest.approx({"anker": 5.0, "sony": 1.0}, rel=1e-6)
        assert profile.preference() is not None
        # applied in time order; listed most recent first
        assert [e.type for e in store.events("u1")] == ["search", "view", "purchase"]
        assert [e.type for e in store.events("u1", limit=1)] == ["search"]
        assert store.events("u1", limit=0) == []
        assert store.profile("nobody") is None
        assert store.events("nobody") == []

    def test_idempotent_on_event_id(self, store: FileProfileStore) -> None:
        first = event("purchase", ANKER.id, event_id="order-1")
        assert store.add_events([first, first], PRODUCTS, {}).duplicates == 1
        report = store.add_events([first, event("view", SONY.id)], PRODUCTS, {})
        assert (report.accepted, report.duplicates) == (1, 1)
        profile = store.profile("u1")
        assert profile is not None
        assert profile.events == 2
        assert profile.brands["anker"] == pytest.approx(5.0)
        assert len(store.events("u1")) == 2

    def test_the_same_event_id_for_two_users_is_two_events(self, store: FileProfileStore) -> None:
        events = [event("view", ANKER.id, event_id="e", user=user) for user in ("a", "b")]
        assert store.add_events(events, PRODUCTS, {}).accepted == 2

    def test_keeps_the_last_events_and_a_small_profile(self, tmp_path: Path) -> None:
        store = FileProfileStore(tmp_path, max_events=3, max_keys=1)
        events = [event("view", pid, at=T0 + i) for i, pid in enumerate([ANKER.id, SONY.id] * 3)]
        store.add_events(events, PRODUCTS, {})
        assert [e.event_id for e in store.events("u1")] == [e.event_id for e in events[:2:-1]]
        profile = store.profile("u1")
        assert profile is not None
        assert profile.events == 6
        assert list(profile.brands) == ["sony"]  # the strongest, decayed least
        assert list(profile.categories) == ["electronics"]

    def test_an_invalid_user_id_is_refused_before_anything_is_written(
        self, store: FileProfileStore
    ) -> None:
        bad = event("view", ANKER.id, user="ok")
        object.__setattr__(bad, "user_id", "../../etc/passwd")  # got past validation somehow
        with pytest.raises(ValueError, match="invalid user id"):
            store.add_events([event("view", ANKER.id), bad], PRODUCTS, {})
        assert store.profile("u1") is None
        for method in (store.profile, store.events, store.enabled, store.erase):
            with pytest.raises(ValueError, match="invalid user id"):
                method("a:b")

    def test_threads_and_two_stores_on_one_folder_lose_nothing(self, tmp_path: Path) -> None:
        stores = [FileProfileStore(tmp_path), FileProfileStore(tmp_path)]  # two workers

        def send(worker: int) -> None:
            for i in range(20):
                store = stores[worker % 2]
                store.add_events([event("view", ANKER.id, event_id=f"w{worker}-{i}")], PRODUCTS, {})

        threads = [threading.Thread(target=send, args=(w,)) for w in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        profile = stores[0].profile("u1")
        assert profile is not None
        assert profile.events == 80
        assert profile.brands["anker"] == pytest.approx(80.0)


class TestOptOut:
    def test_opted_out_events_are_not_stored(self, store: FileProfileStore) -> None:
        store.add_events([event("purchase", ANKER.id)], PRODUCTS, {})
        assert store.enabled("u1")
        store.set_enabled("u1", False)
        assert not store.enabled("u1")
        report = store.add_events(
            [event("view", SONY.id), event("view", SONY.id, user="u2")], PRODUCTS, {}
        )
        assert (report.accepted, report.opted_out) == (1, 1)
        profile = store.profile("u1")
        assert profile is not None and profile.events == 1  # kept, but nothing new
        assert len(store.events("u1")) == 1
        store.set_enabled("u1", True)
        assert store.enabled("u1")
        assert store.add_events([event("view", SONY.id)], PRODUCTS, {}).accepted == 1

    def test_opting_in_again_leaves_no_file_behind(self, store: FileProfileStore) -> None:
        store.set_enabled("u1", False)
        assert len(user_files(store.folder)) == 1
        store.set_enabled("u1", True)
        assert user_files(store.folder) == []


class TestErase:
    def test_nothing_of_the_user_remains_on_disk(self, store: FileProfileStore) -> None:
        user = "shopper.42@example.com"
        store.add_events(
            [event("purchase", ANKER.id, user=user), event("view", SONY.id, user="other")],
            PRODUCTS,
            VECTORS,
        )
        store.set_enabled(user, False)
        digest = hashlib.sha256(user.encode()).hexdigest()
        assert (store.folder / f"{digest}.json").exists()
        assert all(user not in path.name for path in store.folder.iterdir())

        erasure = store.erase(user)
        assert (erasure.profile, erasure.events, erasure.settings) == (True, 1, True)
        assert erasure.removed == [user_file_name(user)]
        for path in store.folder.rglob("*"):
            assert digest not in path.name
            assert user.encode() not in path.read_bytes()
        assert store.profile(user) is None and store.enabled(user)
        assert store.profile("other") is not None
        assert store.erase(user) == type(erasure)()  # nothing left to remove

    def test_a_damaged_file_is_erased_with_what_was_moved_aside(
        self, store: FileProfileStore
    ) -> None:
        (store.folder / user_file_name("u1")).write_text("{not json")
        assert store.profile("u1") is None  # moved aside, started again
        [aside] = store.quarantine_dir.iterdir()
        erased = store.erase("u1").removed
        assert erased == [user_file_name("u1"), f"quarantine/{aside.name}"]
        assert user_files(store.folder) == [] and list(store.quarantine_dir.iterdir()) == []


class TestDamage:
    """A damaged file was a 503 on every request about the shopper until someone deleted it."""

    def test_unreadable_json_is_moved_aside_and_the_shopper_starts_again(
        self, store: FileProfileStore, caplog: pytest.LogCaptureFixture
    ) -> None:
        path = store.folder / user_file_name("u1")
        path.write_text("{not json")
        with caplog.at_level(logging.WARNING, logger="personalization.stores.file"):
            assert store.profile("u1") is None
        [aside] = store.quarantine_dir.iterdir()
        assert aside.read_text() == "{not json"  # kept for whoever repairs it
        assert store.stats().quarantined == 1
        [record] = [r for r in caplog.records if "quarantined" in r.getMessage()]
        assert record.__dict__["user"] != "u1" and "JSON" in record.__dict__["damage"]
        # an opt-out that cannot be read stays an opt-out until the shopper says otherwise
        assert not store.enabled("u1")
        assert store.add_events([event("view", ANKER.id)], PRODUCTS, {}).opted_out == 1
        store.set_enabled("u1", True)
        assert store.add_events([event("view", ANKER.id)], PRODUCTS, {}).accepted == 1

    def test_a_profile_that_does_not_load_keeps_the_events_and_the_setting(
        self, store: FileProfileStore
    ) -> None:
        first = event("purchase", ANKER.id)
        store.add_events([first], PRODUCTS, {})
        path = store.folder / user_file_name("u1")
        data = json.loads(path.read_text())
        data["profile"]["brands"] = "garbage"
        path.write_text(json.dumps(data))
        assert store.enabled("u1")
        again = store.add_events([first, event("view", SONY.id)], PRODUCTS, {})
        assert (again.accepted, again.duplicates) == (1, 1)  # its id is still known
        profile = store.profile("u1")
        assert profile is not None and set(profile.brands) == {"sony"}
        assert [e.event_id for e in store.events("u1")][-1] == first.event_id
        assert store.stats().quarantined == 1

    def test_a_damaged_profile_is_rebuilt_from_the_stored_events_with_the_catalog(
        self, tmp_path: Path, clock: Clock
    ) -> None:
        asked: list[list[str]] = []

        def catalog(ids: object) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
            asked.append(list(ids))  # type: ignore[call-overload]
            return {pid: PRODUCTS[pid] for pid in asked[-1] if pid in PRODUCTS}, {}

        store = FileProfileStore(
            tmp_path / "profiles", half_life_s=HALF_LIFE, clock=clock, catalog=catalog
        )
        store.add_events(
            [event("purchase", ANKER.id), event("view", SONY.id), event("search", query="tv")],
            PRODUCTS,
            {},
        )
        before = store.profile("u1")
        path = store.folder / user_file_name("u1")
        data = json.loads(path.read_text())
        data["profile"]["brands"] = "garbage"
        path.write_text(json.dumps(data))
        rebuilt = store.profile("u1")
        assert asked == [[ANKER.id, SONY.id]]
        assert before is not None and rebuilt is not None
        assert rebuilt.events == 3 and rebuilt.brands == pytest.approx(before.brands)
        assert store.stats().quarantined == 1
        assert store.profile("u1") == rebuilt  # written back: read once, rebuilt once

    def test_a_catalog_that_is_down_leaves_the_damaged_profile_empty(
        self, tmp_path: Path, clock: Clock
    ) -> None:
        def down(ids: object) -> Any:
            raise StoreUnavailable("Elasticsearch is stalled")

        store = FileProfileStore(tmp_path / "p", half_life_s=HALF_LIFE, clock=clock, catalog=down)
        store.add_events([event("purchase", ANKER.id)], PRODUCTS, {})
        (store.folder / user_file_name("u1")).write_text('{"version": 7}')
        assert store.profile("u1") is None and store.stats().quarantined == 1

    def test_another_format_is_moved_aside_too(self, store: FileProfileStore) -> None:
        (store.folder / user_file_name("u1")).write_text('{"version": 7}')
        assert store.add_events([event("view", ANKER.id)], PRODUCTS, {}).accepted == 1
        assert store.stats().quarantined == 1


class TestFiles:
    def test_a_failed_write_keeps_the_old_file(
        self, store: FileProfileStore, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        store.add_events([event("purchase", ANKER.id)], PRODUCTS, {})
        path = store.folder / user_file_name("u1")
        before = path.read_bytes()

        def crash(*_: object) -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(os, "replace", crash)
        with pytest.raises(ProfileStoreUnavailable, match="cannot write"):
            store.add_events([event("view", SONY.id)], PRODUCTS, {})
        monkeypatch.undo()
        assert path.read_bytes() == before
        assert user_files(store.folder) == [path]  # no temporary file left
        profile = store.profile("u1")
        assert profile is not None and profile.events == 1

    def test_leftover_temporary_files_are_removed_on_open(self, tmp_path: Path) -> None:
        (tmp_path / ".tmp-crashed").write_text('{"user_id": "u1"}')
        FileProfileStore(tmp_path)
        assert user_files(tmp_path) == []

    def test_the_file_is_json_with_the_stored_profile(self, store: FileProfileStore) -> None:
        store.add_events([event("cart", ANKER.id)], PRODUCTS, VECTORS)
        data = json.loads((store.folder / user_file_name("u1")).read_text())
        assert data["version"] == 1
        assert data["profile"]["brands"] == {"anker": 3.0}
        assert data["profile"]["vector_sum"] == [3.0, 0.0]
        assert data["expires_at"] == T0 + store.limits.ttl_s

    def test_stats(self, store: FileProfileStore) -> None:
        stats = store.stats()
        assert (stats.backend, stats.available) == ("file", True)
        store.close()


class TestExpiry:
    def test_a_profile_expires_after_the_ttl_from_its_last_write(
        self, tmp_path: Path, clock: Clock
    ) -> None:
        store = FileProfileStore(tmp_path, ttl_s=10 * DAY, clock=clock)
        store.add_events([event("view", ANKER.id)], PRODUCTS, {})
        clock.now += 9 * DAY
        store.add_events([event("view", SONY.id)], PRODUCTS, {})  # refreshes the expiry
        clock.now += 9 * DAY
        assert store.profile("u1") is not None
        clock.now += 1 * DAY
        assert store.profile("u1") is None
        assert store.events("u1") == []
        assert user_files(tmp_path) == []

    def test_an_opt_out_outlives_the_profile(self, tmp_path: Path, clock: Clock) -> None:
        store = FileProfileStore(tmp_path, ttl_s=DAY, clock=clock)
        store.add_events([event("view", ANKER.id)], PRODUCTS, {})
        store.set_enabled("u1", False)
        clock.now += 2 * DAY
        assert store.profile("u1") is None
        assert not store.enabled("u1")
        data = json.loads(user_files(tmp_path)[0].read_text())
        assert data == {"version": 1, "enabled": False}


def test_a_profile_dated_in_the_future_is_repaired_when_read_and_unfrozen_by_new_events(
    store: FileProfileStore,
) -> None:
    """What one event dated in the year 9999 did to a shopper before events were checked."""
    sony, asus = product("sony", "Sony", "Audio", 348.0), product("asus", "ASUS", "Laptops", 999.0)
    products = {"sony": sony, "asus": asus}
    store.add_events([event("view", "sony", at=253402300799.0)], products, {})
    read = store.profile("u1")
    assert read is not None and read.updated_at < 253402300799.0
    store.add_events([event("purchase", "asus", at=read.updated_at)], products, {})
    after = store.profile("u1")
    assert after is not None and after.brands["asus"] > after.brands["sony"]
