"""Hybrid search over products and over one product's passages, with explanations."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from haystack import Document

from retrieval import text
from retrieval.components.hybrid_retriever import DEFAULT_BOOSTS
from retrieval.embedders.base import Embedder
from retrieval.fusion import WeakMatch
from retrieval.pipelines import build_hybrid_pipeline, run_pipeline
from retrieval.rankers.base import Reranker
from retrieval.schema import PASSAGE_KINDS, Filters, Product, Unit, UnitKind
from retrieval.stores.base import DocumentStore

STAGES = ("embedder", "retriever", "cross_embedder", "crosslingual", "joiner", "ranker")


@dataclass(frozen=True)
class SearchConfig:
    """Tuning of the retrieval stages."""

    candidates: int = 100
    rrf_k: float = 60.0
    # "crosslingual" weighs the cross-lingual list (with a cross-lingual embedder): 0.5 was the
    # largest weight that left same-language results as they were on dev queries (BENCHMARKS.md,
    # issue 18 second round).
    weights: Mapping[str, float] = field(
        default_factory=lambda: {"lexical": 1.0, "semantic": 1.0, "crosslingual": 0.5}
    )
    boosts: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_BOOSTS))
    rerank_depth: int = 20
    # The weight of the hybrid's own order when the re-ranker's order is fused with it by RRF
    # (0: the re-ranker's order alone).
    rerank_hybrid_weight: float = 1.0
    # Whether the re-ranker re-orders queries in Chinese, Japanese or Korean, and passage
    # searches (questions about products): only what it was trained for helps.
    rerank_cjk: bool = True
    rerank_passages: bool = True
    passage_candidates: int = 20
    min_similarity: float | None = None
    # Leave out cross-lingual hits less similar than this (cosine of the cross-lingual embedder).
    cross_min_similarity: float | None = None
    # The cross-lingual weight of a query its own language matches weakly (None: always
    # `weights`): chosen on dev queries (BENCHMARKS.md, issue 18 fourth round).
    weak_match: WeakMatch | None = field(default_factory=WeakMatch)
    # Fusion weights for queries with Chinese, Japanese or Korean characters (None: `weights`).
    # With an English-only embedder, {"semantic": 0} routes them around its noise.
    cjk_weights: Mapping[str, float] | None = None

    def weights_for(self, query: str) -> Mapping[str, float]:
        """The fusion weights for this query."""
        if self.cjk_weights is not None and text.has_cjk(query):
            return {**self.weights, **self.cjk_weights}
        return self.weights

    def reranks(self, query: str, *, passages: bool) -> bool:
        """Whether a re-ranker re-orders this query's results (product or passage search)."""
        if passages and not self.rerank_passages:
            return False
        return self.rerank_cjk or not text.has_cjk(query)


@dataclass(frozen=True)
class Explanation:
    """Why a result is where it is."""

    retrievers: dict[str, dict[str, Any]]
    matched_terms: dict[str, list[str]]
    fused_score: float
    rerank_score: float | None

    def summary(self) -> str:
        """One line a shopper can read."""
        found = " and ".join(
            f"{name} #{ev['rank']}" for name, ev in sorted(self.retrievers.items())
        )
        parts = [f"found by {found}"]
        if self.matched_terms:
            fields = "; ".join(f"{f}: {', '.join(t)}" for f, t in self.matched_terms.items())
            parts.append(f"matched {fields}")
        if self.rerank_score is not None:
            parts.append(f"re-ranked (score {self.rerank_score:.3f})")
        return ", ".join(parts)


@dataclass(frozen=True)
class Hit:
    """One ranked unit: a product (product search) or a passage (questions)."""

    unit_id: str
    product_id: str
    kind: UnitKind
    text: str
    score: float
    explanation: Explanation


@dataclass(frozen=True)
class Adjustment:
    """Why a result is not where relevance alone put it (personalization, diversity)."""

    relevance_rank: int  # 1-based, in the relevance order
    reasons: tuple[str, ...] = ()
    personal_score: float | None = None


