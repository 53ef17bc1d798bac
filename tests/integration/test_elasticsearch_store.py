"""`ElasticsearchStore` against a real Elasticsearch 8.12: the `DocumentStore` contract, the
index layout, alias swaps and failures."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from elasticsearch import Elasticsearch

from indexer.indexer import index_catalog
from indexer.reader import read_catalog
from indexer.units import product_units
from retrieval.embedders.hashing import HashingEmbedder
from retrieval.schema import PASSAGE_KINDS, Filters, Product
from retrieval.stores.base import ProductRecord, ScoredUnit, StoreError, StoreUnavailable
from retrieval.stores.elasticsearch import ElasticsearchStore, category_prefixes
from tests.conftest import PRODUCTS, write_jsonl
from tests.integration.conftest import alias_indices
from tests.retrieval.test_embedded_store import ALL_FILTERS, BOOSTS

pytestmark = pytest.mark.integration


def _ids(found: list[ScoredUnit]) -> set[str]:
    return {hit.unit.product_id for hit in found}


def _record(product: Product, embedder: HashingEmbedder) -> ProductRecord:
    units = product_units(product)
    return ProductRecord(product, units, embedder.embed_documents([u.text for u in units]))


class TestIndexLayout:
    def test_generation_index_behind_the_alias(
        self, es_indexed: ElasticsearchStore, es_client: Elasticsearch
    ) -> None:
        (index,) = alias_indices(es_client, es_indexed.alias)
        assert index.startswith(f"{es_indexed.alias}-")
        assert list(es_client.indices.get_alias(name=es_indexed.alias).body) == [index]
        mapping = es_client.indices.get_mapping(index=index)[index]["mappings"]
        assert mapping["_meta"]["embedding_model"] == "hashing-256"
        properties = mapping["properties"]
        assert properties["embedding"]["similarity"] == "cosine"
        assert properties["embedding"]["dims"] == 256
        assert properties["product"]["enabled"] is False
        for field in ("title", "brand_text", "category_text", "attributes", "description", "body"):
            assert "cjk" in properties[field]["fields"]
        assert es_indexed.stats().version == f"{index}@0"

    def test_documents_use_unit_ids_and_carry_product_facets(
        self, es_indexed: ElasticsearchStore, es_client: Elasticsearch
    ) -> None:
        doc = es_client.get(index=es_indexed.alias, id="hp-sony#review-1")["_source"]
        assert doc["brand"] == "sony" and doc["brand_display"] == "Sony"
        assert doc["category_path"] == category_prefixes("Electronics > Audio > Headphones")
        assert doc["price"] == 348.0 and doc["in_stock"] is True
        assert doc["facets"] == ["battery_life_hours=30", "noise_cancelling=true", "color=black"]
        facet = {"term": {"facets": "noise_cancelling=true"}}
        found = es_client.search(index=es_indexed.alias, query=facet, size=100)["hits"]["hits"]
        assert {h["_source"]["product_id"] for h in found} == {"hp-sony", "hp-anker"}
        assert "product" not in doc  # the full product sits on the product unit only

    def test_empty_store(self, es_store: ElasticsearchStore, embedder: HashingEmbedder) -> None:
        stats = es_store.stats()
        assert (stats.version, stats.products, stats.units) == (None, 0, 0)
        assert (
            es_store.lexical("headphones", kinds=("product",), filters=None, top_k=5, boosts=BOOSTS)
            == []
        )
        assert (
            es_store.semantic(
                embedder.embed_query("headphones"), kinds=("product",), filters=None, top_k=5
            )
            == []
        )
        assert es_store.get_product("hp-sony") is None
        assert es_store.brands() == []
        assert es_store.known_embeddings(product_units(Product(id="x", title="X")), "m") == {}


class TestFiltersInsideBothRetrievers:
    @pytest.mark.parametrize("filters", ALL_FILTERS)
    def test_lexical_and_semantic_return_only_matching_products(
        self, es_indexed: ElasticsearchStore, embedder: HashingEmbedder, filters: Filters
    ) -> None:
        expected = {p["id"] for p in PRODUCTS if filters.matches(Product.model_validate(p))}
        lexical = es_indexed.lexical(
            "headphones noise wireless skillet shoes",
            kinds=("product",),
            filters=filters,
            top_k=100,
            boosts=BOOSTS,
        )
        semantic = es_indexed.semantic(
            embedder.embed_query("headphones"), kinds=("product",), filters=filters, top_k=100
        )
        assert lexical and _ids(lexical) <= expected
        assert _ids(semantic) == expected  # kNN returns every matching unit when k is large

    def test_filters_apply_before_top_k_not_after(
        self, es_indexed: ElasticsearchStore, embedder: HashingEmbedder
    ) -> None:
        found = es_indexed.semantic(
            embedder.embed_query("Sony WH-1000XM5"),
            kinds=("product",),
            filters=Filters(price_max=50),
            top_k=1,
        )
        assert [h.unit.product_id for h in found] == ["hp-jbl"]

    def test_unknown_brand_matches_nothing(self, es_indexed: ElasticsearchStore) -> None:
        found = es_indexed.lexical(
            "headphones",
            kinds=("product",),
            filters=Filters(brands=["Nope"]),
            top_k=10,
            boosts=BOOSTS,
        )
        assert found == []

    def test_chinese_brand_and_category_filters(
        self, es_indexed: ElasticsearchStore, embedder: HashingEmbedder
    ) -> None:
        filters = Filters(category="数码 > 音频", brands=["华为"])
        semantic = es_indexed.semantic(
            embedder.embed_query("耳机"), kinds=("product", "review"), filters=filters, top_k=10
        )
        assert {h.unit.id for h in semantic} == {"zh-huawei", "zh-huawei#review-1"}


class TestLexical:
    def test_field_boosts_and_matched_terms(self, es_indexed: ElasticsearchStore) -> None:
        found = es_indexed.lexical(
            "anker headphones", kinds=("product",), filters=None, top_k=3, boosts=BOOSTS
        )
        assert found[0].unit.product_id == "hp-anker"
        assert set(found[0].matched) >= {"title", "brand"}
        assert "anker" in found[0].matched["brand"]
        assert "headphones" in found[0].matched["title"]
        assert [h.score for h in found] == sorted((h.score for h in found), reverse=True)

    def test_english_stemming(self, es_indexed: ElasticsearchStore) -> None:
        found = es_indexed.lexical(
            "skillets", kinds=("product",), filters=None, top_k=3, boosts=BOOSTS
        )
        assert [h.unit.product_id for h in found] == ["pan-lodge"]
        assert found[0].matched["title"] == ("skillet",)

    def test_chinese_query_finds_chinese_product(self, es_indexed: ElasticsearchStore) -> None:
        found = es_indexed.lexical(
            "降噪耳机", kinds=("product",), filters=None, top_k=3, boosts=BOOSTS
        )
        assert found[0].unit.product_id == "zh-huawei"
        assert set(found[0].matched["title"]) == {"降噪", "耳机"}

    def test_passages_are_separate_from_products(self, es_indexed: ElasticsearchStore) -> None:
        found = es_indexed.lexical(
            "induction", kinds=("qa", "review"), filters=None, top_k=5, boosts={"body": 1.0}
        )
        assert [h.unit.id for h in found] == ["pan-lodge#qa-1"]
        assert found[0].matched == {"body": ("induction",)}

    def test_passages_of_one_product(
        self, es_indexed: ElasticsearchStore, embedder: HashingEmbedder
    ) -> None:
        only_sony = Filters(product_ids=["hp-sony"])
        lexical, semantic = es_indexed.hybrid(
            "noise battery fold",
            embedder.embed_query("noise battery fold"),
            kinds=PASSAGE_KINDS,
            filters=only_sony,
            top_k=20,
            boosts={"body": 1.0},
        )
        assert _ids(lexical) == _ids(semantic) == {"hp-sony"}
        assert {h.unit.id for h in semantic} == {
            u.id for u in es_indexed.get_units("hp-sony", PASSAGE_KINDS)
        }

    def test_no_match_is_empty(self, es_indexed: ElasticsearchStore) -> None:
        assert (
            es_indexed.lexical("zzzqqq", kinds=("product",), filters=None, top_k=3, boosts=BOOSTS)
            == []
        )


class TestSemantic:
    def test_scores_are_cosine_similarities(
        self, es_indexed: ElasticsearchStore, embedder: HashingEmbedder
    ) -> None:
        vector = embedder.embed_query("wireless headphones")
        found = es_indexed.semantic(vector, kinds=("product",), filters=None, top_k=3)
        for hit in found:
            expected = float(embedder.embed_documents([hit.unit.text])[0] @ vector)
            assert hit.score == pytest.approx(expected, abs=1e-5)

    def test_wrong_query_dimension_is_a_store_error(self, es_indexed: ElasticsearchStore) -> None:
        with pytest.raises(StoreError, match="dimension"):
            es_indexed.semantic(np.ones(3), kinds=("product",), filters=None, top_k=3)

    def test_hybrid_is_both_searches_with_the_same_filters(
        self, es_indexed: ElasticsearchStore, embedder: HashingEmbedder
    ) -> None:
        filters = Filters(price_max=100)
        vector = embedder.embed_query("headphones")
        lexical, semantic = es_indexed.hybrid(
            "headphones", vector, kinds=("product",), filters=filters, top_k=5, boosts=BOOSTS
        )
        assert lexical == es_indexed.lexical(
            "headphones", kinds=("product",), filters=filters, top_k=5, boosts=BOOSTS
        )
        assert semantic == es_indexed.semantic(vector, kinds=("product",), filters=filters, top_k=5)

    def test_hybrid_without_a_vector_is_lexical_only(self, es_indexed: ElasticsearchStore) -> None:
        lexical, semantic = es_indexed.hybrid(
            "headphones", None, kinds=("product",), filters=None, top_k=5, boosts=BOOSTS
        )
        assert semantic == []
        assert lexical == es_indexed.lexical(
            "headphones", kinds=("product",), filters=None, top_k=5, boosts=BOOSTS
        )


class TestReads:
    def test_get_product_round_trips(self, es_indexed: ElasticsearchStore) -> None:
        for row in PRODUCTS:
            assert es_indexed.get_product(row["id"]) == Product.model_validate(row)
        assert es_indexed.get_product("missing") is None

    def test_get_units_in_order_and_by_kind(self, es_indexed: ElasticsearchStore) -> None:
        product = Product.model_validate(PRODUCTS[0])
        assert es_indexed.get_units("hp-sony") == product_units(product)
        reviews = es_indexed.get_units("hp-sony", ["review"])
        assert [u.id for u in reviews] == ["hp-sony#review-1", "hp-sony#review-2"]
        assert es_indexed.get_units("missing") == []

    def test_brands_keep_their_case(self, es_indexed: ElasticsearchStore) -> None:
        assert es_indexed.brands() == sorted({p["brand"] for p in PRODUCTS})

    def test_stats(self, es_indexed: ElasticsearchStore) -> None:
        stats = es_indexed.stats()
        assert stats.backend == "elasticsearch"
        assert stats.products == len(PRODUCTS)
        assert stats.units == sum(len(product_units(Product.model_validate(p))) for p in PRODUCTS)
        assert stats.embedding_model == "hashing-256"


class TestWrites:
    def test_unchanged_texts_reuse_their_vectors(
        self, es_indexed: ElasticsearchStore, catalog_path: Path, embedder: HashingEmbedder
    ) -> None:
        report = index_catalog(read_catalog(catalog_path), es_indexed, embedder, progress=False)
        assert report.embedded == 0
        assert report.reused_embeddings == report.units
        report = index_catalog(
            read_catalog(catalog_path), es_indexed, embedder, prune=True, progress=False
        )
        assert report.embedded == 0  # a full re-index reuses them too

    def test_changed_text_is_re_embedded(
        self, tmp_path: Path, es_indexed: ElasticsearchStore, embedder: HashingEmbedder
    ) -> None:
        changed = dict(PRODUCTS[0], title="Sony WH-1000XM6 Headphones")
        path = write_jsonl(tmp_path / "one.jsonl", [changed])
        report = index_catalog(read_catalog(path), es_indexed, embedder, progress=False)
        assert report.embedded == 1
        product = es_indexed.get_product("hp-sony")
        assert product is not None and product.title == "Sony WH-1000XM6 Headphones"
        assert es_indexed.stats().products == len(PRODUCTS)

    def test_known_embeddings_need_the_same_model(
        self, es_indexed: ElasticsearchStore, embedder: HashingEmbedder
    ) -> None:
        units = product_units(Product.model_validate(PRODUCTS[0]))
        known = es_indexed.known_embeddings(units, embedder.name)
        assert set(known) == {u.id for u in units}
        np.testing.assert_allclose(
            known["hp-sony"], embedder.embed_documents([units[0].text])[0], atol=1e-6
        )
        assert es_indexed.known_embeddings(units, "another-model") == {}

    def test_prune_removes_products_missing_from_the_file(
        self,
        tmp_path: Path,
        es_indexed: ElasticsearchStore,
        es_client: Elasticsearch,
        embedder: HashingEmbedder,
    ) -> None:
        before = alias_indices(es_client, es_indexed.alias)
        path = write_jsonl(tmp_path / "two.jsonl", PRODUCTS[:2])
        report = index_catalog(read_catalog(path), es_indexed, embedder, prune=True, progress=False)
        assert report.removed == len(PRODUCTS) - 2
        assert es_indexed.stats().products == 2
        assert es_indexed.get_product("pan-lodge") is None
        assert es_indexed.get_units("pan-lodge") == []
        after = alias_indices(es_client, es_indexed.alias)
        assert len(after) == 1 and after != before  # the old generation is gone
        assert es_indexed.stats().version == f"{after[0]}@0"

    def test_without_prune_others_stay(
        self, tmp_path: Path, es_indexed: ElasticsearchStore, embedder: HashingEmbedder
    ) -> None:
        path = write_jsonl(tmp_path / "two.jsonl", PRODUCTS[:2])
        report = index_catalog(read_catalog(path), es_indexed, embedder, progress=False)
        assert report.removed == 0
        assert es_indexed.stats().products == len(PRODUCTS)

    def test_upsert_changes_the_version_and_drops_removed_units(
        self, tmp_path: Path, es_indexed: ElasticsearchStore, embedder: HashingEmbedder
    ) -> None:
        before = es_indexed.stats().version
        fewer_reviews = dict(PRODUCTS[0], reviews=PRODUCTS[0]["reviews"][:1])
        path = write_jsonl(tmp_path / "one.jsonl", [fewer_reviews])
        report = index_catalog(read_catalog(path), es_indexed, embedder, progress=False)
        after = es_indexed.stats().version
        assert before is not None and after is not None
        assert report.version == after != before
        assert after.split("@")[0] == before.split("@")[0]  # same index, one more write
        assert [u.id for u in es_indexed.get_units("hp-sony", ["review"])] == ["hp-sony#review-1"]
        assert (
            es_indexed.lexical(
                "commuting", kinds=("review",), filters=None, top_k=5, boosts={"body": 1.0}
            )
            == []
        )

    def test_delete_products(self, es_indexed: ElasticsearchStore) -> None:
        before = es_indexed.stats()
        assert es_indexed.delete_products(["hp-jbl", "missing"]) == 1
        after = es_indexed.stats()
        assert es_indexed.get_product("hp-jbl") is None
        assert es_indexed.get_units("hp-jbl") == []
        assert after.products == len(PRODUCTS) - 1
        assert after.version != before.version
        assert "JBL" not in es_indexed.brands()
        assert es_indexed.delete_products(["missing"]) == 0

    def test_other_embedding_model_needs_a_full_reindex(
        self, tmp_path: Path, es_indexed: ElasticsearchStore, catalog_path: Path
    ) -> None:
        other = HashingEmbedder(64)
        with pytest.raises(StoreError, match="re-index the whole catalog"):
            es_indexed.writer(embedding_model=other.name, dim=other.dim)
        report = index_catalog(
            read_catalog(catalog_path), es_indexed, other, prune=True, progress=False
        )
        assert report.embedded == report.units  # nothing reused across models
        assert es_indexed.stats().embedding_model == "hashing-64"
        found = es_indexed.semantic(
            other.embed_query("cast iron skillet"), kinds=("product",), filters=None, top_k=1
        )
        assert [h.unit.product_id for h in found] == ["pan-lodge"]

    def test_an_index_of_an_older_format_needs_a_full_reindex(
        self, es_indexed: ElasticsearchStore, es_client: Elasticsearch, embedder: HashingEmbedder
    ) -> None:
        meta = es_client.indices.get_mapping(index=es_indexed.alias)
        ((name, body),) = meta.body.items()
        es_client.indices.put_mapping(index=name, meta={**body["mappings"]["_meta"], "format": 1})
        with pytest.raises(StoreError, match=r"has format 1.*re-index the whole catalog"):
            es_indexed.writer(embedding_model=embedder.name, dim=embedder.dim)
        es_indexed.writer(embedding_model=embedder.name, dim=embedder.dim, prune=True).abort()

    def test_uncommitted_writes_are_invisible(
        self, es_indexed: ElasticsearchStore, embedder: HashingEmbedder
    ) -> None:
        record = _record(Product(id="staged", title="Staged product"), embedder)
        for prune in (False, True):
            writer = es_indexed.writer(embedding_model=embedder.name, dim=embedder.dim, prune=prune)
            assert writer.write([record]) == []
            assert es_indexed.get_product("staged") is None
            assert es_indexed.stats().products == len(PRODUCTS)
            writer.abort()
            assert es_indexed.get_product("staged") is None

    def test_abort_of_a_full_write_deletes_its_index(
        self,
        es_indexed: ElasticsearchStore,
        es_client: Elasticsearch,
        embedder: HashingEmbedder,
    ) -> None:
        before = alias_indices(es_client, es_indexed.alias)
        writer = es_indexed.writer(embedding_model=embedder.name, dim=embedder.dim, prune=True)
        writer.write([_record(Product(id="new", title="New"), embedder)])
        assert len(alias_indices(es_client, es_indexed.alias)) == 2
        writer.abort()
        assert alias_indices(es_client, es_indexed.alias) == before
        assert es_indexed.stats().products == len(PRODUCTS)

    def test_bulk_errors_are_reported_with_product_ids(
        self, es_indexed: ElasticsearchStore, embedder: HashingEmbedder
    ) -> None:
        good = Product(id="good", title="Camping tent for two")
        bad = Product(id="bad-vectors", title="Bad vectors", reviews=[{"text": "Fine."}])
        bad_record = ProductRecord(bad, product_units(bad), np.ones((2, 3), np.float32))
        for prune in (False, True):
            writer = es_indexed.writer(embedding_model=embedder.name, dim=embedder.dim, prune=prune)
            failures = writer.write([_record(good, embedder), bad_record])
            assert [f.product_id for f in failures] == ["bad-vectors"]
            assert "dimensions" in failures[0].reason  # Elasticsearch's own reason
            writer.commit()
            assert es_indexed.get_product("bad-vectors") is None
            assert es_indexed.get_units("bad-vectors") == []
            assert es_indexed.get_product("good") is not None
        assert es_indexed.stats().products == 1  # the last write was a full one

    def test_a_product_written_twice_in_one_write_keeps_only_its_last_units(
        self, es_store: ElasticsearchStore, embedder: HashingEmbedder
    ) -> None:
        first = Product(id="p", title="Tent", reviews=[{"text": "Dry."}, {"text": "Light."}])
        second = Product(id="p", title="Tent", reviews=[{"text": "Dry."}])
        writer = es_store.writer(embedding_model=embedder.name, dim=embedder.dim)
        writer.write([_record(first, embedder)])
        writer.write([_record(second, embedder)])
        report = writer.commit()
        assert (report.products, report.units) == (1, 2)
        assert [u.id for u in es_store.get_units("p")] == ["p", "p#review-1"]


def test_alias_swap_under_concurrent_searches(
    tmp_path: Path, es_indexed: ElasticsearchStore, embedder: HashingEmbedder
) -> None:
    """Searches running through a full re-index never fail and always see a whole index."""
    vector = embedder.embed_query("headphones")
    counts: list[int] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def search() -> None:
        while not stop.is_set():
            try:
                found = es_indexed.semantic(vector, kinds=("product",), filters=None, top_k=100)
                counts.append(len(found))
            except BaseException as exc:
                errors.append(exc)

    thread = threading.Thread(target=search)
    thread.start()
    try:
        time.sleep(0.2)
        path = write_jsonl(tmp_path / "five.jsonl", PRODUCTS[:5])
        report = index_catalog(
            read_catalog(path), es_indexed, embedder, prune=True, batch_size=2, progress=False
        )
        time.sleep(0.3)
    finally:
        stop.set()
        thread.join()
    assert report.indexed == 5
    assert errors == []
    assert set(counts) == {len(PRODUCTS), 5}  # the old index, then the new one; nothing between
    assert counts[-1] == 5


def test_a_search_that_loses_its_index_is_retried_once(
    es_indexed: ElasticsearchStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A search routed to an index that a concurrent swap has just deleted is sent again."""
    real = es_indexed._client.msearch
    gone = {
        "error": {"type": "index_not_found_exception", "reason": "no such index"},
        "status": 404,
    }
    failures = iter([{"responses": [gone]}])

    def flaky(**kwargs: object) -> object:
        return next(failures, None) or real(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(es_indexed._client, "msearch", flaky)
    found = es_indexed.lexical("skillet", kinds=("product",), filters=None, top_k=3, boosts=BOOSTS)
    assert [h.unit.product_id for h in found] == ["pan-lodge"]

    failures = iter([{"responses": [gone]}] * 2)
    with pytest.raises(StoreError, match="index_not_found"):
        es_indexed.lexical("skillet", kinds=("product",), filters=None, top_k=3, boosts=BOOSTS)


def test_drop_deletes_only_this_alias_s_indices(
    es_client: Elasticsearch, es_indexed: ElasticsearchStore, embedder: HashingEmbedder
) -> None:
    neighbour = ElasticsearchStore(client=es_client, alias=f"{es_indexed.alias}-x")
    writer = neighbour.writer(embedding_model=embedder.name, dim=embedder.dim, prune=True)
    writer.commit()
    try:
        dropped = es_indexed.drop()
        assert len(dropped) == 1 and dropped[0].startswith(es_indexed.alias)
        assert es_indexed.stats().products == 0
        assert not es_client.indices.exists_alias(name=es_indexed.alias)
        assert es_client.indices.exists_alias(name=neighbour.alias)
    finally:
        neighbour.drop()


def test_a_client_passed_in_stays_open(es_client: Elasticsearch, es_alias: str) -> None:
    store = ElasticsearchStore(client=es_client, alias=es_alias)
    assert store.stats().products == 0
    store.close()
    assert es_client.ping()


def test_unreachable_elasticsearch_is_store_unavailable(embedder: HashingEmbedder) -> None:
    store = ElasticsearchStore("http://127.0.0.1:1", request_timeout_s=2)
    try:
        with pytest.raises(StoreUnavailable, match=r"http://127\.0\.0\.1:1"):
            store.lexical("headphones", kinds=("product",), filters=None, top_k=5, boosts=BOOSTS)
        with pytest.raises(StoreUnavailable):
            store.hybrid(
                "headphones",
                embedder.embed_query("headphones"),
                kinds=("product",),
                filters=None,
                top_k=5,
                boosts=BOOSTS,
            )
        with pytest.raises(StoreUnavailable):
            store.stats()
        with pytest.raises(StoreUnavailable):
            store.writer(embedding_model=embedder.name, dim=embedder.dim)
    finally:
        store.close()


# What a search answers while a restarted node's shards are still recovering (seen by
# `python -m benchmarks.faults`, which kills Elasticsearch under load).
NO_SHARD_AVAILABLE = {
    "error": {
        "root_cause": [
            {
                "type": "no_shard_available_action_exception",
                "reason": "[node][127.0.0.1:9300][indices:data/read/search]",
            }
        ],
        "type": "search_phase_execution_exception",
        "reason": "all shards failed",
        "phase": "query",
        "grouped": True,
    },
    "status": 503,
}


def _shards_recovering(
    store: ElasticsearchStore, monkeypatch: pytest.MonkeyPatch, searches: int
) -> None:
    """The next ``searches`` msearch calls answer as a node whose shards are recovering."""
    real = store._client.msearch
    left = [searches]

    def msearch(**kwargs: object) -> object:
        if left[0] > 0:
            left[0] -= 1
            count = len(kwargs["searches"]) // 2  # type: ignore[arg-type]
            return {"responses": [NO_SHARD_AVAILABLE] * count}
        return real(**kwargs)

    monkeypatch.setattr(store._client, "msearch", msearch)


def test_shards_still_recovering_are_unavailable_not_a_failure(
    es_indexed: ElasticsearchStore, monkeypatch: pytest.MonkeyPatch, embedder: HashingEmbedder
) -> None:
    """Retried once; still not serving is `StoreUnavailable` (503), not `StoreError` (500:
    `POST /events` answered 500 while Elasticsearch restarted)."""
    _shards_recovering(es_indexed, monkeypatch, 1)
    assert set(es_indexed.get_products(["hp-anker"])) == {"hp-anker"}

    _shards_recovering(es_indexed, monkeypatch, 2)
    with pytest.raises(StoreUnavailable, match="is unavailable"):
        es_indexed.get_products(["hp-anker"])
    _shards_recovering(es_indexed, monkeypatch, 2)
    with pytest.raises(StoreUnavailable):
        es_indexed.hybrid(
            "headphones",
            embedder.embed_query("headphones"),
            kinds=("product",),
            filters=None,
            top_k=5,
            boosts=BOOSTS,
        )
