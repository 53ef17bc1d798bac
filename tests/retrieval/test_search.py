import copy
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from haystack import Document

from retrieval.embedders.hashing import HashingEmbedder
from retrieval.fusion import WeakMatch
from retrieval.schema import Filters
from retrieval.search import Adjustment, HybridSearch, ProductHit, SearchConfig
from retrieval.stores.base import StoreUnavailable
from retrieval.stores.embedded import EmbeddedStore
from tests.retrieval.store_contract import CROSS_MODEL, write_crosslingual


class KeywordReranker:
    """Stands in for a cross-encoder model: scores by how many times a keyword occurs."""

    name = "keyword"

    def __init__(self, keyword: str) -> None:
        self.keyword = keyword
        self.calls: list[int] = []

    def warm_up(self) -> None:
        pass

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        self.calls.append(len(texts))
        return [float(t.lower().count(self.keyword)) for t in texts]


class TestProductSearch:
    def test_english_query(self, search: HybridSearch) -> None:
        result = search.search("noise cancelling headphones", size=3)
        ids = [h.product.id for h in result.hits]
        assert set(ids[:2]) == {"hp-sony", "hp-anker"}

    def test_chinese_query_finds_chinese_products(self, search: HybridSearch) -> None:
        assert search.search("降噪蓝牙耳机", size=1).hits[0].product.id == "zh-huawei"
        assert search.search("跑步鞋", size=1).hits[0].product.id == "zh-lining"
        assert search.search("电饭煲", size=1).hits[0].product.id == "zh-midea"

    def test_filters_are_honoured(self, search: HybridSearch) -> None:
        filters = Filters(price_max=100, in_stock=True)
        result = search.search("headphones", filters=filters)
        assert result.hits[0].product.id == "hp-anker"
        assert all(filters.matches(h.product) for h in result.hits)
        assert "hp-jbl" not in {h.product.id for h in result.hits}  # out of stock

    def test_explanations_say_who_found_it_and_what_matched(self, search: HybridSearch) -> None:
        top = search.search("anker headphones", size=1).hits[0]
        why = top.hit.explanation
        assert top.product.id == "hp-anker"
        assert set(why.retrievers) == {"lexical", "semantic"}
        assert why.retrievers["lexical"]["rank"] == 1
        assert "anker" in why.matched_terms["brand"]
        assert "lexical #1" in why.summary()
        assert why.fused_score == pytest.approx(top.hit.score)

    def test_pages_do_not_overlap_and_cover_the_list(self, search: HybridSearch) -> None:
        everything = [h.product.id for h in search.search("wireless", size=9).hits]
        pages = [
            [h.product.id for h in search.search("wireless", page=p, size=2).hits]
            for p in (1, 2, 3)
        ]
        assert [pid for page in pages for pid in page] == everything[:6]

    def test_window_covers_deep_pages(
        self, store: EmbeddedStore, embedder: HashingEmbedder
    ) -> None:
        small = HybridSearch(store, embedder, config=SearchConfig(candidates=2))
        assert len(small.search("wireless", page=3, size=2).hits) == 2

    def test_timings_per_stage(self, search: HybridSearch) -> None:
        timings = search.search("headphones").timings_ms
        assert {"embedder", "retriever", "joiner", "ranker", "total"} <= set(timings)

    @pytest.mark.parametrize(("page", "size"), [(0, 10), (1, 0)])
    def test_bad_paging(self, search: HybridSearch, page: int, size: int) -> None:
        with pytest.raises(ValueError, match="page and size"):
            search.search("x", page=page, size=size)


