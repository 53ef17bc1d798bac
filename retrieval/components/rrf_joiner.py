"""Pipeline component: reciprocal rank fusion of the lexical, semantic and cross-lingual lists."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from haystack import Document, component

from retrieval.components.documents import SharedDocument
from retrieval.fusion import WeakMatch, reciprocal_rank_fusion


@component
class RRFJoiner:
    """Fuses the ranked lists with RRF (constant ``k``, a weight per list).

    A document found by both keeps the evidence of both in ``meta["retrieval"]``; its score
    becomes the fused score (also in ``meta["fused_score"]``).

    Given a ``weak_match`` rule and the ``query``, a query that its best lexical hit covers
    weakly gets the rule's cross-lingual weight (`WeakMatch`). The weights used and that
    coverage come out with the documents.
    """

    def __init__(self, *, k: float = 60.0, weights: Mapping[str, float] | None = None) -> None:
        if k <= 0:
            msg = f"the RRF constant k must be positive, got {k}"
            raise ValueError(msg)
        self.k = k
        self.weights = dict(weights or {"lexical": 1.0, "semantic": 1.0})

    @component.output_types(
        documents=list[Document],
        weights=dict[str, float],
        lexical_coverage=float | None,
        took_ms=float,
    )
    def run(
        self,
        lexical: list[Document],
        semantic: list[Document],
        crosslingual: list[Document] | None = None,
        top_k: int | None = None,
        weights: dict[str, float] | None = None,
        query: str | None = None,
        weak_match: WeakMatch | None = None,
    ) -> dict[str, object]:
        """One fused list, best first, at most ``top_k`` long; ``weights`` overrides the
        configured weights for this query. A list with weight 0 contributes nothing."""
        start = time.perf_counter()
        used: Mapping[str, float] = self.weights if weights is None else weights
        share = None
        if weak_match is not None and query is not None and crosslingual is not None:
            best = lexical[0].content if lexical else None
            used, share = weak_match.weights(query, best, used)
        lists = {
            name: documents
            for name, documents in (
                ("lexical", lexical),
                ("semantic", semantic),
                ("crosslingual", crosslingual or []),
            )
            if used.get(name, 1.0) != 0  # off for this query: neither ranks nor explains
        }
        by_id: dict[str, Document] = {}
        evidence: dict[str, dict[str, Any]] = {}
        for document in [d for documents in lists.values() for d in documents]:
            by_id.setdefault(document.id, document)
            evidence.setdefault(document.id, {}).update(document.meta.get("retrieval", {}))
        fused = reciprocal_rank_fusion(
            {name: [d.id for d in documents] for name, documents in lists.items()},
            k=self.k,
            weights=used,
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
        return {
            "documents": documents,
            "weights": dict(used),
            "lexical_coverage": share,
            "took_ms": (time.perf_counter() - start) * 1000,
        }
