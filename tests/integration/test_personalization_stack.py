"""Personalization on the real stack: Elasticsearch for the catalog and the product vectors,
Redis for the result cache, the conversations and the profiles. A shopper's events move their
results; erasing the shopper leaves no key of theirs in Redis."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from app.main import create_app
from app.services import Services, build_services
from tests.conftest import AUTH, PRODUCTS
from tests.integration.servers import free_port
from tests.integration.test_stack import HEADPHONES, index, stack_settings
from tests.quoting import QuotingLLM

USER = "stack-shopper@example.com"


@pytest.fixture
def stack(
    tmp_path: Path, es_url: str, es_alias: str, redis_url: str
) -> Iterator[tuple[Services, TestClient]]:
    settings = stack_settings(
        tmp_path,
        es_url,
        es_alias,
        cache="redis",
        redis_url=redis_url,
        profiles="redis",
        personalize_weight=1.0,
    )
    services = build_services(settings, llm=QuotingLLM(default=HEADPHONES))
    index(services, PRODUCTS, tmp_path / "catalog.jsonl", prune=True)
    with TestClient(create_app(services=services), headers=AUTH) as client:
        yield services, client


def _keys_of(redis_url: str, user: str) -> list[bytes]:
    client = redis.Redis.from_url(redis_url)
    try:
        return [k for k in client.scan_iter(match="*", count=1000) if user.encode() in k]
    finally:
        client.close()


def _ids(client: TestClient, **body: Any) -> list[str]:
    response = client.post("/search", json={"query": "headphones", **body})
    assert response.status_code == 200, response.text
    return [r["id"] for r in response.json()["results"]]


def test_events_personalize_and_erasure_leaves_nothing_in_redis(
    stack: tuple[Services, TestClient], redis_url: str
) -> None:
    services, client = stack
    anonymous = _ids(client)
    favourite = anonymous[-1]
    events = [
        {"event_id": f"p{i}", "user_id": USER, "type": "purchase", "product_id": favourite}
        for i in range(4)
    ]
    assert client.post("/events", json={"events": events}).json()["accepted"] == 4
    assert services.store.product_vectors([favourite])[favourite].shape == (256,)

    personalized = _ids(client, user_id=USER)
    assert personalized.index(favourite) < anonymous.index(favourite)
    assert _ids(client, user_id=USER) == personalized  # the cached copy, under the shopper
    advice = client.post(
        "/advice", json={"question": "headphones", "user_id": USER, "conversation_id": "c-1"}
    )
    assert advice.status_code == 200
    assert advice.json()["answer"].startswith("These are headphones [")
    assert _keys_of(redis_url, USER)  # profile, events, event ids, result, conversation

    erased = client.delete(f"/users/{USER}").json()
    assert erased["profile"] is True and erased["events"] == 4
    assert erased["cached_results"] == 1 and erased["conversations"] == 1
    assert _keys_of(redis_url, USER) == []
    assert _ids(client, user_id=USER) == anonymous


def test_a_dead_profile_redis_serves_unpersonalized_and_queues_events(
    tmp_path: Path, es_url: str, es_alias: str
) -> None:
    settings = stack_settings(
        tmp_path,
        es_url,
        es_alias,
        profiles="redis",
        profiles_redis_url=f"redis://127.0.0.1:{free_port()}/0",  # nothing listens there
    )
    services = build_services(settings, llm=QuotingLLM(default=HEADPHONES))
    index(services, PRODUCTS, tmp_path / "catalog.jsonl", prune=True)
    with TestClient(create_app(services=services), headers=AUTH) as client:
        assert _ids(client, user_id=USER) == _ids(client)
        event = {"event_id": "e", "user_id": USER, "type": "view", "product_id": "hp-jbl"}
        response = client.post("/events", json={"events": [event]})
        assert response.status_code == 200  # kept in the spool until the profiles are back
        assert response.json()["queued"] == 1
        assert client.delete(f"/users/{USER}").status_code == 503
        assert client.get("/health").json()["event_spool"]["queued"] == 0  # erased from it
