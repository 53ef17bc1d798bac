"""The retrieval pipelines, built in one place so the graph can be read at a glance.

text ─▶ embedder ─▶ semantic ──────────┐
text ─────────────▶ lexical ───────────┼▶ joiner (RRF) ─▶ ranker (with a re-ranker) ─▶ documents
text ─▶ cross_embedder ─▶ crosslingual ┘  (with a cross-lingual embedder)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from haystack import Pipeline
from haystack.core.errors import PipelineRuntimeError

from retrieval.components.crosslingual_retriever import CrossLingualRetriever
from retrieval.components.hybrid_retriever import StoreHybridRetriever
from retrieval.components.query_embedder import QueryEmbedder
from retrieval.components.reranker import DocumentReranker
from retrieval.components.rrf_joiner import RRFJoiner
from retrieval.embedders.base import Embedder
from retrieval.rankers.base import Reranker
from retrieval.stores.base import DocumentStore


def run_pipeline(pipeline: Pipeline, data: dict[str, Any], **options: Any) -> dict[str, Any]:
    """``pipeline.run``, raising a component's own error (a `StoreUnavailable`, say) rather
    than Haystack's `PipelineRuntimeError` around it, so callers can tell failures apart."""
    try:
        return pipeline.run(data, **options)
    except PipelineRuntimeError as exc:
        cause: BaseException = exc
        while isinstance(cause, PipelineRuntimeError) and cause.__cause__ is not None:
            cause = cause.__cause__
        if cause is exc:
            raise
        raise cause  # noqa: B904 - its own __cause__ (the client error, say) stays as it was


def build_hybrid_pipeline(
    store: DocumentStore,
    embedder: Embedder,
    reranker: Reranker | None,
    *,
    rrf_k: float = 60.0,
    weights: Mapping[str, float] | None = None,
    boosts: Mapping[str, float] | None = None,
    rerank_depth: int = 20,
    rerank_hybrid_weight: float = 1.0,
    min_similarity: float | None = None,
    cross_embedder: Embedder | None = None,
    cross_min_similarity: float | None = None,
) -> Pipeline:
    """Hybrid retrieval (BM25 + kNN, and cross-lingual kNN with a ``cross_embedder``, fused by
    RRF), then the re-ranker if there is one."""
    pipeline = Pipeline()
    pipeline.add_component("embedder", QueryEmbedder(embedder))
    pipeline.add_component(
        "retriever", StoreHybridRetriever(store, boosts=boosts, min_similarity=min_similarity)
    )
    pipeline.add_component("joiner", RRFJoiner(k=rrf_k, weights=weights))
    pipeline.connect("embedder.embedding", "retriever.query_embedding")
    pipeline.connect("retriever.lexical", "joiner.lexical")
    pipeline.connect("retriever.semantic", "joiner.semantic")
    if cross_embedder is not None:
        pipeline.add_component("cross_embedder", QueryEmbedder(cross_embedder))
        pipeline.add_component(
            "crosslingual",
            CrossLingualRetriever(store, cross_embedder.name, min_similarity=cross_min_similarity),
        )
        pipeline.connect("cross_embedder.embedding", "crosslingual.query_embedding")
        pipeline.connect("crosslingual.crosslingual", "joiner.crosslingual")
    if reranker is not None:
        pipeline.add_component(
            "ranker",
            DocumentReranker(
                reranker, depth=rerank_depth, hybrid_weight=rerank_hybrid_weight, rrf_k=rrf_k
            ),
        )
        pipeline.connect("joiner.documents", "ranker.documents")
    return pipeline
