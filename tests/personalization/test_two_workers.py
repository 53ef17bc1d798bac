"""Two processes posting 5,000 events each for one shopper into one file store, some ids in
both and some repeated within a batch: exactly the distinct events are counted (issue 22)."""

from __future__ import annotations

from pathlib import Path

from personalization.stores.file import FileProfileStore
from tests.personalization.workers import (
    PER_WORKER,
    USER,
    distinct_events,
    open_store,
    run_two_workers,
)


def test_two_processes_count_each_distinct_event_once(tmp_path: Path) -> None:
    assert run_two_workers("file", str(tmp_path)) == [0, 0]
    store = open_store("file", str(tmp_path))
    assert isinstance(store, FileProfileStore)
    profile = store.profile(USER)
    assert profile is not None
    assert distinct_events() < 2 * PER_WORKER  # the shared ids are there to be caught
    assert profile.events == distinct_events()
    stored = store.events(USER, limit=2 * PER_WORKER)
    assert len(stored) == len({e.event_id for e in stored}) == distinct_events()
