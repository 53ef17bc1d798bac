"""Pipeline component: BM25 with field boosts and filters, on any `DocumentStore`."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from haystack import Document, component

from retrieval.components.documents import to_documents
from retrieval.schema import Filters, UnitKind
from retrieval.stores.base import DocumentStore

DEFAULT_BOOSTS: Mapping[str, float] = {
    "title": 3.0,
    "brand": 2.0,
    "category": 1.5,
    "attributes": 1.0,
    "description": 0.5,
    "body": 1.0,
}


@component
class StoreLexicalRetriever:
    """BM25 over the store's text fields, each weighted by its boost; filters apply inside."""

    def __init__(
        self,
        store: DocumentStore,
        *,
        top_k: int = 100,
        boosts: Mapping[str, float] | None = None,
    ) -> None:
        self.store = store
        self.top_k = top_k
        self.boosts = dict(boosts or DEFAULT_BOOSTS)

    @component.output_types(documents=list[Document], took_ms=float)
    def run(
        self,
        query: str,
        kinds: Sequence[UnitKind],
        filters: Filters | None = None,
        top_k: int | None = None,
    ) -> dict[str, object]:
        """The best ``top_k`` units of the given kinds for ``query``."""
        start = time.perf_counter()
        found = self.store.lexical(
            query, kinds=kinds, filters=filters, top_k=top_k or self.top_k, boosts=self.boosts
        )
        return {
            "documents": to_documents(found, "lexical"),
            "took_ms": (time.perf_counter() - start) * 1000,
        }
