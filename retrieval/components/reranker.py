"""Pipeline component: re-score the top of the fused list with a re-ranker."""

from __future__ import annotations

import time

from haystack import Document, component

from retrieval.components.documents import SharedDocument
from retrieval.rankers.base import Reranker


@component
class DocumentReranker:
    """Re-scores the first ``depth`` documents and puts them first, best first.

    Documents below the depth keep their fused order after the re-ranked block, so every page
    of a result list is stable. The pipeline has this stage only when re-ranking is asked for.
    """

    def __init__(self, reranker: Reranker, *, depth: int = 20) -> None:
        self.reranker = reranker
        self.depth = depth

    def warm_up(self) -> None:
        """Load the model."""
        self.reranker.warm_up()

    @component.output_types(documents=list[Document], took_ms=float)
    def run(
        self,
        query: str,
        documents: list[Document],
        depth: int | None = None,
    ) -> dict[str, object]:
        """The documents, the top ``depth`` re-ordered by the re-ranker's score."""
        start = time.perf_counter()
        if not documents:
            return {"documents": documents, "took_ms": 0.0}
        depth = depth or self.depth
        head, tail = documents[:depth], documents[depth:]
        scores = self.reranker.score(query, [d.content or "" for d in head])
        rescored = []
        for document, score in zip(head, scores, strict=True):
            meta = {**document.meta, "rerank_score": score}
            rescored.append(
                SharedDocument(id=document.id, content=document.content, score=score, meta=meta)
            )
        order = sorted(range(len(rescored)), key=lambda i: (-scores[i], i))
        return {
            "documents": [rescored[i] for i in order] + tail,
            "took_ms": (time.perf_counter() - start) * 1000,
        }
