"""The OpenAPI fuzzer of `tests.app.test_fuzz_api`, the same cases and checks, against the app
on the real stack: Elasticsearch as the store, Redis as the cache and the profile store. What
the embedded store takes and Elasticsearch would turn into a 500 fails here (issue 22)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.main import create_app
from app.services import build_services
from app.settings import Settings
from indexer.indexer import index_catalog
from indexer.reader import read_catalog
from tests.app.test_fuzz_api import APP, SECRET, CitingLLM, test_answers_stream, test_api
from tests.conftest import PRODUCTS, write_jsonl
from tests.integration.conftest import alias_indices

__all__ = ["test_answers_stream", "test_api"]  # collected here too, with this module's `api`


def _server(variable: str) -> str:
    url = os.environ.get(variable)
    if not url:
        pytest.skip(f"{variable} is not set (no server to fuzz against)")
    return url


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    """The app over Elasticsearch (an alias of its own, deleted afterwards) and Redis, as the
    embedded one in `tests.app.test_fuzz_api`: shopper tokens, no rate limits."""
    es_url = _server("SHOPGUIDE_TEST_ES_URL")
    redis_url = _server("SHOPGUIDE_TEST_REDIS_URL")
    data_dir = tmp_path_factory.mktemp("fuzz-stack")
    alias = f"test-fuzz-{uuid.uuid4().hex}"
    settings = Settings(
        data_dir=Path(data_dir),
        store="elasticsearch",
        elasticsearch_url=es_url,
        elasticsearch_alias=alias,
        cache="redis",
        profiles="redis",
        redis_url=redis_url,
        embedder="hashing-256",
        semantic_min_similarity=0.2,
        shopper_token_secret=SECRET,
        rate_limit_search_per_minute=0,
        rate_limit_answers_per_minute=0,
        max_body_bytes=1024,
        _env_file=None,
    )
    services = build_services(settings, llm=CitingLLM())
    catalog = read_catalog(write_jsonl(Path(data_dir) / "catalog.jsonl", PRODUCTS))
    report = index_catalog(catalog, services.store, services.embedder, prune=True, progress=False)
    assert report.indexed == len(PRODUCTS), report.errors
    app = create_app(services=services)
    client = Elasticsearch(es_url, request_timeout=30)
    try:
        with TestClient(app):
            APP.app = app
            yield app
    finally:
        APP.app = None
        services.close()
        names = alias_indices(client, alias)
        if names:
            client.indices.delete(index=",".join(names))
        client.close()