class TestReranking:
    def test_reranker_reorders_only_the_top_depth(
        self, store: EmbeddedStore, embedder: HashingEmbedder
    ) -> None:
        reranker = KeywordReranker("jbl")
        config = SearchConfig(rerank_depth=3, rerank_hybrid_weight=0.0)  # the re-ranker's order
        search = HybridSearch(store, embedder, reranker, config)
        plain = [h.product.id for h in search.search("headphones", rerank=False, size=9).hits]
        reranked = search.search("headphones", size=9)
        ids = [h.product.id for h in reranked.hits]
        assert reranked.reranked
        assert reranker.calls == [3]
        assert sorted(ids[:3]) == sorted(plain[:3])
        assert ids[3:] == plain[3:]
        assert "hp-jbl" in plain[:3]
        assert ids[0] == "hp-jbl"
        assert reranked.hits[0].hit.explanation.rerank_score == 2.0  # "JBL" in title and brand

    def test_the_reranker_order_is_fused_with_the_hybrid_order(
        self, store: EmbeddedStore, embedder: HashingEmbedder
    ) -> None:
        """Each block position gets 1/(k + re-ranker rank) + w/(k + hybrid rank): a document
        the re-ranker alone puts first only leads when the hybrid does not rank it far below."""
        plain_search = HybridSearch(store, embedder, config=SearchConfig(rrf_k=1.0))
        hits = plain_search.search("headphones", size=9).hits
        plain = [h.product.id for h in hits]
        last_of_block = plain[3]
        reranker = KeywordReranker(hits[3].hit.text.lower())  # scores that text alone
        ranked = {}
        for weight in (0.0, 0.5, 3.0):
            config = SearchConfig(rerank_depth=4, rrf_k=1.0, rerank_hybrid_weight=weight)
            search = HybridSearch(store, embedder, reranker, config)
            ranked[weight] = [h.product.id for h in search.search("headphones", size=9).hits]
        # k=1, block of 4, the re-ranker's favourite is the hybrid's 4th and every other text
        # scores 0 (kept in hybrid order, so the hybrid's i-th is the re-ranker's i+1-th):
        # the favourite scores 1/2 + w/5, the hybrid's i-th 1/(2 + i) + w/(1 + i).
        assert ranked[0.0][:4] == [last_of_block, *plain[:3]]  # the re-ranker's order alone
        assert ranked[0.5][:4] == [last_of_block, *plain[:3]]  # 0.6 against 0.583
        # w=3: 1.833, 1.25 for the hybrid's first two, then the favourite's 1.1, then 0.95
        assert ranked[3.0][:4] == [plain[0], plain[1], last_of_block, plain[2]]
        for order in ranked.values():
            assert sorted(order[:4]) == sorted(plain[:4]) and order[4:] == plain[4:]

    def test_a_negative_hybrid_weight_is_refused(
        self, store: EmbeddedStore, embedder: HashingEmbedder
    ) -> None:
        with pytest.raises(ValueError, match="must not be negative"):
            HybridSearch(
                store, embedder, KeywordReranker("x"), SearchConfig(rerank_hybrid_weight=-1)
            )

    def test_queries_the_reranker_was_not_trained_for_go_around_it(
        self, store: EmbeddedStore, embedder: HashingEmbedder
    ) -> None:
        """Chinese queries and passage searches skip a re-ranker that does not cover them."""
        reranker = KeywordReranker("x")
        config = SearchConfig(rerank_cjk=False, rerank_passages=False)
        search = HybridSearch(store, embedder, reranker, config)
        chinese = search.search("耳机")
        assert not chinese.reranked and chinese.hits
        assert all(h.hit.explanation.rerank_score is None for h in chinese.hits)
        assert search.passages("hp-sony", "how long does the battery last")
        assert reranker.calls == []
        assert search.search("headphones").reranked and reranker.calls
        both = HybridSearch(store, embedder, reranker, SearchConfig())
        assert both.search("耳机").reranked
        calls = len(reranker.calls)
        both.passages("hp-sony", "how long does the battery last")
        assert len(reranker.calls) == calls + 1

    def test_rerank_can_be_switched_off_per_request(
        self, store: EmbeddedStore, embedder: HashingEmbedder
    ) -> None:
        reranker = KeywordReranker("x")
        search = HybridSearch(store, embedder, reranker)
        result = search.search("headphones", rerank=False)
        assert not result.reranked
        assert reranker.calls == []
        assert result.hits[0].hit.explanation.rerank_score is None


