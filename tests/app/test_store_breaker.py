"""The API while the store's circuit breaker is open: 503 with Retry-After at once, cached
results still served, the breaker's state on /health."""

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.services import Services, build_services, build_store
from app.settings import Settings
from retrieval.breaker import CircuitBreaker
from retrieval.stores.base import StoreUnavailable
from retrieval.stores.elasticsearch import ElasticsearchStore
from retrieval.stores.elasticsearch.errors import BreakerOpen
from retrieval.stores.embedded import EmbeddedStore
from tests.conftest import AUTH
from tests.quoting import QuotingLLM

# What the API calls on a store while serving searches and products.
_READS = (
    "stats",
    "lexical",
    "semantic",
    "hybrid",
    "crosslingual",
    "brands",
    "get_product",
    "get_products",
    "get_units",
    "product_vectors",
)


@pytest.fixture
def services(tmp_path: Path, store: EmbeddedStore) -> Services:  # `store` indexes tmp_path
    settings = Settings(data_dir=tmp_path, embedder="hashing-256", _env_file=None)
    return build_services(settings, llm=QuotingLLM(default="[?] nothing"))


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(
        create_app(services=services), raise_server_exceptions=False, headers=AUTH
    ) as client:
        yield client


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def _open_breaker(store: object, monkeypatch: pytest.MonkeyPatch) -> CircuitBreaker:
    """Make ``store`` behave as the Elasticsearch store behind an open breaker: every read
    raises `BreakerOpen` without doing anything."""
    breaker = CircuitBreaker("Elasticsearch", retry_after_s=5.0, clock=Clock())
    breaker.failed(TimeoutError("stalled"))
    monkeypatch.setattr(store, "breaker", breaker, raising=False)

    def refuse() -> object:
        def call(*args: object, **kwargs: object) -> None:
            raise BreakerOpen(
                "Elasticsearch at http://10.0.0.5:9200 is not called (search) for 4.2 s more",
                retry_after_s=breaker.retry_in() - 0.8,
            )

        return call

    for name in _READS:
        monkeypatch.setattr(store, name, refuse())
    return breaker


def test_503_with_retry_after_at_once(
    client: TestClient,
    services: Services,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _open_breaker(services.store, monkeypatch)
    with caplog.at_level(logging.INFO, logger="app.api.errors"):
        response = client.post("/search", json={"query": "headphones"})
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"  # 4.2 s, rounded up
    assert response.json() == {
        "error": {"code": "store_unavailable", "message": "the product store is unavailable"}
    }
    assert "10.0.0.5" not in response.text
    # expected while the breaker is open: a warning per request, no traceback
    [record] = [r for r in caplog.records if r.name == "app.api.errors"]
    assert record.levelname == "WARNING"
    assert record.exc_info is None


def test_the_failure_that_opens_it_is_logged_in_full_with_retry_after(
    client: TestClient,
    services: Services,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def search(*args: object, **kwargs: object) -> None:
        try:
            raise StoreUnavailable("Elasticsearch cannot be reached (search): timed out")
        except StoreUnavailable as exc:
            raise BreakerOpen(str(exc), retry_after_s=5.0) from exc

    monkeypatch.setattr(services.search, "search", search)
    with caplog.at_level(logging.ERROR, logger="app.api.errors"):
        response = client.post("/search", json={"query": "headphones", "cache": False})
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    [record] = [r for r in caplog.records if r.name == "app.api.errors"]
    assert record.exc_info is not None


def test_a_plain_store_unavailable_has_no_retry_after(
    client: TestClient, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    def search(*args: object, **kwargs: object) -> None:
        raise StoreUnavailable("the index files cannot be read")

    monkeypatch.setattr(services.search, "search", search)
    response = client.post("/search", json={"query": "headphones", "cache": False})
    assert response.status_code == 503
    assert "Retry-After" not in response.headers


def test_cached_results_are_served_while_the_breaker_is_open(
    client: TestClient, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = client.post("/search", json={"query": "wireless headphones"})
    assert first.status_code == 200
    assert first.json()["results"]
    by_get = client.get("/search", params={"q": "wireless headphones"})
    assert by_get.json()["cached"] is True

    _open_breaker(services.store, monkeypatch)
    again = client.post("/search", json={"query": "wireless headphones"})
    assert again.status_code == 200
    assert again.json()["cached"] is True
    assert again.json()["results"] == first.json()["results"]
    # not in the cache: the store is needed, and fails fast
    other = client.post("/search", json={"query": "espresso machine"})
    assert other.status_code == 503
    assert other.headers["Retry-After"] == "5"


def test_health_shows_the_breaker(
    client: TestClient, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "breaker" not in client.get("/health").json()["store"]  # the embedded store has none
    breaker = CircuitBreaker("Elasticsearch", retry_after_s=5.0)
    monkeypatch.setattr(services.store, "breaker", breaker, raising=False)
    health = client.get("/health")
    assert health.status_code == 200
    assert health.json()["store"]["breaker"] == "closed"

    _open_breaker(services.store, monkeypatch)
    health = client.get("/health")
    assert health.status_code == 503
    assert health.json()["status"] == "unavailable"
    assert health.json()["store"]["breaker"] == "open"


def test_serving_gives_elasticsearch_the_deadline_and_a_breaker(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        store="elasticsearch",
        elasticsearch_url="http://127.0.0.1:1",
        elasticsearch_timeout_s=1.5,
        elasticsearch_retry_after_s=7,
        _env_file=None,
    )
    serving = build_store(settings, serving=True)
    assert isinstance(serving, ElasticsearchStore)
    assert serving.breaker is not None
    assert serving.breaker.retry_after_s == 7
    assert serving._client._request_timeout == 1.5
    assert serving._admin._request_timeout == 120  # administration keeps its long timeout
    indexing = build_store(settings)  # the indexer: every call tried, the client's 10 s
    assert isinstance(indexing, ElasticsearchStore)
    assert indexing.breaker is None
    assert indexing._client._request_timeout == 10
    serving.close()
    indexing.close()
