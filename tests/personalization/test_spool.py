"""The event spool: events survive a profile store or catalog outage, are applied once when it
returns, are bounded, erased with their shopper, and a damaged line never blocks the rest.

The spool is real (files in tmp_path, fsync'd), so are the file profile store and the embedded
catalog; only "down" is simulated, by a wrapper that raises the backend's unavailable error.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.services import Services, build_services
from app.settings import Settings
from personalization.events import Event
from personalization.ranking import PersonalConfig
from personalization.service import Personalization
from personalization.spool import EventSpool, SpoolFull
from personalization.stores.base import ProfileStoreUnavailable
from personalization.stores.file import FileProfileStore
from retrieval.schema import Product
from retrieval.stores.base import StoreUnavailable
from retrieval.stores.embedded import EmbeddedStore
from tests.conftest import AUTH, ROOT
from tests.quoting import QuotingLLM

USER = "shopper-1"
OTHER = "shopper-2"


class DownProfiles:
    """A profile store that can be switched off: then every call raises."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.down = True

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if self.down and callable(attribute) and name not in ("close", "stats"):

            def refuse(*_: Any, **__: Any) -> Any:
                raise ProfileStoreUnavailable("profiles down (test)")

            return refuse
        return attribute


class DownCatalog:
    """A document store whose product lookups can be switched off."""

    def __init__(self, inner: EmbeddedStore) -> None:
        self.inner = inner
        self.down = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def get_products(self, ids: Any) -> dict[str, Product]:
        if self.down:
            raise StoreUnavailable("catalog down (test)")
        return self.inner.get_products(ids)

    def product_vectors(self, ids: Any) -> dict[str, np.ndarray]:
        if self.down:
            raise StoreUnavailable("catalog down (test)")
        return self.inner.product_vectors(ids)


def _event(n: int | str, user: str = USER, product: str | None = "hp-sony", **extra: Any) -> dict:
    kind = "purchase" if product is not None else "search"
    body = {"event_id": f"e-{n}", "user_id": user, "type": kind, **extra}
    if product is not None:
        body["product_id"] = product
    else:
        body["query"] = "headphones"
    return body


def _post(client: TestClient, *events: dict) -> Any:
    return client.post("/events", json={"events": list(events)})


def _spool_lines(folder: Path) -> list[bytes]:
    return [
        line
        for path in sorted(folder.glob("events-*.jsonl"))
        for line in path.read_bytes().splitlines()
    ]


def _profile_events(client: TestClient, user: str = USER) -> int:
    profile = client.get(f"/users/{user}/profile").json()["profile"]
    return 0 if profile is None else int(profile["events"])


@pytest.fixture
def app(tmp_path: Path, store: EmbeddedStore) -> Iterator[tuple[TestClient, Services]]:
    config = Settings(
        data_dir=tmp_path,
        embedder="hashing-256",
        event_spool_max_events=8,
        event_spool_drain_s=3600,  # drained by the tests, not by the clock
        _env_file=None,
    )
    services = build_services(config, llm=QuotingLLM(default="x"))
    with TestClient(create_app(services=services, owns_services=True), headers=AUTH) as client:
        yield client, services


def _down(services: Services) -> DownProfiles:
    personalization = services.personalization
    down = DownProfiles(personalization.profiles)
    personalization.profiles = down  # type: ignore[assignment]
    return down


