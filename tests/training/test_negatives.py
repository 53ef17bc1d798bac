"""Negatives mined with the project's own hybrid search."""

from __future__ import annotations

from pathlib import Path

import pytest

from indexer.indexer import index_catalog
from indexer.reader import read_catalog
from retrieval.embedders.hashing import HashingEmbedder
from retrieval.schema import Product
from retrieval.search import HybridSearch, SearchConfig
from retrieval.stores.embedded import EmbeddedStore
from tests.conftest import PRODUCTS, write_jsonl
from training.negatives import NegativeMiner
from training.queries import SyntheticQuery, generate_queries

CATALOG = {p["id"]: Product.model_validate(p) for p in PRODUCTS}


def _query(text: str, product_id: str, unit_id: str | None = None) -> SyntheticQuery:
    unit = unit_id or product_id
    return SyntheticQuery(text, "test", product_id, unit, "product" if unit == product_id else "qa")


@pytest.fixture
def miner(search: HybridSearch) -> NegativeMiner:
    return NegativeMiner(search, CATALOG, depth=30, hard=4, random_count=2, seed=1)


class TestNegativeMiner:
    def test_never_the_positives_product(self, miner: NegativeMiner) -> None:
        for query in generate_queries(CATALOG.values(), per_product=4, seed=0):
            negatives = miner.mine(query)
            assert all(n.product_id != query.product_id for n in negatives), query
            assert len({n.unit_id for n in negatives}) == len(negatives)

    def test_hard_negatives_come_from_the_search_in_its_order(self, miner: NegativeMiner) -> None:
        negatives = miner.mine(_query("jbl headphones", "hp-jbl"))
        hard = [n for n in negatives if n.source == "hard"]
        assert hard and all(n.rank is not None for n in hard)
        assert [n.rank for n in hard] == sorted(n.rank for n in hard if n.rank is not None)
        assert sum(n.source == "random" for n in negatives) == 2
        assert all(n.text == miner.unit(n.unit_id).text for n in negatives)

    def test_a_candidate_with_every_query_term_is_not_a_negative(
        self, miner: NegativeMiner
    ) -> None:
        ids = {n.product_id for n in miner.mine(_query("noise cancelling headphones", "hp-sony"))}
        assert "hp-anker" not in ids  # also noise cancelling headphones: maybe relevant

    def test_prices_do_not_make_other_products_irrelevant(self, miner: NegativeMiner) -> None:
        ids = {n.product_id for n in miner.mine(_query("headphones under $400", "hp-sony"))}
        assert not ids & {"hp-anker", "hp-jbl"}

    def test_brands_do(self, miner: NegativeMiner) -> None:
        ids = {n.product_id for n in miner.mine(_query("sony headphones", "hp-sony"))}
        assert ids & {"hp-anker", "hp-jbl"}

    def test_questions_get_other_products_passages(self, miner: NegativeMiner) -> None:
        negatives = miner.mine(_query("可以连接两台设备吗？", "zh-huawei", "zh-huawei#qa-1"))
        assert negatives
        assert all("#" in n.unit_id and n.product_id != "zh-huawei" for n in negatives)

    def test_deterministic_for_a_seed(self, search: HybridSearch) -> None:
        query = _query("wireless headphones", "hp-jbl")
        runs = [NegativeMiner(search, CATALOG, seed=5).mine(query) for _ in range(2)]
        assert runs[0] == runs[1]

    def test_near_duplicates_of_the_positive_are_skipped(self, tmp_path: Path) -> None:
        twin = {**PRODUCTS[0], "id": "hp-sony-twin", "price": 329.0}
        retitled = {**PRODUCTS[0], "id": "hp-sony-black", "title": PRODUCTS[0]["title"] + "!"}
        rows = [*PRODUCTS, twin, retitled]
        store = EmbeddedStore(tmp_path / "dup-index")
        embedder = HashingEmbedder(256)
        index_catalog(
            read_catalog(write_jsonl(tmp_path / "dup.jsonl", rows)), store, embedder, progress=False
        )
        products = {p["id"]: Product.model_validate(p) for p in rows}
        search = HybridSearch(store, embedder, config=SearchConfig(min_similarity=0.2))
        miner = NegativeMiner(search, products, depth=30, hard=10, random_count=10, seed=0)
        for text in ("sony headphones", "wireless headphones", "over-ear", "sony wh-1000xm5"):
            ids = {n.product_id for n in miner.mine(_query(text, "hp-sony"))}
            assert not ids & {"hp-sony", "hp-sony-twin", "hp-sony-black"}, text
        store.close()

    def test_rejects_bad_counts(self, search: HybridSearch) -> None:
        with pytest.raises(ValueError, match="depth"):
            NegativeMiner(search, CATALOG, depth=0)
