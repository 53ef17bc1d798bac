"""Pipeline component: kNN in the cross-lingual vector space, over the other script's units."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
from haystack import Document, component

from retrieval.components.documents import to_documents
from retrieval.schema import Filters, UnitKind
from retrieval.stores.base import DocumentStore
from retrieval.text import script_of


@component
class CrossLingualRetriever:
    """Finds the units written in another script than the query (English products for a
    Chinese query, Chinese ones for an English query) by a multilingual embedder's vectors.
    Units of the query's own script are left to the lexical and semantic retrievers, so a
    catalog in one language ranks exactly as without this retriever.

    With ``min_similarity`` set, hits less similar than that are left out."""

    def __init__(
        self,
        store: DocumentStore,
        model: str,
        *,
        top_k: int = 100,
        min_similarity: float | None = None,
    ) -> None:
        self.store = store
        self.model = model
        self.top_k = top_k
        self.min_similarity = min_similarity

    @component.output_types(crosslingual=list[Document], took_ms=float)
    def run(
        self,
        query: str,
        query_embedding: np.ndarray | None,
        kinds: Sequence[UnitKind],
        filters: Filters | None = None,
        top_k: int | None = None,
    ) -> dict[str, object]:
        """The best ``top_k`` units of the other script; none without an embedding."""
        start = time.perf_counter()
        found = []
        if query_embedding is not None:
            found = self.store.crosslingual(
                query_embedding,
                model=self.model,
                script=script_of(query),
                kinds=kinds,
                filters=filters,
                top_k=top_k or self.top_k,
            )
        if self.min_similarity is not None:
            found = [hit for hit in found if hit.score >= self.min_similarity]
        return {
            "crosslingual": to_documents(found, "crosslingual"),
            "took_ms": (time.perf_counter() - start) * 1000,
        }
