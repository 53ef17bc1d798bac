"""`ElasticsearchStore` against a real Elasticsearch 8.12: what only this store does (the index
layout, generations and alias swaps, bulk requests, failures). The `DocumentStore` contract both
stores keep is tests/retrieval/store_contract.py, run here by test_store_contract.py."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from elasticsearch import Elasticsearch

from indexer.indexer import index_catalog
from indexer.reader import read_catalog
from indexer.units import product_units
from retrieval.embedders.hashing import HashingEmbedder
from retrieval.schema import Filters, Product, UnitKind
from retrieval.stores.base import ProductRecord, StoreError, StoreUnavailable, unit_script
from retrieval.stores.elasticsearch import ElasticsearchStore, category_prefixes
from retrieval.stores.elasticsearch import store as store_module
from retrieval.stores.elasticsearch import writer as writer_module
from retrieval.stores.elasticsearch.mapping import index_body, unit_document
from retrieval.text import Script
from tests.conftest import PRODUCTS, write_jsonl
from tests.integration.conftest import alias_indices
from tests.retrieval.store_contract import BOOSTS

pytestmark = pytest.mark.integration


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

    def test_vectors_stay_out_of_source_and_read_back_exactly(
        self, es_indexed: ElasticsearchStore, es_client: Elasticsearch, embedder: HashingEmbedder
    ) -> None:
        doc = es_client.get(index=es_indexed.alias, id="hp-sony")["_source"]
        assert "embedding" not in doc  # searches never parse 256 floats per hit
        (product,) = [p for p in PRODUCTS if p["id"] == "hp-sony"]
        written = _record(Product.model_validate(product), embedder).embeddings[0]
        stored = es_indexed.product_vectors(["hp-sony"])["hp-sony"]
        np.testing.assert_allclose(stored, written, atol=1e-6)  # (bit-exact: the unit tests)
        found = es_indexed.semantic(stored, kinds=("product",), filters=None, top_k=1)
        assert found[0].unit.product_id == "hp-sony"  # the kNN index still holds the vector
        assert found[0].score == pytest.approx(1.0, abs=1e-3)

    def test_a_full_build_goes_live_as_one_segment(
        self, es_indexed: ElasticsearchStore, es_client: Elasticsearch
    ) -> None:
        (index,) = alias_indices(es_client, es_indexed.alias)
        segments = es_client.indices.segments(index=index)["indices"][index]["shards"]
        assert [len(copy["segments"]) for copies in segments.values() for copy in copies] == [1]


class TestAnalysis:
    def test_matched_terms_are_the_words_as_written(self, es_indexed: ElasticsearchStore) -> None:
        found = es_indexed.lexical(
            "anker headphones", kinds=("product",), filters=None, top_k=3, boosts=BOOSTS
        )
        assert "headphones" in found[0].matched["title"]  # the embedded store: "headphone"

    def test_chinese_terms_are_bigrams(self, es_indexed: ElasticsearchStore) -> None:
        found = es_indexed.lexical(
            "降噪耳机", kinds=("product",), filters=None, top_k=3, boosts=BOOSTS
        )
        assert set(found[0].matched["title"]) == {"降噪", "耳机"}

    def test_kana_and_hangul_queries_match_their_cjk_tokens(
        self, tmp_path: Path, es_indexed: ElasticsearchStore, embedder: HashingEmbedder
    ) -> None:
        products = [
            Product(id="jp", title="ワイヤレス イヤホン"),
            Product(id="kr", title="무선 이어폰"),
            Product(id="en", title="Wireless earplugs"),
        ]
        writer = es_indexed.writer(embedding_model=embedder.name, dim=embedder.dim)
        assert writer.write([_record(p, embedder) for p in products]) == []
        writer.commit()
        for query, expected in (("イヤホン", "jp"), ("이어폰", "kr"), ("earplugs", "en")):
            found = es_indexed.lexical(
                query, kinds=("product",), filters=None, top_k=3, boosts=BOOSTS
            )
            assert [hit.unit.product_id for hit in found] == [expected], query

    def test_wrong_query_dimension_is_a_store_error(self, es_indexed: ElasticsearchStore) -> None:
        with pytest.raises(StoreError, match="dimension"):
            es_indexed.semantic(np.ones(3), kinds=("product",), filters=None, top_k=3)


class TestGenerations:
    def test_a_full_write_builds_a_new_index_and_deletes_the_old_one(
        self,
        tmp_path: Path,
        es_indexed: ElasticsearchStore,
        es_client: Elasticsearch,
        embedder: HashingEmbedder,
    ) -> None:
        before = alias_indices(es_client, es_indexed.alias)
        path = write_jsonl(tmp_path / "two.jsonl", PRODUCTS[:2])
        index_catalog(read_catalog(path), es_indexed, embedder, prune=True, progress=False)
        after = alias_indices(es_client, es_indexed.alias)
        assert len(after) == 1 and after != before  # the old generation is gone
        assert es_indexed.stats().version == f"{after[0]}@0"

    def test_an_upsert_counts_a_write_on_the_same_index(
        self, tmp_path: Path, es_indexed: ElasticsearchStore, embedder: HashingEmbedder
    ) -> None:
        before = es_indexed.stats().version
        path = write_jsonl(tmp_path / "one.jsonl", PRODUCTS[:1])
        index_catalog(read_catalog(path), es_indexed, embedder, progress=False)
        after = es_indexed.stats().version
        assert before is not None and after is not None
        assert after.split("@")[0] == before.split("@")[0]  # same index, one more write
        assert int(after.split("@")[1]) == int(before.split("@")[1]) + 1

    def test_an_index_of_an_older_format_needs_a_full_reindex(
        self, es_indexed: ElasticsearchStore, es_client: Elasticsearch, embedder: HashingEmbedder
    ) -> None:
        meta = es_client.indices.get_mapping(index=es_indexed.alias)
        ((name, body),) = meta.body.items()
        es_client.indices.put_mapping(index=name, meta={**body["mappings"]["_meta"], "format": 1})
        with pytest.raises(StoreError, match=r"has format 1.*re-index the whole catalog"):
            es_indexed.writer(embedding_model=embedder.name, dim=embedder.dim)
        es_indexed.writer(embedding_model=embedder.name, dim=embedder.dim, prune=True).abort()

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


CROSS_MODEL, CROSS_DIM = "cross-test", 4
# Hand-made cross-lingual directions: the English and Chinese headphones (and earbuds, and pans)
# nearly share theirs, as a multilingual embedder would place a product and its translation.
CROSS_PRODUCTS = [
    (
        Product(
            id="hp-en",
            title="Noise cancelling headphones",
            brand="Sony",
            price=300.0,
            reviews=[{"text": "Great sound."}],
        ),
        [1.0, 0.0, 0.0, 0.0],
    ),
    (
        Product(
            id="hp-zh",
            title="降噪耳机",
            brand="华为",
            price=150.0,
            reviews=[{"text": "音质很好。"}],
        ),
        [0.99, 0.05, 0.0, 0.0],
    ),
    (Product(id="buds-en", title="Wireless earbuds", brand="Anker", price=40.0), [0.8, 0.6, 0, 0]),
    (Product(id="buds-zh", title="无线耳塞", brand="小米", price=30.0), [0.8, 0.55, 0.1, 0.0]),
    (Product(id="pan-en", title="Cast iron skillet", price=35.0), [0.0, 0.0, 1.0, 0.0]),
    (Product(id="pan-zh", title="铸铁煎锅", price=25.0), [0.0, 0.0, 0.98, 0.1]),
]


def _cross_record(
    product: Product, direction: list[float], embedder: HashingEmbedder, *, cross: bool = True
) -> ProductRecord:
    """A record whose units' cross vectors lie near ``direction`` (passages a little apart)."""
    units = product_units(product)
    rows = np.array([[*direction[:3], direction[3] + 0.2 * i] for i in range(len(units))])
    return ProductRecord(
        product,
        units,
        embedder.embed_documents([u.text for u in units]),
        rows.astype(np.float32) if cross else None,
    )


