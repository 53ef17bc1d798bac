"""Conversion between store results and Haystack `Document`s, and the explanation they carry.

Every document that flows through a retrieval pipeline has ``meta["product_id"]``,
``meta["kind"]`` and ``meta["retrieval"]``: for each retriever that found it, its rank, score
and (lexical) the matched terms per field.
"""

from __future__ import annotations

from typing import Any

from haystack import Document

from retrieval.stores.base import ScoredUnit


class SharedDocument(Document):
    """A `Document` that the pipeline's components pass on but never change: each component
    that re-scores or merges builds a new one. Haystack deep-copies every component's inputs
    (about 25 µs a document, most of a fast query's time); these documents are handed on as
    they are instead."""

    def __deepcopy__(self, memo: dict[int, Any]) -> SharedDocument:
        return self


def to_documents(found: list[ScoredUnit], retriever: str) -> list[Document]:
    """Haystack documents for a retriever's results, rank 1 first."""
    documents: list[Document] = []
    for rank, hit in enumerate(found, start=1):
        evidence: dict[str, Any] = {"rank": rank, "score": round(hit.score, 6)}
        if hit.matched:
            evidence["matched"] = {f: list(terms) for f, terms in hit.matched.items()}
        documents.append(
            SharedDocument(
                id=hit.unit.id,
                content=hit.unit.text,
                score=hit.score,
                meta={
                    "product_id": hit.unit.product_id,
                    "kind": hit.unit.kind,
                    "retrieval": {retriever: evidence},
                },
            )
        )
    return documents
