"""Similar products on Elasticsearch: the same contract as on the embedded store."""

from __future__ import annotations

import pytest

from retrieval.stores.elasticsearch import ElasticsearchStore
from tests.recommendation.similar_contract import SimilarContract

pytestmark = pytest.mark.integration


class TestSimilarOnElasticsearch(SimilarContract):
    @pytest.fixture
    def similar_store(self, es_indexed: ElasticsearchStore) -> ElasticsearchStore:
        return es_indexed