def _write_cross(
    store: ElasticsearchStore,
    embedder: HashingEmbedder,
    *,
    prune: bool = True,
    cross_model: str | None = CROSS_MODEL,
    cross: bool = True,
) -> None:
    writer = store.writer(
        embedding_model=embedder.name,
        dim=embedder.dim,
        prune=prune,
        cross_model=cross_model,
        cross_dim=CROSS_DIM if cross_model else 0,
    )
    records = [_cross_record(p, d, embedder, cross=cross) for p, d in CROSS_PRODUCTS]
    assert writer.write(records) == []
    writer.commit()


def _ids(
    store: ElasticsearchStore,
    script: Script,
    *,
    kinds: Sequence[UnitKind] = ("product",),
    filters: Filters | None = None,
    top_k: int = 10,
    vector: Sequence[float] = (1.0, 0.02, 0.0, 0.0),
    model: str = CROSS_MODEL,
) -> list[str]:
    """The unit ids a cross-lingual search (by default near the headphones) finds."""
    found = store.crosslingual(
        np.array(vector), model=model, script=script, kinds=kinds, filters=filters, top_k=top_k
    )
    return [hit.unit.id for hit in found]


class TestCrossLingual:
    @pytest.fixture
    def es_cross(
        self, es_store: ElasticsearchStore, embedder: HashingEmbedder
    ) -> ElasticsearchStore:
        _write_cross(es_store, embedder)
        return es_store

    def test_a_query_finds_the_units_of_the_other_script_only(
        self, es_cross: ElasticsearchStore
    ) -> None:
        assert _ids(es_cross, "cjk") == ["hp-en", "buds-en", "pan-en"]
        assert _ids(es_cross, "latin") == ["hp-zh", "buds-zh", "pan-zh"]
        found = es_cross.crosslingual(
            np.array([0.0, 0.0, 2.0, 0.0]),
            model=CROSS_MODEL,
            script="latin",
            kinds=("product", "review"),
            filters=None,
            top_k=2,
        )
        assert [hit.unit.id for hit in found] == ["pan-zh", "buds-zh"]
        assert found[0].score == pytest.approx(0.98 / np.hypot(0.98, 0.1), abs=1e-3)  # cosine
        assert all(unit_script(hit.unit) == "cjk" for hit in found)

    def test_kinds_and_filters_apply(self, es_cross: ElasticsearchStore) -> None:
        reviews = _ids(es_cross, "cjk", kinds=("review",))
        assert [unit_id.partition("#")[0] for unit_id in reviews] == ["hp-en"]
        assert _ids(es_cross, "cjk", filters=Filters(price_max=100.0)) == ["buds-en", "pan-en"]
        assert _ids(es_cross, "latin", filters=Filters(brands=["小米"])) == ["buds-zh"]
        assert _ids(es_cross, "latin", top_k=1) == ["hp-zh"]
        assert _ids(es_cross, "latin", top_k=0) == []

    def test_another_model_or_no_direction_finds_nothing(
        self, es_cross: ElasticsearchStore
    ) -> None:
        assert _ids(es_cross, "cjk", model="other") == []
        assert _ids(es_cross, "cjk", vector=(0.0, 0.0, 0.0, 0.0)) == []

    def test_the_index_layout_and_stats(
        self, es_cross: ElasticsearchStore, es_client: Elasticsearch
    ) -> None:
        assert es_cross.stats().cross_embedding_model == CROSS_MODEL
        ((index, body),) = es_client.indices.get_mapping(index=es_cross.alias).body.items()
        mappings = body["mappings"]
        assert mappings["_meta"]["cross_embedding_model"] == CROSS_MODEL
        assert mappings["_meta"]["cross_dim"] == CROSS_DIM
        assert mappings["properties"]["cross_embedding"]["dims"] == CROSS_DIM
        doc = es_client.get(index=index, id="hp-zh")["_source"]
        assert doc["script"] == "cjk" and "cross_embedding" not in doc  # out of _source

    def test_records_without_fitting_cross_vectors_are_refused(
        self, es_cross: ElasticsearchStore, embedder: HashingEmbedder
    ) -> None:
        product, direction = CROSS_PRODUCTS[0]
        good = _cross_record(product, direction, embedder)
        missing = _cross_record(Product(id="none", title="None"), direction, embedder, cross=False)
        made = _cross_record(Product(id="short", title="Short"), direction, embedder)
        short = ProductRecord(made.product, made.units, made.embeddings, np.ones((1, 3)))
        writer = es_cross.writer(
            embedding_model=embedder.name,
            dim=embedder.dim,
            prune=True,
            cross_model=CROSS_MODEL,
            cross_dim=CROSS_DIM,
        )
        failures = {f.product_id: f.reason for f in writer.write([good, missing, short])}
        writer.abort()
        assert failures.keys() == {"none", "short"}
        assert "no cross-lingual vectors" in failures["none"]
        assert "(1, 3)" in failures["short"]

    def test_a_write_with_another_cross_model_needs_a_full_reindex(
        self, es_cross: ElasticsearchStore, embedder: HashingEmbedder
    ) -> None:
        for model, dim in (("other", CROSS_DIM), (CROSS_MODEL, 8), (None, 0)):
            with pytest.raises(StoreError, match="re-index the whole catalog with prune"):
                es_cross.writer(
                    embedding_model=embedder.name,
                    dim=embedder.dim,
                    cross_model=model,
                    cross_dim=dim,
                )
        _write_cross(es_cross, embedder, cross_model=None)  # pruning: the new index has none
        assert es_cross.stats().cross_embedding_model is None
        assert _ids(es_cross, "cjk") == []

    def test_an_index_without_cross_vectors_takes_writes_without_them(
        self,
        es_store: ElasticsearchStore,
        embedder: HashingEmbedder,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        _write_cross(es_store, embedder, cross_model=None, cross=False)
        assert es_store.stats().cross_embedding_model is None
        assert _ids(es_store, "cjk") == []
        before = es_store.stats().version
        with caplog.at_level(logging.WARNING, "retrieval.stores.elasticsearch"):
            writer = es_store.writer(
                embedding_model=embedder.name,
                dim=embedder.dim,
                cross_model=CROSS_MODEL,
                cross_dim=CROSS_DIM,
            )
            for product, direction in CROSS_PRODUCTS[:2]:  # two writes, one warning
                assert writer.write([_cross_record(product, direction, embedder)]) == []
            writer.commit()
        dropped = [r for r in caplog.records if "no cross-lingual vectors" in r.getMessage()]
        assert len(dropped) == 1 and "prune" in dropped[0].getMessage()
        after = es_store.stats()
        assert before is not None and after.version is not None
        assert after.version.split("@")[0] == before.split("@")[0]  # the same index
        assert after.cross_embedding_model is None and _ids(es_store, "cjk") == []
        _write_cross(es_store, embedder)  # a pruning re-index adds them
        assert _ids(es_store, "cjk") == ["hp-en", "buds-en", "pan-en"]

    def test_an_empty_index_without_cross_vectors_is_built_afresh(
        self, es_store: ElasticsearchStore, embedder: HashingEmbedder
    ) -> None:
        es_store.writer(embedding_model=embedder.name, dim=embedder.dim, prune=True).commit()
        empty = es_store.stats().version
        _write_cross(es_store, embedder, prune=False)
        assert es_store.stats().version != empty
        assert _ids(es_store, "cjk") == ["hp-en", "buds-en", "pan-en"]

    def test_an_index_written_before_cross_vectors_were_kept_gains_them(
        self,
        es_store: ElasticsearchStore,
        embedder: HashingEmbedder,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        def older_body(**kwargs: Any) -> dict[str, Any]:
            body = index_body(**kwargs)
            del body["mappings"]["properties"]["cross_vector"]
            return body

        def older_document(*args: Any, **kwargs: Any) -> dict[str, Any]:
            doc = unit_document(*args, **kwargs)
            del doc["cross_vector"]
            return doc

        with monkeypatch.context() as older:  # what the first release of format 4 wrote
            older.setattr(store_module, "index_body", older_body)
            older.setattr(writer_module, "unit_document", older_document)
            _write_cross(es_store, embedder)
        units = [u for product, _ in CROSS_PRODUCTS for u in product_units(product)]
        known = es_store.known_vectors(units, embedder.name, CROSS_MODEL)
        assert len(known.embeddings) == len(units) and known.cross == {}
        _write_cross(es_store, embedder, prune=False)  # the writer adds the field
        known = es_store.known_vectors(units, embedder.name, CROSS_MODEL)
        assert set(known.cross) == {u.id for u in units}
        assert es_store.known_vectors(units, embedder.name, "another").cross == {}


class TestBulk:
    def test_bulk_errors_are_reported_with_product_ids_and_elasticsearch_s_reason(
        self, es_indexed: ElasticsearchStore, embedder: HashingEmbedder
    ) -> None:
        bad = Product(id="bad-vectors", title="Bad vectors", reviews=[{"text": "Fine."}])
        bad_record = ProductRecord(bad, product_units(bad), np.ones((2, 3), np.float32))
        writer = es_indexed.writer(embedding_model=embedder.name, dim=embedder.dim)
        failures = writer.write([bad_record])
        assert [f.product_id for f in failures] == ["bad-vectors"]
        assert "dimensions" in failures[0].reason  # Elasticsearch's own reason
        writer.abort()

    @pytest.mark.parametrize("prune", [False, True])
    def test_parallel_requests_report_failures_per_product(
        self, es_url: str, es_alias: str, embedder: HashingEmbedder, prune: bool
    ) -> None:
        """Many small ``_bulk`` requests at once: every product is written or reported."""
        store = ElasticsearchStore(es_url, alias=es_alias, chunk_size=10, bulk_threads=4)
        try:
            good = [
                _record(
                    Product(id=f"p{i}", title=f"Tent {i}", reviews=[{"text": "Dry."}]), embedder
                )
                for i in range(150)
            ]
            bad = [
                ProductRecord(p, product_units(p), np.ones((1, 3), np.float32))
                for p in (Product(id=f"bad{i}", title="Bad") for i in range(0, 150, 30))
            ]
            writer = store.writer(embedding_model=embedder.name, dim=embedder.dim, prune=prune)
            failures = writer.write([*good[:70], *bad, *good[70:]])
            assert sorted(f.product_id for f in failures) == sorted(r.product.id for r in bad)
            assert all("dimensions" in f.reason for f in failures)
            report = writer.commit()
            assert (report.products, report.units) == (150, 300)
            assert store.get_products(["bad0", "p0", "p149"]).keys() == {"p0", "p149"}
            assert store.get_units("bad30") == []
        finally:
            store.close()

    def test_a_writer_without_parallel_requests(
        self, es_url: str, es_alias: str, embedder: HashingEmbedder
    ) -> None:
        store = ElasticsearchStore(es_url, alias=es_alias, chunk_size=7, bulk_threads=1)
        try:
            records = [_record(Product(id=f"p{i}", title=f"Tent {i}"), embedder) for i in range(40)]
            writer = store.writer(embedding_model=embedder.name, dim=embedder.dim)
            assert writer.write(records) == []
            assert writer.commit().products == 40
        finally:
            store.close()


def test_searches_without_hits_and_fetches_without_products(
    es_indexed: ElasticsearchStore, embedder: HashingEmbedder
) -> None:
    """Answers trimmed to what the store reads (``filter_path``) still line up when some have
    no hits."""
    lexical, semantic = es_indexed.hybrid(
        "zzzqqq",
        embedder.embed_query("headphones"),
        kinds=("product",),
        filters=None,
        top_k=3,
        boosts=BOOSTS,
    )
    assert lexical == [] and len(semantic) == 3
    lexical, semantic = es_indexed.hybrid(
        "headphones",
        embedder.embed_query("headphones"),
        kinds=("product",),
        filters=Filters(brands=["Nope"]),
        top_k=3,
        boosts=BOOSTS,
    )
    assert lexical == semantic == []
    assert es_indexed.get_products(["missing"]) == {}
    assert es_indexed.get_units("missing", ["qa"]) == []


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
