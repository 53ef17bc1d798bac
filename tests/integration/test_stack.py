"""The API on the real stack: Elasticsearch for the store, Redis for the cache.

What a shopper sees when the cache hits, when the catalog changes under it, when Redis dies
and comes back, and when Elasticsearch is unreachable at start or goes away mid-run.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.services import Services, build_services
from app.settings import Settings
from generation.llm.fake import RecordingLLM
from indexer.indexer import index_catalog
from indexer.reader import read_catalog
from tests.conftest import AUTH, PRODUCTS, write_jsonl
from tests.integration.servers import OwnRedis, TcpProxy, free_port
from tests.quoting import QuotingLLM

QUERY = {"query": "noise cancelling headphones"}
# A reply in the answer format, true of whichever headphones come first (their category).
HEADPHONES = '[?] "Headphones" These are headphones.'


def stack_settings(tmp_path: Path, es_url: str, alias: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path,
        "store": "elasticsearch",
        "elasticsearch_url": es_url,
        "elasticsearch_alias": alias,
        "cache": "none",
        "embedder": "hashing-256",
        "reranker": "none",
        "semantic_min_similarity": 0.2,
        **overrides,
    }
    return Settings(**values, _env_file=None)


def index(services: Services, rows: list[dict[str, Any]], path: Path, *, prune: bool) -> None:
    report = index_catalog(
        read_catalog(write_jsonl(path, rows)),
        services.store,
        services.embedder,
        prune=prune,
        progress=False,
    )
    assert report.indexed == len(rows), report.errors


def until(check: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.1)


class Stack:
    def __init__(self, services: Services, client: TestClient, llm: RecordingLLM) -> None:
        self.services, self.client, self.llm = services, client, llm

    def search(self, **body: Any) -> dict[str, Any]:
        response = self.client.post("/search", json={**QUERY, **body})
        assert response.status_code == 200, response.text
        return dict(response.json())


@pytest.fixture
def make_stack(tmp_path: Path, es_url: str, es_alias: str) -> Iterator[Callable[..., Stack]]:
    clients: list[TestClient] = []

    def make(*, es: str = es_url, indexed: bool = True, **overrides: Any) -> Stack:
        llm = QuotingLLM(default=HEADPHONES)
        services = build_services(stack_settings(tmp_path, es, es_alias, **overrides), llm=llm)
        if indexed:
            index(services, PRODUCTS, tmp_path / "catalog.jsonl", prune=True)
        client = TestClient(create_app(services=services), headers=AUTH)
        client.__enter__()
        clients.append(client)
        return Stack(services, client, llm)

    yield make
    for client in clients:
        client.__exit__(None, None, None)


class TestRedisInFront:
    def test_a_repeated_search_is_served_from_redis(
        self, make_stack: Callable[..., Stack], redis_url: str
    ) -> None:
        stack = make_stack(cache="redis", redis_url=redis_url)
        first = stack.search()
        again = stack.search(query="  Noise  CANCELLING headphones ")
        assert (first["cached"], again["cached"]) == (False, True)
        assert [r["id"] for r in again["results"]] == [r["id"] for r in first["results"]]
        assert again["query"] == "  Noise  CANCELLING headphones "
        assert stack.search(cache=False)["cached"] is False
        assert stack.search(filters={"price_max": 100})["cached"] is False
        health = stack.client.get("/health").json()
        assert health["cache"]["backend"] == "redis"
        assert health["cache"]["hits"] >= 1

    def test_a_repeated_answer_does_not_call_the_model_again(
        self, make_stack: Callable[..., Stack], redis_url: str
    ) -> None:
        stack = make_stack(cache="redis", redis_url=redis_url)
        question = {"question": "quiet headphones for the office?"}
        first = stack.client.post("/advice", json=question).json()
        again = stack.client.post("/advice", json=question).json()
        assert (first["cached"], again["cached"]) == (False, True)
        assert again["answer"] == first["answer"]
        assert first["answer"].startswith("These are headphones [")
        assert again["claims"] == first["claims"] and first["claims"][0]["quote"]
        assert len(stack.llm.calls) == 1

    def test_a_reindex_invalidates_every_cached_result(
        self, make_stack: Callable[..., Stack], redis_url: str, tmp_path: Path
    ) -> None:
        stack = make_stack(cache="redis", redis_url=redis_url)
        stack.search()
        assert stack.search()["cached"]
        renamed = [
            {**row, "title": "Anker Soundcore Q30 Studio Edition"}
            if row["id"] == "hp-anker"
            else row
            for row in PRODUCTS
        ]
        index(stack.services, renamed, tmp_path / "v2.jsonl", prune=True)
        after = stack.search()
        assert after["cached"] is False
        titles = {r["id"]: r["title"] for r in after["results"]}
        assert titles["hp-anker"] == "Anker Soundcore Q30 Studio Edition"

    def test_an_upsert_invalidates_every_cached_result(
        self, make_stack: Callable[..., Stack], redis_url: str, tmp_path: Path
    ) -> None:
        stack = make_stack(cache="redis", redis_url=redis_url)
        before = stack.search()
        assert stack.search()["cached"]
        anker = next(row for row in PRODUCTS if row["id"] == "hp-anker")
        index(stack.services, [{**anker, "price": 11.5}], tmp_path / "one.jsonl", prune=False)
        after = stack.search()
        assert after["cached"] is False
        assert {r["id"] for r in after["results"]} == {r["id"] for r in before["results"]}
        prices = {r["id"]: r["price"] for r in after["results"]}
        assert prices["hp-anker"] == 11.5

    def test_redis_down_then_back(
        self,
        make_stack: Callable[..., Stack],
        redis_url: str,
        tmp_path: Path,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        own = OwnRedis(tmp_path)
        own.start()
        try:
            stack = make_stack(cache="redis", redis_url=own.url, redis_retry_after_s=0.3)
            expected = [r["id"] for r in stack.search()["results"]]
            assert stack.search()["cached"]

            own.stop()
            with caplog.at_level(logging.WARNING, logger="retrieval.caches.redis"):
                for _ in range(3):
                    served = stack.search()
                    assert served["cached"] is False
                    assert [r["id"] for r in served["results"]] == expected
            assert any("unavailable" in r.getMessage() for r in caplog.records)
            health = stack.client.get("/health")
            assert health.status_code == 200
            assert health.json()["cache"]["available"] is False
            assert health.json()["cache"]["errors"] >= 1

            own.start()  # same port, empty
            time.sleep(0.4)
            assert stack.search()["cached"] is False  # probes Redis, then stores
            assert stack.search()["cached"] is True
            assert stack.client.get("/health").json()["cache"]["available"] is True
        finally:
            own.stop()


class TestElasticsearchOutage:
    def test_unreachable_at_start(
        self, make_stack: Callable[..., Stack], caplog: pytest.LogCaptureFixture
    ) -> None:
        dead = f"http://127.0.0.1:{free_port()}"
        with caplog.at_level(logging.ERROR, logger="app.services"):
            stack = make_stack(es=dead, indexed=False)
        assert any("not available" in r.getMessage() for r in caplog.records)

        health = stack.client.get("/health")
        assert health.status_code == 503
        body = health.json()
        assert body["status"] == "unavailable"
        # The client learns what failed; the internal address goes to the log only.
        assert body["store"]["error"] == "the product store is unavailable"
        assert dead not in health.text

        caplog.clear()
        # the circuit breaker is open: failing fast is a warning, not an error with traceback
        with caplog.at_level(logging.WARNING, logger="app.api.errors"):
            response = stack.client.post("/search", json=QUERY)
        assert response.status_code == 503
        assert int(response.headers["Retry-After"]) >= 1
        error = response.json()["error"]
        assert error["code"] == "store_unavailable"
        assert dead not in response.text
        assert any(dead in r.getMessage() for r in caplog.records)

    def test_lost_mid_run_then_back(self, make_stack: Callable[..., Stack], es_url: str) -> None:
        host, port = es_url.removeprefix("http://").split(":")
        proxy = TcpProxy(host, int(port))
        proxy.start()
        try:
            stack = make_stack(es=proxy.url)
            expected = [r["id"] for r in stack.search()["results"]]

            proxy.cut()
            response = stack.client.post("/search", json={**QUERY, "cache": False})
            assert response.status_code == 503, response.text
            assert response.json()["error"]["code"] == "store_unavailable"
            assert proxy.url not in response.text  # the address is logged, not told
            until(lambda: stack.client.get("/health").status_code == 503)
            advice = stack.client.post("/advice", json={"question": "headphones?"})
            assert advice.status_code == 503
            assert json.loads(advice.text)["error"]["code"] == "store_unavailable"

            proxy.restore()
            until(lambda: stack.client.get("/health").status_code == 200)
            assert [r["id"] for r in stack.search()["results"]] == expected
        finally:
            proxy.cut()


class TestRecommendationsOnTheStack:
    def test_trending_and_complement_counts_are_shared_through_redis(
        self, make_stack: Callable[..., Stack], redis_url: str
    ) -> None:
        """Two API processes (two stacks) count into, and read, the same Redis sets."""
        import redis

        from recommendation.stores.redis import PAIRS, PREFIX

        client = redis.Redis.from_url(redis_url)
        for prefix in (PREFIX, PAIRS):
            for key in client.scan_iter(f"{prefix}*"):
                client.delete(key)
        try:
            first = make_stack(profiles="redis", redis_url=redis_url)
            second = make_stack(indexed=False, profiles="redis", redis_url=redis_url)
            user = f"u-{uuid.uuid4().hex}"  # a shopper no earlier run has left events for
            events = [
                {"event_id": f"t{i}", "user_id": user, "type": "cart", "product_id": pid}
                for i, pid in enumerate(["hp-anker", "hp-anker", "pan-lodge"])
            ]
            assert first.client.post("/events", json={"events": events}).status_code == 200
            body = second.client.get("/trending", params={"category": "Electronics"}).json()
            assert [r["id"] for r in body["results"]] == ["hp-anker"]
            assert body["results"][0]["score"] == 6.0
            together = second.client.get("/products/hp-anker/complements").json()
            assert [r["id"] for r in together["results"]] == ["pan-lodge"]
            assert first.client.delete(f"/users/{user}").status_code == 200
        finally:
            for prefix in (PREFIX, PAIRS):
                for key in client.scan_iter(f"{prefix}*"):
                    client.delete(key)
            client.close()

    def test_similar_products_on_elasticsearch(self, make_stack: Callable[..., Stack]) -> None:
        stack = make_stack()
        response = stack.client.get("/products/hp-anker/similar", params={"same_price_band": False})
        assert response.status_code == 200, response.text
        assert [r["id"] for r in response.json()["results"]] == ["hp-sony", "hp-jbl", "ear-sport"]

    def test_review_summary_on_elasticsearch_cached_in_redis_until_the_catalog_changes(
        self, make_stack: Callable[..., Stack], redis_url: str, tmp_path: Path
    ) -> None:
        stack = make_stack(cache="redis", redis_url=redis_url)
        first = stack.client.get("/products/hp-sony/review-summary").json()
        assert {a["aspect"] for a in first["aspects"]} == {"noise", "battery"}
        assert stack.client.get("/products/hp-sony/review-summary").json()["cached"]
        sony = next(row for row in PRODUCTS if row["id"] == "hp-sony")
        louder = {
            **sony,
            "reviews": [*sony["reviews"], {"text": "The sound is muddy.", "rating": 2}],
        }
        index(stack.services, [louder], tmp_path / "one.jsonl", prune=False)
        after = stack.client.get("/products/hp-sony/review-summary").json()
        assert after["cached"] is False and after["reviews"] == 3
        sound = next(a for a in after["aspects"] if a["aspect"] == "sound")
        assert (sound["negative"], sound["quotes"][0]["passage_id"]) == (1, "hp-sony#review-3")
