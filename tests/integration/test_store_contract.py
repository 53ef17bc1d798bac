"""The store contract (tests/retrieval/store_contract.py) against a real Elasticsearch 8.12; the
embedded store runs the same tests in tests/retrieval/test_embedded_store.py."""

from __future__ import annotations

import pytest

from retrieval.stores.elasticsearch import ElasticsearchStore
from tests.retrieval.store_contract import StoreContract

pytestmark = pytest.mark.integration


class TestElasticsearchStoreContract(StoreContract):
    @pytest.fixture
    def contract_store(self, es_indexed: ElasticsearchStore) -> ElasticsearchStore:
        return es_indexed

    @pytest.fixture
    def empty_store(self, es_store: ElasticsearchStore) -> ElasticsearchStore:
        return es_store