class _DropFirst:
    """A policy that leaves out the best result and reverses the rest of its head."""

    depth = 3

    def apply(self, hits: list[ProductHit], page_size: int) -> list[ProductHit]:
        rest = hits[1:]
        return [
            ProductHit(h.product, h.hit, Adjustment(relevance_rank=hits.index(h) + 1))
            for h in reversed(rest)
        ]


class TestResultPolicy:
    def test_a_policy_reorders_the_head_and_the_page_is_filled_from_below(
        self, store: EmbeddedStore, embedder: HashingEmbedder
    ) -> None:
        search = HybridSearch(store, embedder)  # no similarity floor: every product is a hit
        plain = [h.product.id for h in search.search("headphones", size=10).hits]
        assert len(plain) >= 4
        result = search.search("headphones", size=3, policy=_DropFirst())
        # the head is the best max(depth, page size) = 3: the first left out, two reversed
        assert [h.product.id for h in result.hits] == [plain[2], plain[1], plain[3]]
        assert [h.adjustment.relevance_rank if h.adjustment else None for h in result.hits] == [
            3,
            2,
            None,
        ]
        assert result.adjusted and "policy" in result.timings_ms

    def test_without_a_policy_nothing_is_adjusted(self, search: HybridSearch) -> None:
        result = search.search("headphones")
        assert not result.adjusted and all(h.adjustment is None for h in result.hits)


class TestPassages:
    def test_only_the_products_own_passages(self, search: HybridSearch) -> None:
        hits = search.passages("hp-sony", "how long does the battery last")
        assert hits
        assert {h.product_id for h in hits} == {"hp-sony"}
        assert hits[0].unit_id in {"hp-sony#review-2", "hp-sony#attributes"}

    def test_chinese_question(self, search: HybridSearch) -> None:
        hits = search.passages("zh-huawei", "能连两台设备吗")
        assert hits[0].unit_id == "zh-huawei#qa-1"

    def test_unknown_product_has_no_passages(self, search: HybridSearch) -> None:
        assert search.passages("nope", "anything") == []


class TestSimilarityFloor:
    def test_unrelated_vector_hits_are_left_out_of_product_search(
        self, store: EmbeddedStore, embedder: HashingEmbedder
    ) -> None:
        loose = HybridSearch(store, embedder)
        strict = HybridSearch(store, embedder, config=SearchConfig(min_similarity=0.2))
        assert len(loose.search("skillet").hits) == 9  # kNN returns every product
        assert [h.product.id for h in strict.search("skillet").hits] == ["pan-lodge"]

    def test_passages_of_the_product_are_all_ranked(
        self, store: EmbeddedStore, embedder: HashingEmbedder
    ) -> None:
        strict = HybridSearch(store, embedder, config=SearchConfig(min_similarity=0.99))
        hits = strict.passages("hp-sony", "fold")
        assert len(hits) == 5  # description, attributes, 2 reviews, 1 Q&A


