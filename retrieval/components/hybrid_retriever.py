"""Pipeline component: BM25 and vector search with the same filters, on any `DocumentStore`."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import numpy as np
from haystack import Document, component

from retrieval.components.documents import to_documents
from retrieval.schema import Filters, UnitKind
from retrieval.stores.base import CJK_CHARS, DocumentStore

DEFAULT_BOOSTS: Mapping[str, float] = {
    "title": 3.0,
    "brand": 2.0,
    "category": 1.5,
    "attributes": 1.0,
    "description": 0.5,
    "body": 1.0,
    # Single Chinese characters against words and bigrams: chosen on Multi-CPR dev queries from
    # 0-16 (BENCHMARKS.md, "Chinese characters as a field of their own").
    CJK_CHARS: 4.0,
}


@component
class StoreHybridRetriever:
    """Runs BM25 (fields weighted by ``boosts``) and kNN in one store call, filters inside both.
    Without a query embedding, only BM25 runs.

    With ``min_similarity`` set (and ``similarity_floor`` on for the call), vector hits less
    similar than that are left out, so that a query's unrelated neighbours do not fill the list.
    """

    def __init__(
        self,
        store: DocumentStore,
        *,
        top_k: int = 100,
        boosts: Mapping[str, float] | None = None,
        min_similarity: float | None = None,
    ) -> None:
        self.store = store
        self.top_k = top_k
        self.boosts = dict(boosts or DEFAULT_BOOSTS)
        self.min_similarity = min_similarity

    @component.output_types(lexical=list[Document], semantic=list[Document], took_ms=float)
    def run(
        self,
        query: str,
        query_embedding: np.ndarray | None,
        kinds: Sequence[UnitKind],
        filters: Filters | None = None,
        top_k: int | None = None,
        similarity_floor: bool = True,
    ) -> dict[str, object]:
        """The best ``top_k`` units of the given kinds from each retriever."""
        start = time.perf_counter()
        lexical, semantic = self.store.hybrid(
            query,
            query_embedding,
            kinds=kinds,
            filters=filters,
            top_k=top_k or self.top_k,
            boosts=self.boosts,
        )
        if self.min_similarity is not None and similarity_floor:
            semantic = [hit for hit in semantic if hit.score >= self.min_similarity]
        return {
            "lexical": to_documents(lexical, "lexical"),
            "semantic": to_documents(semantic, "semantic"),
            "took_ms": (time.perf_counter() - start) * 1000,
        }
