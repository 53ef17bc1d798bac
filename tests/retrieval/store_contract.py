"""The `DocumentStore` contract: the same inputs and the same assertions for every store.

`StoreContract` is not collected itself; a test module subclasses it (``TestEmbeddedStoreContract``
in tests/retrieval/test_embedded_store.py, ``TestElasticsearchStoreContract`` in
tests/integration/test_store_contract.py) and provides two fixtures:

- ``contract_store``: a store holding the shared test catalog (`tests.conftest.PRODUCTS`,
  indexed with the ``embedder`` fixture);
- ``empty_store``: a store of its own with nothing in it.

What only one store does (its files, its index layout, its failures) stays in that store's
own tests.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from indexer.indexer import index_catalog
from indexer.reader import read_catalog
from indexer.units import product_units
from retrieval.embedders.hashing import HashingEmbedder
from retrieval.schema import PASSAGE_KINDS, Filters, Product
from retrieval.search import HybridSearch, SearchConfig
from retrieval.stores.base import (
    CJK_CHARS,
    DocumentStore,
    ProductRecord,
    ScoredUnit,
    StoreError,
)
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
SEARCH_CONFIG = SearchConfig(min_similarity=0.2)  # as the `search` fixture of tests/conftest.py

# Specific queries: one product is the answer, whichever store.
TOP_1 = [
    ("anker headphones", "hp-anker"),
    ("cast iron skillet", "pan-lodge"),
    ("running shoes", "shoe-pegasus"),
    ("sweat resistant earbuds", "ear-sport"),
    ("降噪耳机", "zh-huawei"),
    ("电饭煲", "zh-midea"),
    ("跑鞋", "zh-lining"),
]
# Broad queries with filters: every product found passes them.
FILTERED = [
    ("headphones", Filters(price_max=100)),
    ("wireless headphones", Filters(category="electronics > audio")),
    ("noise cancelling", Filters(exclude_brands=["SONY"])),
    ("shoes", Filters(brands=["nike", "李宁"])),
    ("耳机", Filters(in_stock=True, min_rating=4.5)),
    ("headphones earbuds", Filters(price_min=100, price_max=400)),
]


def product_ids_of(found: list[ScoredUnit]) -> set[str]:
    return {hit.unit.product_id for hit in found}


def record_of(product: Product, embedder: HashingEmbedder) -> ProductRecord:
    units = product_units(product)
    return ProductRecord(product, units, embedder.embed_documents([u.text for u in units]))


def searched_product_ids(
    store: DocumentStore, embedder: HashingEmbedder, query: str, filters: Filters | None
) -> list[str]:
    """The product ids of the first page of a `HybridSearch` (no re-ranking)."""
    search = HybridSearch(store, embedder, config=SEARCH_CONFIG)
    result = search.search(query, filters=filters, size=10, rerank=False)
    return [hit.product.id for hit in result.hits]


class StoreContract:
    """What every `DocumentStore` answers for the shared catalog. Subclass it and provide the
    ``contract_store`` and ``empty_store`` fixtures."""

    @pytest.fixture
    def contract_store(self) -> DocumentStore:
        raise NotImplementedError

    @pytest.fixture
    def empty_store(self) -> DocumentStore:
        raise NotImplementedError

    # -- filters inside both retrievers ---------------------------------------------------

    @pytest.mark.parametrize("filters", ALL_FILTERS)
    def test_lexical_and_semantic_return_only_matching_products(
        self, contract_store: DocumentStore, embedder: HashingEmbedder, filters: Filters
    ) -> None:
        expected = {p["id"] for p in PRODUCTS if filters.matches(Product.model_validate(p))}
        lexical = contract_store.lexical(
            "headphones noise wireless skillet shoes",
            kinds=("product",),
            filters=filters,
            top_k=100,
            boosts=BOOSTS,
        )
        semantic = contract_store.semantic(
            embedder.embed_query("headphones"), kinds=("product",), filters=filters, top_k=100
        )
        assert lexical and product_ids_of(lexical) <= expected
        assert product_ids_of(semantic) == expected  # kNN returns every match when k is large

    def test_filters_apply_before_top_k_not_after(
        self, contract_store: DocumentStore, embedder: HashingEmbedder
    ) -> None:
        # The cheapest headphones rank low for this query; a post-filter on a top-1 would lose it.
        found = contract_store.semantic(
            embedder.embed_query("Sony WH-1000XM5"),
            kinds=("product",),
            filters=Filters(price_max=50),
            top_k=1,
        )
        assert [h.unit.product_id for h in found] == ["hp-jbl"]

    def test_unknown_brand_matches_nothing(self, contract_store: DocumentStore) -> None:
        found = contract_store.lexical(
            "headphones",
            kinds=("product",),
            filters=Filters(brands=["Nope"]),
            top_k=10,
            boosts=BOOSTS,
        )
        assert found == []

    def test_chinese_brand_and_category_filters(
        self, contract_store: DocumentStore, embedder: HashingEmbedder
    ) -> None:
        filters = Filters(category="数码 > 音频", brands=["华为"])
        semantic = contract_store.semantic(
            embedder.embed_query("耳机"), kinds=("product", "review"), filters=filters, top_k=10
        )
        assert {h.unit.id for h in semantic} == {"zh-huawei", "zh-huawei#review-1"}

    # -- lexical --------------------------------------------------------------------------

    def test_field_boosts_and_matched_terms(self, contract_store: DocumentStore) -> None:
        found = contract_store.lexical(
            "anker headphones", kinds=("product",), filters=None, top_k=3, boosts=BOOSTS
        )
        assert found[0].unit.product_id == "hp-anker"
        assert set(found[0].matched) >= {"title", "brand"}
        assert "anker" in found[0].matched["brand"]
        # the word as written (Elasticsearch) or as analysed (embedded: "headphone")
        assert any(term.startswith("headphone") for term in found[0].matched["title"])
        assert [h.score for h in found] == sorted((h.score for h in found), reverse=True)

    def test_english_stemming(self, contract_store: DocumentStore) -> None:
        found = contract_store.lexical(
            "skillets", kinds=("product",), filters=None, top_k=3, boosts=BOOSTS
        )
        assert [h.unit.product_id for h in found] == ["pan-lodge"]
        assert found[0].matched["title"] == ("skillet",)

    def test_chinese_query_finds_chinese_product(self, contract_store: DocumentStore) -> None:
        found = contract_store.lexical(
            "降噪耳机", kinds=("product",), filters=None, top_k=3, boosts=BOOSTS
        )
        assert found[0].unit.product_id == "zh-huawei"

    @pytest.mark.parametrize("weight", [1.0, 4.0])
    def test_chinese_characters_match_where_words_and_bigrams_do_not(
        self, contract_store: DocumentStore, weight: float
    ) -> None:
        """ "机耳" is no word or bigram of "…蓝牙耳机", but both of its characters are there."""
        boosts = {**BOOSTS, CJK_CHARS: weight}
        found = contract_store.lexical(
            "机耳", kinds=("product",), filters=None, top_k=3, boosts=boosts
        )
        assert [h.unit.product_id for h in found] == ["zh-huawei"]

    def test_characters_weigh_nothing_at_weight_0(self, contract_store: DocumentStore) -> None:
        boosts = {**BOOSTS, CJK_CHARS: 0.0}
        found = contract_store.lexical(
            "机耳", kinds=("product",), filters=None, top_k=3, boosts=boosts
        )
        assert found == []
        found = contract_store.lexical(
            "降噪耳机", kinds=("product",), filters=None, top_k=3, boosts=boosts
        )
        assert found[0].unit.product_id == "zh-huawei"  # words and bigrams still match

    def test_passages_are_separate_from_products(self, contract_store: DocumentStore) -> None:
        found = contract_store.lexical(
            "induction", kinds=("qa", "review"), filters=None, top_k=5, boosts={"body": 1.0}
        )
        assert [h.unit.id for h in found] == ["pan-lodge#qa-1"]
        assert found[0].matched == {"body": ("induction",)}

    def test_passages_of_one_product(
        self, contract_store: DocumentStore, embedder: HashingEmbedder
    ) -> None:
        only_sony = Filters(product_ids=["hp-sony"])
        lexical, semantic = contract_store.hybrid(
            "noise battery fold",
            embedder.embed_query("noise battery fold"),
            kinds=PASSAGE_KINDS,
            filters=only_sony,
            top_k=20,
            boosts={"body": 1.0},
        )
        assert product_ids_of(lexical) == product_ids_of(semantic) == {"hp-sony"}
        assert {h.unit.id for h in semantic} == {
            u.id for u in contract_store.get_units("hp-sony", PASSAGE_KINDS)
        }

    def test_no_match_is_empty(self, contract_store: DocumentStore) -> None:
        assert (
            contract_store.lexical(
                "zzzqqq", kinds=("product",), filters=None, top_k=3, boosts=BOOSTS
            )
            == []
        )

    # -- semantic and hybrid --------------------------------------------------------------

    def test_scores_are_cosine_similarities(
        self, contract_store: DocumentStore, embedder: HashingEmbedder
    ) -> None:
        vector = embedder.embed_query("wireless headphones")
        found = contract_store.semantic(vector, kinds=("product",), filters=None, top_k=3)
        assert len(found) == 3
        for hit in found:
            expected = float(embedder.embed_documents([hit.unit.text])[0] @ vector)
            assert hit.score == pytest.approx(expected, abs=1e-5)

    def test_hybrid_is_both_searches_with_the_same_filters(
        self, contract_store: DocumentStore, embedder: HashingEmbedder
    ) -> None:
        filters = Filters(price_max=100)
        vector = embedder.embed_query("headphones")
        lexical, semantic = contract_store.hybrid(
            "headphones", vector, kinds=("product",), filters=filters, top_k=5, boosts=BOOSTS
        )
        assert lexical == contract_store.lexical(
            "headphones", kinds=("product",), filters=filters, top_k=5, boosts=BOOSTS
        )
        assert semantic == contract_store.semantic(
            vector, kinds=("product",), filters=filters, top_k=5
        )

    def test_hybrid_without_a_vector_is_lexical_only(self, contract_store: DocumentStore) -> None:
        lexical, semantic = contract_store.hybrid(
            "headphones", None, kinds=("product",), filters=None, top_k=5, boosts=BOOSTS
        )
        assert semantic == []
        assert lexical == contract_store.lexical(
            "headphones", kinds=("product",), filters=None, top_k=5, boosts=BOOSTS
        )

    # -- the search pipeline on top -------------------------------------------------------

    @pytest.mark.parametrize(("query", "expected"), TOP_1)
    def test_specific_query_top_1(
        self, contract_store: DocumentStore, embedder: HashingEmbedder, query: str, expected: str
    ) -> None:
        assert searched_product_ids(contract_store, embedder, query, None)[0] == expected

    @pytest.mark.parametrize(("query", "filters"), FILTERED)
    def test_filtered_results_match_the_filters(
        self,
        contract_store: DocumentStore,
        embedder: HashingEmbedder,
        query: str,
        filters: Filters,
    ) -> None:
        found = searched_product_ids(contract_store, embedder, query, filters)
        assert found
        for product_id in found:
            product = contract_store.get_product(product_id)
            assert product is not None and filters.matches(product)

    def test_passages_answer_about_one_product(
        self, contract_store: DocumentStore, embedder: HashingEmbedder
    ) -> None:
        search = HybridSearch(contract_store, embedder, config=SEARCH_CONFIG)
        hits = search.passages("pan-lodge", "does it work on induction", rerank=False)
        assert hits[0].unit_id == "pan-lodge#qa-1"
        assert "induction" in hits[0].explanation.matched_terms["body"]
        assert {hit.product_id for hit in hits} == {"pan-lodge"}

    # -- reads ----------------------------------------------------------------------------

    def test_get_product_round_trips(self, contract_store: DocumentStore) -> None:
        for row in PRODUCTS:
            assert contract_store.get_product(row["id"]) == Product.model_validate(row)
        assert contract_store.get_product("missing") is None

    def test_get_products_in_one_call(self, contract_store: DocumentStore) -> None:
        ids = [*[row["id"] for row in PRODUCTS][::-1], "missing", PRODUCTS[0]["id"]]
        fetched = contract_store.get_products(ids)
        assert fetched == {row["id"]: Product.model_validate(row) for row in PRODUCTS}
        assert contract_store.get_products([]) == {}

    def test_get_units_in_order_and_by_kind(self, contract_store: DocumentStore) -> None:
        for row in PRODUCTS:
            product = Product.model_validate(row)
            assert contract_store.get_units(row["id"]) == product_units(product)
        reviews = contract_store.get_units("hp-sony", ["review"])
        assert [u.id for u in reviews] == ["hp-sony#review-1", "hp-sony#review-2"]
        assert contract_store.get_units("missing") == []

    def test_product_vectors(
        self, contract_store: DocumentStore, embedder: HashingEmbedder
    ) -> None:
        ids = [row["id"] for row in PRODUCTS] + ["missing", "hp-sony#review-1"]  # not a product
        vectors = contract_store.product_vectors(ids)
        assert set(vectors) == {row["id"] for row in PRODUCTS}
        for row in PRODUCTS:
            (unit, *_) = product_units(Product.model_validate(row))
            expected = embedder.embed_documents([unit.text])[0]
            np.testing.assert_allclose(vectors[row["id"]], expected, atol=1e-6)
        assert contract_store.product_vectors([]) == {}

    def test_brands_keep_their_case(self, contract_store: DocumentStore) -> None:
        assert contract_store.brands() == sorted({p["brand"] for p in PRODUCTS})

    def test_stats(self, contract_store: DocumentStore) -> None:
        stats = contract_store.stats()
        assert stats.products == len(PRODUCTS)
        assert stats.units == sum(len(product_units(Product.model_validate(p))) for p in PRODUCTS)
        assert stats.embedding_model == "hashing-256"
        assert stats.version is not None

    def test_empty_store(self, empty_store: DocumentStore, embedder: HashingEmbedder) -> None:
        stats = empty_store.stats()
        assert (stats.version, stats.products, stats.units) == (None, 0, 0)
        assert (
            empty_store.lexical(
                "headphones", kinds=("product",), filters=None, top_k=5, boosts=BOOSTS
            )
            == []
        )
        vector = embedder.embed_query("headphones")
        assert empty_store.semantic(vector, kinds=("product",), filters=None, top_k=5) == []
        assert empty_store.get_product("hp-sony") is None
        assert empty_store.get_products(["hp-sony"]) == {}
        assert empty_store.brands() == []
        known = empty_store.known_vectors(product_units(Product(id="x", title="X")), "m", "c")
        assert known.embeddings == {} and known.cross == {}

    # -- writes ---------------------------------------------------------------------------

    def test_unchanged_texts_reuse_their_vectors(
        self, contract_store: DocumentStore, catalog_path: Path, embedder: HashingEmbedder
    ) -> None:
        report = index_catalog(read_catalog(catalog_path), contract_store, embedder, progress=False)
        assert report.embedded == 0
        assert report.reused_embeddings == report.units
        report = index_catalog(
            read_catalog(catalog_path), contract_store, embedder, prune=True, progress=False
        )
        assert report.embedded == 0  # a full re-index reuses them too

    def test_changed_text_is_re_embedded(
        self, tmp_path: Path, contract_store: DocumentStore, embedder: HashingEmbedder
    ) -> None:
        changed = dict(PRODUCTS[0], title="Sony WH-1000XM6 Headphones")
        path = write_jsonl(tmp_path / "one.jsonl", [changed])
        report = index_catalog(read_catalog(path), contract_store, embedder, progress=False)
        assert report.embedded == 1  # only the product unit's text changed
        product = contract_store.get_product("hp-sony")
        assert product is not None and product.title == "Sony WH-1000XM6 Headphones"
        assert contract_store.stats().products == len(PRODUCTS)

    def test_known_vectors_need_the_same_model(
        self, contract_store: DocumentStore, embedder: HashingEmbedder
    ) -> None:
        units = product_units(Product.model_validate(PRODUCTS[0]))
        known = contract_store.known_vectors(units, embedder.name)
        assert set(known.embeddings) == {u.id for u in units}
        assert known.cross == {}  # none asked for (and the index has none)
        np.testing.assert_allclose(
            known.embeddings["hp-sony"], embedder.embed_documents([units[0].text])[0], atol=1e-6
        )
        assert contract_store.known_vectors(units, "another-model").embeddings == {}
        assert contract_store.known_vectors(units, embedder.name, "a-cross-model").cross == {}

    def test_unchanged_texts_reuse_their_cross_lingual_vectors(
        self,
        tmp_path: Path,
        empty_store: DocumentStore,
        catalog_path: Path,
        embedder: HashingEmbedder,
    ) -> None:
        cross = HashingEmbedder(48)  # stands in for a multilingual model
        first = index_catalog(
            read_catalog(catalog_path), empty_store, embedder, cross_embedder=cross, progress=False
        )
        assert first.cross_embedded > 0
        units = product_units(Product.model_validate(PRODUCTS[0]))
        known = empty_store.known_vectors(units, embedder.name, cross.name)
        assert set(known.cross) == {u.id for u in units}
        np.testing.assert_allclose(
            known.cross["hp-sony"], cross.embed_documents([units[0].text])[0], atol=1e-6
        )
        again = index_catalog(
            read_catalog(catalog_path),
            empty_store,
            embedder,
            cross_embedder=cross,
            prune=True,
            progress=False,
        )
        assert (again.cross_embedded, again.reused_cross_embeddings) == (0, again.units)
        changed = dict(PRODUCTS[0], title="Sony WH-1000XM6 Headphones")
        path = write_jsonl(tmp_path / "one.jsonl", [changed])
        one = index_catalog(
            read_catalog(path), empty_store, embedder, cross_embedder=cross, progress=False
        )
        assert one.cross_embedded == 1  # only the product unit's text changed
        other = HashingEmbedder(40)
        fresh = index_catalog(
            read_catalog(catalog_path),
            empty_store,
            embedder,
            cross_embedder=other,
            prune=True,
            progress=False,
        )
        assert fresh.cross_embedded == first.cross_embedded  # nothing reused across models
        assert fresh.embedded == 1  # the changed title: back to the file's
        assert empty_store.stats().cross_embedding_model == other.name

    def test_prune_removes_products_missing_from_the_file(
        self, tmp_path: Path, contract_store: DocumentStore, embedder: HashingEmbedder
    ) -> None:
        path = write_jsonl(tmp_path / "two.jsonl", PRODUCTS[:2])
        report = index_catalog(
            read_catalog(path), contract_store, embedder, prune=True, progress=False
        )
        assert report.removed == len(PRODUCTS) - 2
        assert contract_store.stats().products == 2
        assert contract_store.get_product("pan-lodge") is None
        assert contract_store.get_units("pan-lodge") == []

    def test_without_prune_others_stay(
        self, tmp_path: Path, contract_store: DocumentStore, embedder: HashingEmbedder
    ) -> None:
        path = write_jsonl(tmp_path / "two.jsonl", PRODUCTS[:2])
        report = index_catalog(read_catalog(path), contract_store, embedder, progress=False)
        assert report.removed == 0
        assert contract_store.stats().products == len(PRODUCTS)

    def test_upsert_changes_the_version_and_drops_removed_units(
        self, tmp_path: Path, contract_store: DocumentStore, embedder: HashingEmbedder
    ) -> None:
        before = contract_store.stats().version
        fewer_reviews = dict(PRODUCTS[0], reviews=PRODUCTS[0]["reviews"][:1])
        path = write_jsonl(tmp_path / "one.jsonl", [fewer_reviews])
        report = index_catalog(read_catalog(path), contract_store, embedder, progress=False)
        after = contract_store.stats().version
        assert before is not None and after is not None
        assert report.version == after != before
        reviews = contract_store.get_units("hp-sony", ["review"])
        assert [u.id for u in reviews] == ["hp-sony#review-1"]
        assert (
            contract_store.lexical(
                "commuting", kinds=("review",), filters=None, top_k=5, boosts={"body": 1.0}
            )
            == []
        )

    def test_delete_products(self, contract_store: DocumentStore) -> None:
        before = contract_store.stats()
        assert contract_store.delete_products(["hp-jbl", "missing"]) == 1
        after = contract_store.stats()
        assert contract_store.get_product("hp-jbl") is None
        assert contract_store.get_units("hp-jbl") == []
        assert after.products == len(PRODUCTS) - 1
        assert after.version != before.version
        assert "JBL" not in contract_store.brands()
        assert contract_store.delete_products(["missing"]) == 0

    def test_other_embedding_model_needs_a_full_reindex(
        self, contract_store: DocumentStore, catalog_path: Path
    ) -> None:
        other = HashingEmbedder(64)
        with pytest.raises(StoreError, match="re-index the whole catalog"):
            contract_store.writer(embedding_model=other.name, dim=other.dim)
        report = index_catalog(
            read_catalog(catalog_path), contract_store, other, prune=True, progress=False
        )
        assert report.embedded == report.units  # nothing reused across models
        assert contract_store.stats().embedding_model == "hashing-64"
        found = contract_store.semantic(
            other.embed_query("cast iron skillet"), kinds=("product",), filters=None, top_k=1
        )
        assert [h.unit.product_id for h in found] == ["pan-lodge"]

    @pytest.mark.parametrize("prune", [False, True])
    def test_uncommitted_writes_are_invisible(
        self, contract_store: DocumentStore, embedder: HashingEmbedder, prune: bool
    ) -> None:
        record = record_of(Product(id="staged", title="Staged product"), embedder)
        writer = contract_store.writer(embedding_model=embedder.name, dim=embedder.dim, prune=prune)
        assert writer.write([record]) == []
        assert contract_store.get_product("staged") is None
        assert contract_store.stats().products == len(PRODUCTS)
        writer.abort()
        assert contract_store.get_product("staged") is None
        assert contract_store.stats().products == len(PRODUCTS)

    @pytest.mark.parametrize("prune", [False, True])
    def test_refused_products_are_reported_not_written(
        self, contract_store: DocumentStore, embedder: HashingEmbedder, prune: bool
    ) -> None:
        good = Product(id="good", title="Camping tent for two")
        bad = Product(id="bad-vectors", title="Bad vectors", reviews=[{"text": "Fine."}])
        bad_record = ProductRecord(bad, product_units(bad), np.ones((2, 3), np.float32))
        writer = contract_store.writer(embedding_model=embedder.name, dim=embedder.dim, prune=prune)
        failures = writer.write([record_of(good, embedder), bad_record])
        assert [f.product_id for f in failures] == ["bad-vectors"]
        writer.commit()
        assert contract_store.get_product("bad-vectors") is None
        assert contract_store.get_units("bad-vectors") == []
        assert contract_store.get_product("good") is not None
        assert contract_store.stats().products == (1 if prune else len(PRODUCTS) + 1)

    def test_a_product_written_twice_in_one_write_keeps_only_its_last_units(
        self, empty_store: DocumentStore, embedder: HashingEmbedder
    ) -> None:
        first = Product(id="p", title="Tent", reviews=[{"text": "Dry."}, {"text": "Light."}])
        second = Product(id="p", title="Tent", reviews=[{"text": "Dry."}])
        writer = empty_store.writer(embedding_model=embedder.name, dim=embedder.dim)
        writer.write([record_of(first, embedder)])
        writer.write([record_of(second, embedder)])
        report = writer.commit()
        assert (report.products, report.units) == (1, 2)
        assert [u.id for u in empty_store.get_units("p")] == ["p", "p#review-1"]

    def test_a_writer_is_closed_after_commit(
        self, empty_store: DocumentStore, embedder: HashingEmbedder
    ) -> None:
        writer = empty_store.writer(embedding_model=embedder.name, dim=embedder.dim)
        writer.write([record_of(Product(id="p", title="Tent"), embedder)])
        writer.commit()
        with pytest.raises(StoreError):
            writer.write([record_of(Product(id="q", title="Stove"), embedder)])
        writer.abort()  # after a commit: nothing to do
        assert empty_store.stats().products == 1

    # -- the cross-lingual space ----------------------------------------------------------

    def test_crosslingual_searches_only_the_other_script(
        self, empty_store: DocumentStore, embedder: HashingEmbedder
    ) -> None:
        write_crosslingual(empty_store, embedder)
        near_headphones = np.array([1.0, 0.1, 0.0, 0.0], np.float32)
        found = empty_store.crosslingual(
            near_headphones,
            model=CROSS_MODEL,
            script="cjk",
            kinds=("product",),
            filters=None,
            top_k=5,
        )
        assert [hit.unit.product_id for hit in found][:1] == ["en-hp"]
        assert product_ids_of(found) <= {"en-hp", "en-pan"}  # never a Chinese product
        assert found[0].score == pytest.approx(
            float(near_headphones @ CROSS["en-hp"]) / float(np.linalg.norm(near_headphones)),
            abs=1e-3,
        )
        found = empty_store.crosslingual(
            near_headphones,
            model=CROSS_MODEL,
            script="latin",
            kinds=("product",),
            filters=Filters(price_max=150),
            top_k=5,
        )
        assert [hit.unit.product_id for hit in found] == ["zh-hp"]  # zh-pan costs 199
        assert empty_store.stats().cross_embedding_model == CROSS_MODEL

    def test_crosslingual_of_another_model_is_empty(
        self, empty_store: DocumentStore, embedder: HashingEmbedder
    ) -> None:
        write_crosslingual(empty_store, embedder)
        assert (
            empty_store.crosslingual(
                np.ones(4, np.float32),
                model="another-model",
                script="cjk",
                kinds=("product",),
                filters=None,
                top_k=5,
            )
            == []
        )

    def test_a_write_of_another_cross_model_needs_prune(
        self, empty_store: DocumentStore, embedder: HashingEmbedder
    ) -> None:
        write_crosslingual(empty_store, embedder)
        with pytest.raises(StoreError, match="prune"):
            empty_store.writer(
                embedding_model=embedder.name, dim=embedder.dim, cross_model="other", cross_dim=4
            )
        with pytest.raises(StoreError, match="prune"):
            empty_store.writer(embedding_model=embedder.name, dim=embedder.dim)

    @pytest.mark.parametrize(
        "bad",
        [
            lambda n: np.ones((n, 3), np.float32),
            lambda n: np.full((n, 4), np.nan, np.float32),
            lambda n: np.zeros((n, 4), np.float32),
        ],
        ids=["shape", "nan", "zeros"],
    )
    def test_bad_cross_vectors_are_reported_not_written(
        self,
        empty_store: DocumentStore,
        embedder: HashingEmbedder,
        bad: Callable[[int], np.ndarray],
    ) -> None:
        product = Product(id="bad", title="Bad vectors")
        units = product_units(product)
        writer = empty_store.writer(
            embedding_model=embedder.name, dim=embedder.dim, cross_model=CROSS_MODEL, cross_dim=4
        )
        record = ProductRecord(
            product,
            units,
            embedder.embed_documents([u.text for u in units]),
            cross_embeddings=bad(len(units)),
        )
        failures = writer.write([record])
        writer.abort()
        assert [f.product_id for f in failures] == ["bad"]

    @pytest.mark.parametrize(
        "bad",
        [
            lambda n: np.ones((n + 1, 256), np.float32),
            lambda n: np.full((n, 256), np.nan, np.float32),
            lambda n: np.zeros((n, 256), np.float32),
        ],
        ids=["shape", "nan", "zeros"],
    )
    def test_bad_embeddings_are_reported_not_written(
        self,
        empty_store: DocumentStore,
        embedder: HashingEmbedder,
        bad: Callable[[int], np.ndarray],
    ) -> None:
        good, broken = Product(id="good", title="Good"), Product(id="bad", title="Bad vectors")
        writer = empty_store.writer(embedding_model=embedder.name, dim=embedder.dim)
        record = ProductRecord(broken, product_units(broken), bad(len(product_units(broken))))
        failures = writer.write([record_of(good, embedder), record])
        writer.commit()
        assert [f.product_id for f in failures] == ["bad"]
        assert empty_store.get_products(["good", "bad"]).keys() == {"good"}


CROSS_MODEL = "test-cross"
# Hand-made cross-lingual vectors: each English product and its Chinese counterpart share a
# direction.
CROSS = {
    "en-hp": np.array([1.0, 0.0, 0.0, 0.0], np.float32),
    "zh-hp": np.array([0.98, 0.2, 0.0, 0.0], np.float32),
    "en-pan": np.array([0.0, 0.0, 1.0, 0.0], np.float32),
    "zh-pan": np.array([0.0, 0.0, 0.98, 0.2], np.float32),
}
CROSS_PRODUCTS = [
    Product(id="en-hp", title="Noise cancelling headphones", price=99),
    Product(id="zh-hp", title="降噪耳机 无线", price=129),
    Product(id="en-pan", title="Cast iron skillet", price=40),
    Product(id="zh-pan", title="铸铁 平底锅", price=199),
]


def write_crosslingual(store: DocumentStore, embedder: HashingEmbedder) -> None:
    writer = store.writer(
        embedding_model=embedder.name, dim=embedder.dim, cross_model=CROSS_MODEL, cross_dim=4
    )
    records = []
    for product in CROSS_PRODUCTS:
        units = product_units(product)
        records.append(
            ProductRecord(
                product,
                units,
                embedder.embed_documents([u.text for u in units]),
                cross_embeddings=np.vstack([CROSS[product.id]] * len(units)),
            )
        )
    assert writer.write(records) == []
    writer.commit()
