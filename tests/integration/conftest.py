"""Fixtures for the tests against real servers; every test in this folder is `integration`.

Elasticsearch comes from ``SHOPGUIDE_TEST_ES_URL`` (``scripts/test.sh`` starts one and sets
it; CI always does). Each test gets an alias of its own, ``test-<uuid>``, and every index of
that alias is deleted afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from indexer.indexer import index_catalog
from indexer.reader import read_catalog
from retrieval.embedders.hashing import HashingEmbedder
from retrieval.stores.elasticsearch import ElasticsearchStore
from tests.conftest import PRODUCTS

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.resolve().parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get("SHOPGUIDE_TEST_REDIS_URL")
    if not url:
        pytest.skip("SHOPGUIDE_TEST_REDIS_URL is not set (no Redis to test against)")
    return url


@pytest.fixture
def es_url() -> str:
    url = os.environ.get("SHOPGUIDE_TEST_ES_URL")
    if not url:
        pytest.skip("SHOPGUIDE_TEST_ES_URL is not set (no Elasticsearch to test against)")
    return url


def alias_indices(client: Elasticsearch, alias: str) -> list[str]:
    """Every index of this alias's generations, behind the alias or not."""
    return sorted(client.indices.get(index=f"{alias}-*", expand_wildcards="all").body)


@pytest.fixture
def es_client(es_url: str) -> Iterator[Elasticsearch]:
    client = Elasticsearch(es_url, request_timeout=30)
    yield client
    client.close()


@pytest.fixture
def es_alias(es_client: Elasticsearch) -> Iterator[str]:
    """An alias of this test's own; its indices are deleted afterwards."""
    alias = f"test-{uuid.uuid4().hex}"
    yield alias
    names = alias_indices(es_client, alias)
    if names:  # wildcard deletes are refused (action.destructive_requires_name)
        es_client.indices.delete(index=",".join(names))


@pytest.fixture
def es_store(es_url: str, es_alias: str) -> Iterator[ElasticsearchStore]:
    store = ElasticsearchStore(es_url, alias=es_alias)
    yield store
    store.close()


@pytest.fixture
def es_indexed(
    es_store: ElasticsearchStore, catalog_path: Path, embedder: HashingEmbedder
) -> ElasticsearchStore:
    """The store with the shared test catalog indexed."""
    report = index_catalog(read_catalog(catalog_path), es_store, embedder, progress=False)
    assert report.indexed == len(PRODUCTS), report.errors
    return es_store