def test_a_store_failure_reaches_the_caller_as_the_store_error(
    search: HybridSearch, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not as Haystack's PipelineRuntimeError, so the API can answer 503."""

    def down(*_: object, **__: object) -> None:
        raise StoreUnavailable("the store at http://x cannot be reached")

    monkeypatch.setattr(search.store, "hybrid", down)
    with pytest.raises(StoreUnavailable, match="cannot be reached"):
        search.search("headphones")


def test_cjk_queries_can_leave_the_vector_side_out(
    store: EmbeddedStore, embedder: HashingEmbedder
) -> None:
    """With an English-only embedder, a Chinese query is ranked by BM25 alone."""
    both = HybridSearch(store, embedder, config=SearchConfig(min_similarity=-1.0))
    routed = HybridSearch(
        store, embedder, config=SearchConfig(min_similarity=-1.0, cjk_weights={"semantic": 0.0})
    )
    mixed = both.search("降噪耳机")
    assert any("semantic" in h.hit.explanation.retrievers for h in mixed.hits)
    lexical_only = routed.search("降噪耳机")
    assert [h.product.id for h in lexical_only.hits][:1] == ["zh-huawei"]
    assert all(set(h.hit.explanation.retrievers) == {"lexical"} for h in lexical_only.hits)
    english = routed.search("noise cancelling headphones")  # English keeps both sides
    assert any("semantic" in h.hit.explanation.retrievers for h in english.hits)


class CountingEmbedder(HashingEmbedder):
    """The hashing embedder, counting the queries it embeds."""

    def __init__(self) -> None:
        super().__init__()
        self.queries: list[str] = []

    def embed_query(self, text: str) -> np.ndarray:
        self.queries.append(text)
        return super().embed_query(text)


def test_a_query_with_semantic_weight_0_is_not_embedded(store: EmbeddedStore) -> None:
    embedder = CountingEmbedder()
    routed = HybridSearch(store, embedder, config=SearchConfig(cjk_weights={"semantic": 0.0}))
    result = routed.search("降噪耳机")
    assert result.hits and embedder.queries == []
    assert result.timings_ms["embedder"] < 1.0
    routed.search("noise cancelling headphones")
    assert embedder.queries == ["noise cancelling headphones"]


def _state(documents: list[Document]) -> list[tuple[object, ...]]:
    """What the documents hold, copied (deepcopy hands shared documents back as they are)."""
    return [(d.id, d.content, d.score, copy.deepcopy(d.meta)) for d in documents]


def test_components_do_not_change_the_documents_they_are_given(
    store: EmbeddedStore, embedder: HashingEmbedder
) -> None:
    """Documents are passed between components without Haystack's copy: they must stay as
    they were when a component re-scores or merges them."""
    search = HybridSearch(
        store, embedder, reranker=KeywordReranker("anker"), config=SearchConfig(rerank_depth=3)
    )
    vector = embedder.embed_query("anker headphones")
    retrieved = search.pipeline.get_component("retriever").run(
        query="anker headphones", query_embedding=vector, kinds=("product",), top_k=10
    )
    before = [_state(retrieved["lexical"]), _state(retrieved["semantic"])]
    joined = search.pipeline.get_component("joiner").run(
        lexical=retrieved["lexical"], semantic=retrieved["semantic"]
    )
    fused = _state(joined["documents"])
    ranked = search.pipeline.get_component("ranker").run(
        query="anker headphones", documents=joined["documents"]
    )
    assert [_state(retrieved["lexical"]), _state(retrieved["semantic"])] == before
    assert _state(joined["documents"]) == fused
    assert ranked["documents"][0].meta["rerank_score"] > 0
    assert all("rerank_score" not in d.meta for d in joined["documents"])


class _ConceptEmbedder:
    """A stand-in for a multilingual model: headphones and pans, in either language, map to
    the directions of `tests.retrieval.store_contract.CROSS`."""

    name = CROSS_MODEL
    dim = 4

    def warm_up(self) -> None:
        pass

    def embed_query(self, text: str) -> np.ndarray:
        if "耳机" in text or "headphones" in text:
            return np.array([1.0, 0.0, 0.0, 0.0], np.float32)
        if "锅" in text or "skillet" in text:
            return np.array([0.0, 0.0, 1.0, 0.0], np.float32)
        return np.array([0.0, 1.0, 1.0, 1.0], np.float32)

    def embed_documents(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        return np.vstack([self.embed_query(t) for t in texts])


@pytest.fixture
def bilingual(tmp_path: Path, embedder: HashingEmbedder) -> HybridSearch:
    """English and Chinese headphones and pans, with a cross-lingual space."""
    store = EmbeddedStore(tmp_path / "bilingual")
    write_crosslingual(store, embedder)
    config = SearchConfig(
        weights={"lexical": 1.0, "semantic": 1.0, "crosslingual": 0.5},
        cjk_weights={"semantic": 0.0},
        min_similarity=0.2,
        cross_min_similarity=0.3,
        weak_match=WeakMatch(coverage=0.5, factor=1.0),
    )
    return HybridSearch(store, embedder, config=config, cross_embedder=_ConceptEmbedder())


class TestCrossLingual:
    def test_a_chinese_query_finds_the_english_product_after_its_own_language(
        self, bilingual: HybridSearch
    ) -> None:
        result = bilingual.search("降噪耳机", rerank=False)
        ids = [hit.product.id for hit in result.hits]
        assert ids == ["zh-hp", "en-hp"]  # en-pan is below the cross-lingual floor
        assert set(result.hits[1].hit.explanation.retrievers) == {"crosslingual"}
        assert "found by crosslingual #1" in result.hits[1].hit.explanation.summary()
        assert result.timings_ms["crosslingual"] >= 0

    def test_an_english_query_finds_the_chinese_product(self, bilingual: HybridSearch) -> None:
        ids = [hit.product.id for hit in bilingual.search("skillet", rerank=False).hits]
        assert ids[0] == "en-pan"
        assert "zh-pan" in ids and "zh-hp" not in ids

    def test_weight_0_neither_embeds_nor_searches(self, bilingual: HybridSearch) -> None:
        bilingual.config = replace(
            bilingual.config, weights={**bilingual.config.weights, "crosslingual": 0.0}
        )
        result = bilingual.search("降噪耳机", rerank=False)
        assert [hit.product.id for hit in result.hits] == ["zh-hp"]
        assert result.timings_ms["cross_embedder"] < 1


class TestWeakMatch:
    """The cross-lingual weight of a query its own language matches weakly (`WeakMatch`)."""

    def test_a_weakly_matched_query_weighs_the_other_language_more(
        self, bilingual: HybridSearch
    ) -> None:
        # one of three words in the English title: the shopper's words are not the catalog's
        result = bilingual.search("wireless earbuds headphones", rerank=False)
        assert result.fusion is not None
        assert result.fusion.lexical_coverage == pytest.approx(1 / 3)
        assert result.fusion.weights["crosslingual"] == 2.0  # lexical + semantic
        # interleaved: the English product is first in both of its lists, the Chinese one in
        # the cross-lingual list; equal scores go to the earlier list
        assert [hit.product.id for hit in result.hits][:2] == ["en-hp", "zh-hp"]
        assert result.hits[0].hit.score == pytest.approx(result.hits[1].hit.score)
        rule = WeakMatch(coverage=0.5, factor=2.0)
        bilingual.config = replace(bilingual.config, weak_match=rule)
        result = bilingual.search("wireless earbuds headphones", rerank=False)
        assert [hit.product.id for hit in result.hits][:2] == ["zh-hp", "en-hp"]

        bilingual.config = replace(bilingual.config, weak_match=None)
        result = bilingual.search("wireless earbuds headphones", rerank=False)
        assert result.fusion is not None and result.fusion.lexical_coverage is None
        assert result.fusion.weights["crosslingual"] == 0.5
        assert [hit.product.id for hit in result.hits][:2] == ["en-hp", "zh-hp"]
        assert result.hits[0].hit.score > result.hits[1].hit.score

    def test_a_well_matched_query_keeps_the_configured_weight(
        self, bilingual: HybridSearch
    ) -> None:
        result = bilingual.search("noise cancelling headphones", rerank=False)
        assert result.fusion is not None
        assert result.fusion.lexical_coverage == 1.0
        assert result.fusion.weights["crosslingual"] == 0.5
        assert result.hits[0].product.id == "en-hp"

    def test_a_chinese_query_without_the_semantic_list_weighs_as_its_lexical_list(
        self, bilingual: HybridSearch
    ) -> None:
        # 耳机 is the only one of the query's five bigrams in the Chinese title
        result = bilingual.search("蓝牙运动耳机", rerank=False)
        assert result.fusion is not None
        assert result.fusion.lexical_coverage == pytest.approx(1 / 5)
        assert result.fusion.weights == {"lexical": 1.0, "semantic": 0.0, "crosslingual": 1.0}
        # at equal weights the query's own language keeps the first place
        assert [hit.product.id for hit in result.hits] == ["zh-hp", "en-hp"]

    def test_cross_lingual_search_off_stays_off(self, bilingual: HybridSearch) -> None:
        bilingual.config = replace(
            bilingual.config, weights={**bilingual.config.weights, "crosslingual": 0.0}
        )
        result = bilingual.search("wireless earbuds headphones", rerank=False)
        assert [hit.product.id for hit in result.hits] == ["en-hp"]
        assert result.fusion is not None and result.fusion.weights["crosslingual"] == 0.0
