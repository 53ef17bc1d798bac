"""Cross-lingual search with the real multilingual USE model: a Chinese query finds English
products and an English query Chinese ones, on the shared catalog of both languages."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from app.settings import Settings
from indexer.indexer import index_catalog
from indexer.reader import read_catalog
from retrieval.embedders.hashing import HashingEmbedder
from retrieval.embedders.use_onnx import PACKAGED_NAME, UseOnnxEmbedder
from retrieval.search import HybridSearch, SearchConfig
from retrieval.stores.embedded import EmbeddedStore

pytestmark = pytest.mark.slow
WEIGHTS = {"lexical": 1.0, "semantic": 1.0, "crosslingual": 0.5}


@pytest.fixture(scope="module")
def use() -> UseOnnxEmbedder:
    model = UseOnnxEmbedder(PACKAGED_NAME)
    model.warm_up()
    return model


@pytest.fixture
def bilingual(catalog_path: Path, tmp_path: Path, use: UseOnnxEmbedder) -> HybridSearch:
    store = EmbeddedStore(tmp_path / "bilingual")
    embedder = HashingEmbedder(256)
    report = index_catalog(
        read_catalog(catalog_path), store, embedder, cross_embedder=use, progress=False
    )
    assert report.skipped == 0
    assert store.stats().cross_embedding_model == PACKAGED_NAME
    config = SearchConfig(weights=WEIGHTS, cjk_weights={"semantic": 0.0}, min_similarity=0.2)
    return HybridSearch(store, embedder, config=config, cross_embedder=use)


def _found(search: HybridSearch, query: str) -> dict[str, list[str]]:
    """Product id -> the retrievers that found it, in rank order."""
    hits = search.search(query, size=10, rerank=False).hits
    return {h.product.id: sorted(h.hit.explanation.retrievers) for h in hits}


def test_a_chinese_query_finds_english_products(bilingual: HybridSearch) -> None:
    found = _found(bilingual, "降噪耳机")
    ids = list(found)
    assert ids[0] == "zh-huawei"  # its own language first: the words match
    english = [i for i in ids if i.startswith(("hp-", "ear-"))]
    assert english and set(english[:2]) <= {"hp-sony", "hp-anker", "hp-jbl", "ear-sport"}
    assert all(found[i] == ["crosslingual"] for i in english)


def test_an_english_query_finds_chinese_products(bilingual: HybridSearch) -> None:
    found = _found(bilingual, "rice cooker")
    assert next(iter(found)) == "zh-midea"
    assert found["zh-midea"] == ["crosslingual"]
    found = _found(bilingual, "running shoes")
    assert next(iter(found)) == "shoe-pegasus"
    assert "zh-lining" in found


def test_the_cross_lingual_list_never_holds_the_query_s_own_language(
    bilingual: HybridSearch,
) -> None:
    hits = bilingual.search("headphones", size=10, rerank=False).hits
    for hit in hits:
        if "crosslingual" in hit.hit.explanation.retrievers:
            assert hit.product.id.startswith("zh-")


def test_weight_0_is_the_search_without_it(bilingual: HybridSearch) -> None:
    bilingual.config = SearchConfig(
        weights={**WEIGHTS, "crosslingual": 0.0},
        cjk_weights={"semantic": 0.0},
        min_similarity=0.2,
    )
    assert "zh-midea" not in _found(bilingual, "rice cooker")


def test_a_weakly_matched_query_interleaves_the_other_language(bilingual: HybridSearch) -> None:
    # one of three words in the best English title: the Chinese earphones rank beside the
    # English ones instead of after every English match
    query = "wireless sports earphones"
    result = bilingual.search(query, size=10, rerank=False)
    assert result.fusion is not None and result.fusion.lexical_coverage == pytest.approx(1 / 3)
    assert result.fusion.weights["crosslingual"] == 2.0
    assert {h.product.id for h in result.hits[:2]} == {"zh-huawei", "ear-sport"}
    bilingual.config = replace(bilingual.config, weak_match=None)
    ids = [h.product.id for h in bilingual.search(query, size=10, rerank=False).hits]
    assert ids[0] == "ear-sport" and "zh-huawei" not in ids[:3]


def test_the_default_floor_leaves_out_unrelated_products(bilingual: HybridSearch) -> None:
    # USE cosines to "wireless sports earphones": earphones 0.42, a rice cooker 0.08
    query = "wireless sports earphones"
    assert "zh-midea" in [h.product.id for h in bilingual.search(query, rerank=False).hits]
    floored = HybridSearch(
        bilingual.store,
        bilingual.embedder,
        config=replace(
            bilingual.config, cross_min_similarity=Settings().crosslingual_min_similarity
        ),
        cross_embedder=bilingual.cross_embedder,
    )
    ids = [h.product.id for h in floored.search(query, rerank=False).hits]
    assert "zh-huawei" in ids[:2] and "zh-midea" not in ids
