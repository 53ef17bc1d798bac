"""Pipeline component: dense nearest-neighbour search with filters, on any `DocumentStore`."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
from haystack import Document, component

from retrieval.components.documents import to_documents
from retrieval.schema import Filters, UnitKind
from retrieval.stores.base import DocumentStore


@component
class StoreSemanticRetriever:
    """kNN by cosine similarity; filters apply inside the search, not after it."""

    def __init__(
        self, store: DocumentStore, *, top_k: int = 100, min_similarity: float | None = None
    ) -> None:
        self.store = store
        self.top_k = top_k
        self.min_similarity = min_similarity

    @component.output_types(documents=list[Document], took_ms=float)
    def run(
        self,
        query_embedding: np.ndarray,
        kinds: Sequence[UnitKind],
        filters: Filters | None = None,
        top_k: int | None = None,
        similarity_floor: bool = True,
    ) -> dict[str, object]:
        """The ``top_k`` units of the given kinds nearest to the query vector.

        With ``min_similarity`` set (and ``similarity_floor`` on), units less similar than that
        are left out, so that a query's unrelated neighbours do not fill the list.
        """
        start = time.perf_counter()
        found = self.store.semantic(
            query_embedding, kinds=kinds, filters=filters, top_k=top_k or self.top_k
        )
        if self.min_similarity is not None and similarity_floor:
            found = [hit for hit in found if hit.score >= self.min_similarity]
        return {
            "documents": to_documents(found, "semantic"),
            "took_ms": (time.perf_counter() - start) * 1000,
        }
