from pathlib import Path

import numpy as np
import pytest

from indexer.indexer import index_catalog
from indexer.reader import read_catalog
from indexer.units import product_units
from retrieval.embedders.hashing import HashingEmbedder
from retrieval.schema import PASSAGE_KINDS, Filters, Product
from retrieval.stores.base import ProductRecord, StoreError
from retrieval.stores.embedded import EmbeddedStore
from tests.conftest import PRODUCTS, write_jsonl

BOOSTS = {"title": 3.0, "brand": 2.0, "category": 1.5, "attributes": 1.0, "description": 0.5}
ALL_FILTERS = [
    Filters(price_max=100),
    Filters(price_min=100, price_max=400),
    Filters(brands=["anker", "JBL"]),
    Filters(exclude_brands=["Sony"]),
    Filters(in_stock=True),
    Filters(min_rating=4.5),
    Filters(category="Electronics > Audio"),
    Filters(category="electronics>audio>headphones", in_stock=True, price_max=100),
]


def _ids(found: list) -> set[str]:
    return {hit.unit.product_id for hit in found}


class TestFiltersInsideBothRetrievers:
    @pytest.mark.parametrize("filters", ALL_FILTERS)
    def test_lexical_and_semantic_return_only_matching_products(
        self, store: EmbeddedStore, embedder: HashingEmbedder, filters: Filters
    ) -> None:
        expected = {p["id"] for p in PRODUCTS if filters.matches(store.get_product(p["id"]))}
        lexical = store.lexical(
            "headphones noise wireless skillet shoes",
            kinds=("product",),
            filters=filters,
            top_k=100,
            boosts=BOOSTS,
        )
        semantic = store.semantic(
            embedder.embed_query("headphones"), kinds=("product",), filters=filters, top_k=100
        )
        assert _ids(lexical) <= expected
        assert _ids(semantic) == expected  # kNN returns every matching unit when k is large

    def test_filters_apply_before_top_k_not_after(
        self, store: EmbeddedStore, embedder: HashingEmbedder
    ) -> None:
        # The cheapest headphones rank low for this query; a post-filter on a top-1 would lose it.
        found = store.semantic(
            embedder.embed_query("Sony WH-1000XM5"),
            kinds=("product",),
            filters=Filters(price_max=50),
            top_k=1,
        )
        assert [h.unit.product_id for h in found] == ["hp-jbl"]

    def test_unknown_brand_matches_nothing(self, store: EmbeddedStore) -> None:
        found = store.lexical(
            "headphones",
            kinds=("product",),
            filters=Filters(brands=["Nope"]),
            top_k=10,
            boosts=BOOSTS,
        )
        assert found == []


class TestLexical:
    def test_field_boosts_and_matched_terms(self, store: EmbeddedStore) -> None:
        found = store.lexical(
            "anker headphones", kinds=("product",), filters=None, top_k=3, boosts=BOOSTS
        )
        assert found[0].unit.product_id == "hp-anker"
        assert set(found[0].matched) >= {"title", "brand"}
        assert "anker" in found[0].matched["brand"]

    def test_passages_are_separate_from_products(self, store: EmbeddedStore) -> None:
        found = store.lexical(
            "induction", kinds=("qa", "review"), filters=None, top_k=5, boosts={"body": 1.0}
        )
        assert [h.unit.id for h in found] == ["pan-lodge#qa-1"]

    def test_chinese_query_finds_chinese_product(self, store: EmbeddedStore) -> None:
        found = store.lexical("降噪耳机", kinds=("product",), filters=None, top_k=3, boosts=BOOSTS)
        assert found[0].unit.product_id == "zh-huawei"

    def test_no_match_is_empty(self, store: EmbeddedStore) -> None:
        assert (
            store.lexical("zzzqqq", kinds=("product",), filters=None, top_k=3, boosts=BOOSTS) == []
        )


