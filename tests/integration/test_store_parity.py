"""The same catalog, embedder and searches on both stores give the same products (what each
store must answer on its own is the contract, tests/retrieval/store_contract.py).

BM25 scores differ between the stores (Elasticsearch analyses CJK text into bigrams only, the
embedded store adds jieba words; field statistics differ), so lexical results are compared by
top-1 and by result set; cosine similarity is exact in both, so vector hits must be identical.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from indexer.indexer import index_catalog
from indexer.reader import read_catalog
from retrieval.embedders.hashing import HashingEmbedder
from retrieval.schema import PASSAGE_KINDS, Filters, UnitKind
from retrieval.stores.base import DocumentStore
from retrieval.stores.elasticsearch import ElasticsearchStore
from retrieval.stores.embedded import EmbeddedStore
from tests.conftest import PRODUCTS
from tests.retrieval.store_contract import FILTERED, SEARCH_CONFIG, TOP_1, searched_product_ids

pytestmark = pytest.mark.integration

QUERIES = [query for query, _ in TOP_1] + [query for query, _ in FILTERED]


def _build(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> DocumentStore:
    if kind == "embedded":
        return EmbeddedStore(tmp_path / "index")
    es_url: str = request.getfixturevalue("es_url")
    es_alias: str = request.getfixturevalue("es_alias")
    return ElasticsearchStore(es_url, alias=es_alias)


def _indexed(store: DocumentStore, catalog_path: Path, embedder: HashingEmbedder) -> None:
    report = index_catalog(read_catalog(catalog_path), store, embedder, progress=False)
    assert report.indexed == len(PRODUCTS), report.errors


@pytest.fixture
def both_stores(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    catalog_path: Path,
    embedder: HashingEmbedder,
) -> Iterator[tuple[DocumentStore, DocumentStore]]:
    """(embedded, Elasticsearch), both with the shared test catalog."""
    stores = (_build("embedded", request, tmp_path), _build("elasticsearch", request, tmp_path))
    for store in stores:
        _indexed(store, catalog_path, embedder)
    yield stores
    for store in stores:
        store.close()


class TestSameResults:
    """Elasticsearch and the embedded store side by side."""

    @pytest.mark.parametrize(
        ("query", "filters"), [*((query, None) for query, _ in TOP_1), *FILTERED]
    )
    def test_same_products(
        self,
        both_stores: tuple[DocumentStore, DocumentStore],
        embedder: HashingEmbedder,
        query: str,
        filters: Filters | None,
    ) -> None:
        embedded, elasticsearch = (
            searched_product_ids(store, embedder, query, filters) for store in both_stores
        )
        assert set(elasticsearch) == set(embedded)
        assert elasticsearch[0] == embedded[0] or filters is not None

    @pytest.mark.parametrize("query", QUERIES)
    @pytest.mark.parametrize("kinds", [("product",), PASSAGE_KINDS])
    def test_semantic_hits_are_identical(
        self,
        both_stores: tuple[DocumentStore, DocumentStore],
        embedder: HashingEmbedder,
        query: str,
        kinds: tuple[UnitKind, ...],
    ) -> None:
        vector = embedder.embed_query(query)
        embedded, elasticsearch = (
            store.semantic(vector, kinds=kinds, filters=None, top_k=100) for store in both_stores
        )
        assert [h.score for h in elasticsearch] == pytest.approx(
            [h.score for h in embedded], abs=1e-5
        )
        assert {h.unit.id for h in elasticsearch} == {h.unit.id for h in embedded}
        # Unrelated texts tie at a cosine of about 0, in any order; related ones must not move.
        related = 0.05
        assert [h.unit for h in elasticsearch if h.score > related] == [
            h.unit for h in embedded if h.score > related
        ]

    @pytest.mark.parametrize(("query", "filters"), FILTERED)
    def test_lexical_hits_cover_the_same_units(
        self,
        both_stores: tuple[DocumentStore, DocumentStore],
        query: str,
        filters: Filters,
    ) -> None:
        embedded, elasticsearch = (
            store.lexical(
                query,
                kinds=("product",),
                filters=filters,
                top_k=20,
                boosts=SEARCH_CONFIG.boosts,
            )
            for store in both_stores
        )
        assert {h.unit.id for h in elasticsearch} == {h.unit.id for h in embedded}
        for es_hit in elasticsearch:
            assert set(es_hit.matched) <= set(SEARCH_CONFIG.boosts)

    def test_same_products_fetched_in_one_call(
        self, both_stores: tuple[DocumentStore, DocumentStore]
    ) -> None:
        embedded, elasticsearch = both_stores
        ids = [*[row["id"] for row in PRODUCTS][::-1], "missing", PRODUCTS[0]["id"]]
        fetched = elasticsearch.get_products(ids)
        assert fetched == embedded.get_products(ids)
        assert set(fetched) == {row["id"] for row in PRODUCTS}
        assert fetched[PRODUCTS[0]["id"]] == embedded.get_product(PRODUCTS[0]["id"])
        assert elasticsearch.get_products([]) == {}

    def test_same_product_vectors(self, both_stores: tuple[DocumentStore, DocumentStore]) -> None:
        embedded, elasticsearch = both_stores
        ids = [row["id"] for row in PRODUCTS] + ["missing", "hp-sony#review-0"]  # not a product
        es_vectors, em_vectors = elasticsearch.product_vectors(ids), embedded.product_vectors(ids)
        assert set(es_vectors) == set(em_vectors) == {row["id"] for row in PRODUCTS}
        for product_id, vector in em_vectors.items():
            np.testing.assert_allclose(es_vectors[product_id], vector, atol=1e-6)
        assert elasticsearch.product_vectors([]) == {}

    def test_same_stats_and_brands(self, both_stores: tuple[DocumentStore, DocumentStore]) -> None:
        embedded, elasticsearch = both_stores
        assert elasticsearch.brands() == embedded.brands()
        es_stats, em_stats = elasticsearch.stats(), embedded.stats()
        assert (es_stats.products, es_stats.units, es_stats.embedding_model) == (
            em_stats.products,
            em_stats.units,
            em_stats.embedding_model,
        )
        for row in PRODUCTS:
            assert elasticsearch.get_product(row["id"]) == embedded.get_product(row["id"])
            assert elasticsearch.get_units(row["id"]) == embedded.get_units(row["id"])