class TestOverTheApi:
    def test_events_are_queued_while_profiles_are_down_and_applied_once_when_back(
        self, app: tuple[TestClient, Services], tmp_path: Path
    ) -> None:
        client, services = app
        down = _down(services)
        future = {"at": "9999-01-01T00:00:00Z"}
        first = _post(client, _event(1), _event(2), _event("late", **future), _event(3, OTHER))
        assert first.status_code == 200, first.text
        body = first.json()
        assert body["queued"] == 3 and body["accepted"] == 0
        assert [r["index"] for r in body["rejected"]] == [2]  # the window needs no store
        again = _post(client, _event(2), _event(4, product=None))  # a replay of e-2: queued too
        assert again.json()["queued"] == 2
        assert len(_spool_lines(tmp_path / "event-spool")) == 5
        assert client.get("/health").json()["event_spool"] == {"queued": 5, "max_events": 8}

        down.down = False
        after = _post(client, _event(5))  # drains first, then records its own
        assert after.json()["accepted"] == 1 and after.json()["queued"] == 0
        assert _spool_lines(tmp_path / "event-spool") == []
        assert _profile_events(client) == 4  # e-1, e-2, e-4, e-5: none lost, none twice
        assert _profile_events(client, OTHER) == 1
        assert client.get("/health").json()["event_spool"]["queued"] == 0
        trending = client.get("/trending").json()["results"]
        assert [r["id"] for r in trending] == ["hp-sony"]  # drained purchases count too

    def test_an_outage_does_not_make_every_batch_read_the_spool_again(
        self, app: tuple[TestClient, Services], tmp_path: Path
    ) -> None:
        client, services = app
        down = _down(services)
        spool = services.personalization.spool
        assert spool is not None
        drains: list[int] = []
        drain = spool.drain

        def counted(*args: Any, **kwargs: Any) -> int:
            drains.append(1)
            return drain(*args, **kwargs)

        spool.drain = counted  # type: ignore[method-assign]
        for n in range(6):
            assert _post(client, _event(n)).json()["queued"] == 1
        assert drains == []  # the first batch found the store down: the rest waits
        down.down = False
        after = _post(client, _event("back"))
        assert after.json()["accepted"] == 1 and len(drains) == 1  # then drained at once
        assert _spool_lines(tmp_path / "event-spool") == []
        assert _profile_events(client) == 7

    def test_a_catalog_outage_queues_and_unknown_products_are_dropped_when_applied(
        self, app: tuple[TestClient, Services], caplog: pytest.LogCaptureFixture
    ) -> None:
        client, services = app
        catalog = DownCatalog(services.personalization.store)  # type: ignore[arg-type]
        services.personalization.store = catalog  # type: ignore[assignment]
        body = _post(client, _event(1), _event(2, product="no-such-product")).json()
        assert body["queued"] == 2 and body["rejected"] == []

        catalog.down = False
        with caplog.at_level(logging.WARNING, logger="personalization.service"):
            assert services.personalization.drain() == 2
        assert "no-such-product" in caplog.text
        assert _profile_events(client) == 1

    def test_a_full_spool_is_a_503_with_retry_after_and_writes_nothing_of_the_batch(
        self, app: tuple[TestClient, Services], tmp_path: Path
    ) -> None:
        client, services = app
        _down(services)
        assert _post(client, *[_event(i) for i in range(6)]).json()["queued"] == 6
        full = _post(client, *[_event(i) for i in range(6, 9)])  # 9 > 8
        assert full.status_code == 503
        assert full.headers["Retry-After"] == "30"
        assert full.json()["error"]["code"] == "profiles_unavailable"
        lines = _spool_lines(tmp_path / "event-spool")
        assert len(lines) == 6 and all(line.endswith(b"}") for line in lines)
        assert _post(client, _event(6), _event(7)).json()["queued"] == 2  # what still fits

    def test_erasure_removes_the_shoppers_queued_events(
        self, app: tuple[TestClient, Services], tmp_path: Path
    ) -> None:
        client, services = app
        down = _down(services)
        _post(client, _event(1), _event(2), _event(3, OTHER), _event(4, product=None))
        down.down = False
        erased = client.delete(f"/users/{USER}")
        assert erased.status_code == 200, erased.text
        assert erased.json()["queued"] == 3
        spooled = b"".join(_spool_lines(tmp_path / "event-spool"))
        assert USER.encode() not in spooled and OTHER.encode() in spooled
        assert services.personalization.drain() == 1
        assert _profile_events(client) == 0 and _profile_events(client, OTHER) == 1

    def test_the_drain_thread_applies_queued_events(
        self, tmp_path: Path, store: EmbeddedStore
    ) -> None:
        config = Settings(
            data_dir=tmp_path, embedder="hashing-256", event_spool_drain_s=0.05, _env_file=None
        )
        services = build_services(config, llm=QuotingLLM(default="x"))
        with TestClient(create_app(services=services, owns_services=True), headers=AUTH) as c:
            down = _down(services)
            assert _post(c, _event(1), _event(2)).json()["queued"] == 2
            down.down = False
            deadline = time.monotonic() + 10
            while services.personalization.spool.pending and time.monotonic() < deadline:  # type: ignore[union-attr]
                time.sleep(0.02)
            assert _profile_events(c) == 2


# -- the spool itself ----------------------------------------------------------------------


def _events(n: int, user: str = USER, start: int = 0) -> list[Event]:
    return [
        Event(f"e-{i}", user, "purchase", 1_700_000_000.0 + i, "hp-sony")
        for i in range(start, start + n)
    ]


