"""Pipeline component: reciprocal rank fusion of the lexical, semantic and cross-lingual lists."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from haystack import Document, component

from retrieval.components.documents import SharedDocument
from retrieval.fusion import reciprocal_rank_fusion


@component
class RRFJoiner:
    """Fuses the ranked lists with RRF (constant ``k``, a weight per list).

    A document found by both keeps the evidence of both in ``meta["retrieval"]``; its score
    becomes the fused score (also in ``meta["fused_score"]``).
    """

    def __init__(self, *, k: float = 60.0, weights: Mapping[str, float] | None = None) -> None:
        if k <= 0:
            msg = f"the RRF constant k must be positive, got {k}"
            raise ValueError(msg)
        self.k = k
        self.weights = dict(weights or {"lexical": 1.0, "semantic": 1.0})

    @component.output_types(documents=list[Document], took_ms=float)
    def run(
        self,
        lexical: list[Document],
        semantic: list[Document],
        crosslingual: list[Document] | None = None,
        top_k: int | None = None,
        weights: dict[str, float] | None = None,
    ) -> dict[str, object]:
        """One fused list, best first, at most ``top_k`` long; ``weights`` overrides the
        configured weights for this query. A list with weight 0 contributes nothing."""
        start = time.perf_counter()
        weights = self.weights if weights is None else weights
        lists = {
            name: documents
            for name, documents in (
                ("lexical", lexical),
                ("semantic", semantic),
                ("crosslingual", crosslingual or []),
            )
            if weights.get(name, 1.0) != 0  # off for this query: neither ranks nor explains
        }
        by_id: dict[str, Document] = {}
        evidence: dict[str, dict[str, Any]] = {}
        for document in [d for documents in lists.values() for d in documents]:
            by_id.setdefault(document.id, document)
            evidence.setdefault(document.id, {}).update(document.meta.get("retrieval", {}))
        fused = reciprocal_rank_fusion(
            {name: [d.id for d in documents] for name, documents in lists.items()},
            k=self.k,
            weights=weights,
        )
        if top_k is not None:
            fused = fused[:top_k]
        documents = []
        for doc_id, score in fused:
            original = by_id[doc_id]
            meta = {**original.meta, "retrieval": evidence[doc_id], "fused_score": score}
            documents.append(
                SharedDocument(id=doc_id, content=original.content, score=score, meta=meta)
            )
        return {"documents": documents, "took_ms": (time.perf_counter() - start) * 1000}