class TestPersistence:
    def test_restart_loads_without_re_embedding(
        self, tmp_path: Path, store: EmbeddedStore, catalog_path: Path, embedder: HashingEmbedder
    ) -> None:
        reopened = EmbeddedStore(tmp_path / "index")
        assert reopened.stats().products == len(PRODUCTS)
        assert reopened.stats().version == store.stats().version
        report = index_catalog(read_catalog(catalog_path), reopened, embedder, progress=False)
        assert report.embedded == 0
        assert report.reused_embeddings == report.units

    def test_changed_text_is_re_embedded(
        self, tmp_path: Path, store: EmbeddedStore, embedder: HashingEmbedder
    ) -> None:
        changed = dict(PRODUCTS[0], title="Sony WH-1000XM6 Headphones")
        path = write_jsonl(tmp_path / "one.jsonl", [changed])
        report = index_catalog(read_catalog(path), store, embedder, progress=False)
        assert report.embedded == 1  # only the product unit's text changed
        assert store.get_product("hp-sony").title == "Sony WH-1000XM6 Headphones"
        assert store.stats().products == len(PRODUCTS)

    def test_crash_mid_index_keeps_previous_index(
        self,
        tmp_path: Path,
        store: EmbeddedStore,
        embedder: HashingEmbedder,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        before = store.stats().version
        path = write_jsonl(tmp_path / "new.jsonl", [{"id": "new", "title": "New thing"}])

        def crash(*args: object, **kwargs: object) -> None:
            raise OSError("disk full")

        monkeypatch.setattr(np, "save", crash)
        with pytest.raises(OSError, match="disk full"):
            index_catalog(read_catalog(path), store, embedder, progress=False)
        monkeypatch.undo()
        assert store.stats().version == before
        reopened = EmbeddedStore(tmp_path / "index")
        assert reopened.stats().version == before
        assert reopened.get_product("new") is None
        assert reopened.stats().products == len(PRODUCTS)

    def test_another_process_commit_is_picked_up(
        self, tmp_path: Path, store: EmbeddedStore, embedder: HashingEmbedder
    ) -> None:
        reader = EmbeddedStore(tmp_path / "index", refresh_interval_s=0)
        path = write_jsonl(tmp_path / "add.jsonl", [{"id": "added", "title": "Camping tent"}])
        index_catalog(read_catalog(path), store, embedder, progress=False)
        assert reader.get_product("added") is not None

    def test_in_memory_store_writes_nothing(
        self, tmp_path: Path, embedder: HashingEmbedder, catalog_path: Path
    ) -> None:
        memory = EmbeddedStore()
        index_catalog(read_catalog(catalog_path), memory, embedder, progress=False)
        assert memory.stats().products == len(PRODUCTS)


class TestWrites:
    def test_prune_removes_products_missing_from_the_file(
        self, tmp_path: Path, store: EmbeddedStore, embedder: HashingEmbedder
    ) -> None:
        path = write_jsonl(tmp_path / "two.jsonl", PRODUCTS[:2])
        report = index_catalog(read_catalog(path), store, embedder, prune=True, progress=False)
        assert report.removed == len(PRODUCTS) - 2
        assert store.stats().products == 2
        assert store.get_product("pan-lodge") is None
        assert store.get_units("pan-lodge") == []

    def test_without_prune_others_stay(
        self, tmp_path: Path, store: EmbeddedStore, embedder: HashingEmbedder
    ) -> None:
        path = write_jsonl(tmp_path / "two.jsonl", PRODUCTS[:2])
        report = index_catalog(read_catalog(path), store, embedder, progress=False)
        assert report.removed == 0
        assert store.stats().products == len(PRODUCTS)

    def test_delete_products(self, store: EmbeddedStore) -> None:
        assert store.delete_products(["hp-jbl", "missing"]) == 1
        assert store.get_product("hp-jbl") is None
        assert store.stats().products == len(PRODUCTS) - 1

    def test_other_embedding_model_needs_a_full_reindex(self, store: EmbeddedStore) -> None:
        with pytest.raises(StoreError, match="re-index the whole catalog"):
            store.writer(embedding_model="other", dim=8)
        writer = store.writer(embedding_model="other", dim=8, prune=True)
        writer.abort()

    def test_uncommitted_writes_are_invisible(
        self, store: EmbeddedStore, embedder: HashingEmbedder
    ) -> None:
        product = Product(id="staged", title="Staged product")
        units = product_units(product)
        record = ProductRecord(product, units, embedder.embed_documents([u.text for u in units]))
        writer = store.writer(embedding_model=embedder.name, dim=embedder.dim)
        assert writer.write([record]) == []
        assert store.get_product("staged") is None
        writer.abort()
        assert store.get_product("staged") is None

    def test_wrong_embedding_shape_is_reported_not_written(
        self, store: EmbeddedStore, embedder: HashingEmbedder
    ) -> None:
        product = Product(id="bad-vectors", title="Bad vectors")
        record = ProductRecord(product, product_units(product), np.zeros((1, 3), np.float32))
        writer = store.writer(embedding_model=embedder.name, dim=embedder.dim)
        failures = writer.write([record])
        assert [f.product_id for f in failures] == ["bad-vectors"]
        writer.commit()
        assert store.get_product("bad-vectors") is None


def test_hybrid_is_both_searches_with_the_same_filters(
    store: EmbeddedStore, embedder: HashingEmbedder
) -> None:
    filters = Filters(price_max=100)
    vector = embedder.embed_query("headphones")
    lexical, semantic = store.hybrid(
        "headphones", vector, kinds=("product",), filters=filters, top_k=5, boosts=BOOSTS
    )
    assert lexical == store.lexical(
        "headphones", kinds=("product",), filters=filters, top_k=5, boosts=BOOSTS
    )
    assert semantic == store.semantic(vector, kinds=("product",), filters=filters, top_k=5)


def test_hybrid_without_a_vector_is_lexical_only(store: EmbeddedStore) -> None:
    lexical, semantic = store.hybrid(
        "headphones", None, kinds=("product",), filters=None, top_k=5, boosts=BOOSTS
    )
    assert semantic == []
    assert lexical == store.lexical(
        "headphones", kinds=("product",), filters=None, top_k=5, boosts=BOOSTS
    )


@pytest.mark.parametrize("filters", [None, Filters(product_ids=["hp-sony"]), *ALL_FILTERS])
def test_knn_scores_every_candidate_whatever_the_share_filtered(
    store: EmbeddedStore, embedder: HashingEmbedder, filters: Filters | None
) -> None:
    """Few candidates are gathered, many are scored over the whole matrix: same results."""
    vector = embedder.embed_query("wireless noise cancelling headphones")
    for kinds in (("product",), PASSAGE_KINDS):
        found = store.semantic(vector, kinds=kinds, filters=filters, top_k=50)
        snapshot = store._snapshot
        allowed = np.flatnonzero(snapshot.mask(kinds, filters))
        query = vector / np.linalg.norm(vector)
        expected = sorted(
            ((float(snapshot.vectors[i] @ query), snapshot.units[i].id) for i in allowed),
            key=lambda pair: -pair[0],
        )[:50]
        assert [hit.unit.id for hit in found] == [unit_id for _, unit_id in expected]
        assert [hit.score for hit in found] == pytest.approx([score for score, _ in expected])