@dataclass(frozen=True)
class ProductHit:
    """A product in a result page; ``adjustment`` is set when a `ResultPolicy` ranked it."""

    product: Product
    hit: Hit
    adjustment: Adjustment | None = None


class ResultPolicy(Protocol):
    """Re-orders the best ``depth`` results after relevance (personalization, diversity)."""

    depth: int

    def apply(self, hits: list[ProductHit], page_size: int) -> list[ProductHit]:
        """``hits`` (relevance order, at least the page) re-ordered; it may leave some out
        (near-duplicates) but never adds any."""
        ...


@dataclass(frozen=True)
class Fusion:
    """The weights that fused a query's lists, and the share of the query's terms its best
    lexical hit holds (None where no rule read it)."""

    weights: dict[str, float]
    lexical_coverage: float | None = None


@dataclass(frozen=True)
class SearchResult:
    """A page of products with what it took to find them."""

    query: str
    filters: Filters
    page: int
    size: int
    hits: list[ProductHit]
    candidates: int
    reranked: bool
    timings_ms: dict[str, float]
    # Whether a `ResultPolicy` re-ordered the results (the hits then carry `Adjustment`s).
    adjusted: bool = False
    # How the retrievers' lists were fused for this query.
    fusion: Fusion | None = None


def _hit(document: Document) -> Hit:
    retrieval = document.meta.get("retrieval", {})
    matched: dict[str, list[str]] = {}
    for evidence in retrieval.values():
        for field_name, terms in evidence.get("matched", {}).items():
            matched.setdefault(field_name, []).extend(terms)
    return Hit(
        unit_id=document.id,
        product_id=document.meta["product_id"],
        kind=document.meta["kind"],
        text=document.content or "",
        score=float(document.score or 0.0),
        explanation=Explanation(
            retrievers={
                name: {k: v for k, v in ev.items() if k != "matched"}
                for name, ev in retrieval.items()
            },
            matched_terms=matched,
            fused_score=float(document.meta.get("fused_score", 0.0)),
            rerank_score=document.meta.get("rerank_score"),
        ),
    )


