"""Two processes posting 5,000 events each for one shopper into Redis, some ids in both and
some repeated within a batch: exactly the distinct events are counted (issue 22)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from personalization.stores.base import ProfileStore
from tests.personalization.workers import (
    PER_WORKER,
    USER,
    distinct_events,
    open_store,
    run_two_workers,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def store(redis_url: str) -> Iterator[ProfileStore]:
    store = open_store("redis", redis_url)
    store.erase(USER)
    yield store
    store.erase(USER)
    store.close()


def test_two_processes_count_each_distinct_event_once(redis_url: str, store: ProfileStore) -> None:
    assert run_two_workers("redis", redis_url) == [0, 0]
    profile = store.profile(USER)
    assert profile is not None
    assert profile.events == distinct_events()
    stored = store.events(USER, limit=2 * PER_WORKER)
    assert len(stored) == len({e.event_id for e in stored}) == distinct_events()
