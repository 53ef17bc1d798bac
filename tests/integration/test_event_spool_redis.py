"""Events posted while the Redis of the profiles is unreachable are queued in the API's spool
and applied once when it is back: by the same process's drain thread, or by the next process
after a restart."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from app.main import create_app
from app.services import Services, build_services
from app.settings import Settings
from personalization.stores.redis import UserKeys
from retrieval.stores.embedded import EmbeddedStore
from tests.conftest import AUTH
from tests.integration.servers import TcpProxy
from tests.quoting import QuotingLLM

pytestmark = pytest.mark.integration


@pytest.fixture
def user(redis_url: str) -> Iterator[str]:
    """A shopper of this test's own; their keys are deleted afterwards."""
    user_id = f"spool-{uuid.uuid4().hex}"
    yield user_id
    client = redis.Redis.from_url(redis_url)
    client.delete(*UserKeys.of(user_id).all())
    client.close()


@pytest.fixture
def proxy(redis_url: str) -> Iterator[TcpProxy]:
    host, _, rest = redis_url.removeprefix("redis://").partition(":")
    proxy = TcpProxy(host, int(rest.split("/")[0]))
    proxy.start()
    yield proxy
    proxy.cut()


def _services(tmp_path: Path, profiles_url: str) -> Services:
    settings = Settings(
        data_dir=tmp_path,
        embedder="hashing-256",
        profiles="redis",
        profiles_redis_url=profiles_url,
        event_spool_drain_s=0.2,
        _env_file=None,
    )
    return build_services(settings, llm=QuotingLLM(default="x"))


def _events(user: str, *numbers: int) -> dict[str, Any]:
    return {
        "events": [
            {"event_id": f"e{n}", "user_id": user, "type": "cart", "product_id": "hp-sony"}
            for n in numbers
        ]
    }


def _until(condition: Callable[[], bool], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _stored(client: TestClient, user: str) -> int:
    response = client.get(f"/users/{user}/profile")
    assert response.status_code == 200, response.text
    profile = response.json()["profile"]
    return 0 if profile is None else int(profile["events"])


def test_events_queued_while_redis_is_cut_are_applied_once_when_it_is_back(
    tmp_path: Path, store: EmbeddedStore, proxy: TcpProxy, user: str
) -> None:
    services = _services(tmp_path, f"redis://127.0.0.1:{proxy.port}/0")
    with TestClient(create_app(services=services, owns_services=True), headers=AUTH) as client:
        assert client.post("/events", json=_events(user, 1, 2)).json()["accepted"] == 2

        proxy.cut()
        body = client.post("/events", json=_events(user, 2, 3, 4)).json()  # e2 again
        assert body["queued"] == 3 and body["accepted"] == 0
        assert client.post("/events", json=_events(user, 5)).json()["queued"] == 1
        assert client.get("/health").json()["event_spool"]["queued"] == 4

        proxy.restore()
        _until(lambda: client.get("/health").json()["event_spool"]["queued"] == 0)
        assert _stored(client, user) == 5  # e1..e5: none lost, e2 once


def test_the_next_process_applies_what_a_stopped_one_queued(
    tmp_path: Path, store: EmbeddedStore, proxy: TcpProxy, user: str, redis_url: str
) -> None:
    proxy.cut()
    first = _services(tmp_path, f"redis://127.0.0.1:{proxy.port}/0")
    with TestClient(create_app(services=first, owns_services=True), headers=AUTH) as client:
        assert client.post("/events", json=_events(user, 1, 2, 3)).json()["queued"] == 3
    assert list((tmp_path / "event-spool").glob("events-*.jsonl"))  # left for the next one

    second = _services(tmp_path, redis_url)  # the live Redis
    with TestClient(create_app(services=second, owns_services=True), headers=AUTH) as client:
        # applied, then the file goes: the drain thread may be between the two
        _until(
            lambda: (
                _stored(client, user) == 3
                and not list((tmp_path / "event-spool").glob("events-*.jsonl"))
            )
        )
        erased = client.delete(f"/users/{user}").json()
        assert erased["events"] == 3 and erased["queued"] == 0