class HybridSearch:
    """Product search and passage search through one Haystack hybrid pipeline."""

    def __init__(
        self,
        store: DocumentStore,
        embedder: Embedder,
        reranker: Reranker | None = None,
        config: SearchConfig | None = None,
        cross_embedder: Embedder | None = None,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.reranker = reranker
        self.cross_embedder = cross_embedder
        self.config = config or SearchConfig()
        options: dict[str, Any] = {
            "rrf_k": self.config.rrf_k,
            "weights": self.config.weights,
            "boosts": self.config.boosts,
            "rerank_depth": self.config.rerank_depth,
            "rerank_hybrid_weight": self.config.rerank_hybrid_weight,
            "min_similarity": self.config.min_similarity,
            "cross_embedder": cross_embedder,
            "cross_min_similarity": self.config.cross_min_similarity,
        }
        self.pipeline = build_hybrid_pipeline(store, embedder, reranker, **options)
        # Without re-ranking, a pipeline that ends at the joiner: no pass-through stage.
        self._unranked = (
            build_hybrid_pipeline(store, embedder, None, **options)
            if reranker is not None
            else self.pipeline
        )

    def warm_up(self) -> None:
        """Load every model of the pipeline."""
        self.pipeline.warm_up()
        self._unranked.warm_up()

    def reranks(self, query: str, *, passages: bool) -> bool:
        """Whether this search re-ranks ``query`` (a re-ranker exists and applies to it)."""
        return self.reranker is not None and self.config.reranks(query, passages=passages)

    def _run(
        self,
        query: str,
        *,
        kinds: Sequence[UnitKind],
        filters: Filters | None,
        top_k: int,
        rerank: bool,
        similarity_floor: bool = True,
    ) -> tuple[list[Document], dict[str, float], Fusion]:
        start = time.perf_counter()
        weights = self.config.weights_for(query)
        rerank = rerank and self.reranker is not None
        data: dict[str, dict[str, Any]] = {
            # a query whose semantic weight is 0 is neither embedded nor searched by kNN
            "embedder": {"text": query, "enabled": weights.get("semantic", 1.0) != 0},
            "retriever": {
                "query": query,
                "kinds": kinds,
                "filters": filters,
                "top_k": top_k,
                "similarity_floor": similarity_floor,
            },
            "joiner": {
                "top_k": top_k,
                "weights": weights,
                "query": query,
                "weak_match": self.config.weak_match,
            },
        }
        if self.cross_embedder is not None:
            # a query whose cross-lingual weight is 0 is not embedded by the second model
            data["cross_embedder"] = {"text": query, "enabled": weights.get("crosslingual", 0) != 0}
            data["crosslingual"] = {
                "query": query,
                "kinds": kinds,
                "filters": filters,
                "top_k": top_k,
            }
        if rerank:
            data["ranker"] = {"query": query}
        pipeline = self.pipeline if rerank else self._unranked
        result = run_pipeline(pipeline, data, include_outputs_from=set(data))
        timings = {stage: round(result.get(stage, {}).get("took_ms", 0.0), 3) for stage in STAGES}
        timings["total"] = round((time.perf_counter() - start) * 1000, 3)
        last = "ranker" if rerank else "joiner"
        joined = result["joiner"]
        fusion = Fusion(dict(joined["weights"]), joined["lexical_coverage"])
        return result[last]["documents"], timings, fusion

    def search(
        self,
        query: str,
        *,
        filters: Filters | None = None,
        page: int = 1,
        size: int = 10,
        rerank: bool = True,
        policy: ResultPolicy | None = None,
    ) -> SearchResult:
        """A page of products for ``query``; the fusion window always covers the page. A
        ``policy`` re-orders the best ``policy.depth`` (at least the page) after relevance."""
        if page < 1 or size < 1:
            msg = f"page and size must be at least 1, got page={page}, size={size}"
            raise ValueError(msg)
        filters = filters or Filters()
        window = max(self.config.candidates, page * size)
        rerank = rerank and self.reranks(query, passages=False)
        documents, timings, fusion = self._run(
            query, kinds=("product",), filters=filters, top_k=window, rerank=rerank
        )
        if policy is None:
            page_hits = self._products(
                [_hit(d) for d in documents[(page - 1) * size : page * size]]
            )
        else:
            started = time.perf_counter()
            head = max(policy.depth, page * size)
            ordered = policy.apply(self._products([_hit(d) for d in documents[:head]]), size)
            # near-duplicates the policy left out are replaced from below the head
            rest = self._products([_hit(d) for d in documents[head : head + size]])
            page_hits = (ordered + rest)[(page - 1) * size : page * size]
            timings["policy"] = round((time.perf_counter() - started) * 1000, 3)
        return SearchResult(
            query=query,
            filters=filters,
            page=page,
            size=size,
            hits=page_hits,
            candidates=len(documents),
            reranked=rerank,
            timings_ms=timings,
            adjusted=policy is not None,
            fusion=fusion,
        )

    def _products(self, hits: list[Hit]) -> list[ProductHit]:
        """The hits with their products (one round trip), in order; unknown ids left out."""
        products = self.store.get_products([hit.product_id for hit in hits])
        return [ProductHit(products[h.product_id], h) for h in hits if h.product_id in products]

    def passages(
        self,
        product_id: str | None,
        question: str,
        *,
        top_k: int = 5,
        rerank: bool = True,
    ) -> list[Hit]:
        """The product's passages that best answer ``question`` (``None``: every product's)."""
        documents, _, _ = self._run(
            question,
            kinds=PASSAGE_KINDS,
            filters=Filters(product_ids=[product_id]) if product_id is not None else None,
            top_k=max(self.config.passage_candidates, top_k),
            rerank=rerank and self.reranks(question, passages=True),
            similarity_floor=False,  # a product has few passages: rank them all
        )
        return [_hit(d) for d in documents[:top_k]]

    def units(self, product_id: str) -> list[Unit]:
        """All of a product's passages."""
        return self.store.get_units(product_id, PASSAGE_KINDS)