class Collect:
    """An ``apply`` that keeps what it is given (and can fail once after keeping)."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.fail_after_apply = False

    def __call__(self, events: list[Event]) -> None:
        self.events += events
        if self.fail_after_apply:
            self.fail_after_apply = False
            raise ProfileStoreUnavailable("crash between apply and truncation (test)")


def test_draining_hands_over_every_event_in_order_in_chunks(tmp_path: Path) -> None:
    spool = EventSpool(tmp_path, max_events=100, chunk=3)
    spool.append(_events(5))
    spool.append(_events(2, OTHER))
    collect = Collect()
    assert spool.drain(collect) == 7
    assert [e.event_id for e in collect.events][:5] == [f"e-{i}" for i in range(5)]
    assert spool.pending == 0 and not spool.path.exists()
    spool.close()
    assert list(tmp_path.iterdir()) == []  # an empty spool leaves nothing behind


def test_a_crash_between_apply_and_truncation_applies_nothing_twice(
    tmp_path: Path, store: EmbeddedStore
) -> None:
    profiles = FileProfileStore(tmp_path / "profiles")
    spool = EventSpool(tmp_path / "spool", chunk=2)
    personalization = Personalization(profiles, store, PersonalConfig(), spool=spool)
    spool.append(_events(5))
    real = personalization._apply_queued
    calls = 0

    def crash_once(events: list[Event]) -> None:
        nonlocal calls
        real(events)
        calls += 1
        if calls == 2:  # applied, but the chunk is still in the file
            raise ProfileStoreUnavailable("crash (test)")

    personalization._apply_queued = crash_once  # type: ignore[method-assign]
    assert personalization.drain() == 0  # stops at the failure (logged), keeps the chunk
    assert spool.pending == 3
    assert personalization.drain() == 3
    profile = profiles.profile(USER)
    assert profile is not None and profile.events == 5  # 0 lost, 0 counted twice


def test_the_bound_refuses_a_whole_batch(tmp_path: Path) -> None:
    spool = EventSpool(tmp_path, max_events=4)
    spool.append(_events(3))
    with pytest.raises(SpoolFull) as refused:
        spool.append(_events(2, start=3))
    assert refused.value.retry_after_s > 0
    assert spool.pending == 3 and len(spool.path.read_bytes().splitlines()) == 3


def test_a_damaged_last_line_is_skipped_with_a_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = EventSpool(tmp_path)
    spool.append(_events(2))
    with spool.path.open("ab") as f:  # a crash in the middle of an append
        f.write(b'{"event_id":"e-9","user_id":"shop')
    collect = Collect()
    with caplog.at_level(logging.WARNING, logger="personalization.spool"):
        assert spool.drain(collect) == 2
    assert "damaged line" in caplog.text
    assert spool.pending == 0 and not spool.path.exists()


def test_an_append_after_a_half_line_starts_on_a_line_of_its_own(tmp_path: Path) -> None:
    spool = EventSpool(tmp_path)
    spool.append(_events(1))
    with spool.path.open("ab") as f:
        f.write(b'{"event_id":"e-9"')
    spool.append(_events(1, start=1))
    collect = Collect()
    spool.drain(collect)
    assert [e.event_id for e in collect.events] == ["e-0", "e-1"]


def test_two_live_spools_do_not_drain_each_others_file(tmp_path: Path) -> None:
    a, b = EventSpool(tmp_path), EventSpool(tmp_path)
    a.append(_events(3))
    collect = Collect()
    assert b.drain(collect) == 0 and collect.events == []
    assert a.pending == 3 and len(a.path.read_bytes().splitlines()) == 3
    a.close()  # stops owning it, as a process that ends: b takes it over
    assert b.drain(collect) == 3
    assert not a.path.exists() and list(tmp_path.glob(f"{a.name}*")) == []
    b.close()


def test_a_dead_process_file_is_drained_by_the_next_one(tmp_path: Path) -> None:
    script = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from personalization.events import Event\n"
        "from personalization.spool import EventSpool\n"
        "spool = EventSpool(Path(sys.argv[1]))\n"
        "spool.append([Event('e-1', 'shopper-1', 'view', 1.0e9, 'hp-sony')])\n"
        "os._exit(0)  # no close: the process dies holding the file\n"
    )
    subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=True, cwd=ROOT)
    (orphan,) = tmp_path.glob("events-*.jsonl")
    spool = EventSpool(tmp_path)
    collect = Collect()
    assert spool.drain(collect, orphans=False) == 0  # its own file only: nothing
    assert spool.drain(collect) == 1 and [e.event_id for e in collect.events] == ["e-1"]
    assert not orphan.exists() and spool.stats().queued == 0
    spool.close()
    assert list(tmp_path.iterdir()) == []


def test_an_orphan_kept_while_the_store_is_down_shows_in_the_stats(tmp_path: Path) -> None:
    a = EventSpool(tmp_path)
    a.append(_events(2))
    a.close()
    b = EventSpool(tmp_path)
    failing = Collect()
    failing.fail_after_apply = True
    with pytest.raises(ProfileStoreUnavailable):
        b.drain(failing)
    assert b.stats().queued == 2 and a.path.exists()


def test_erasure_reaches_another_live_spools_file(tmp_path: Path) -> None:
    a, b = EventSpool(tmp_path), EventSpool(tmp_path)
    a.append(_events(2) + _events(1, OTHER, start=2))
    assert b.erase(USER) == 2
    assert USER.encode() not in a.path.read_bytes()
    a.append(_events(1, start=5))  # a sees the change: counts its file again
    assert a.pending == 2
    lines = [json.loads(line) for line in a.path.read_bytes().splitlines()]
    assert [line["event_id"] for line in lines] == ["e-2", "e-5"]
    a.close()
    b.close()
