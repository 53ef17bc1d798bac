"""How well a product's passages can answer a question: the measure behind the evidence gate.

A passage holds several statements ("Up to 30 hours of battery; 3 minutes of charging gives 3
hours of playback. Multipoint pairing with two devices."), and its similarity to a question is
diluted by the statements about other things: "How long does the battery last?" is 0.34 from
that whole description and 0.71 from "Up to 30 hours of battery" (MiniLM). The evidence is
therefore the best cosine between the question and one statement of the passages retrieved for
it: a sentence, a clause between semicolons, or one attribute.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from retrieval.embedders.base import Embedder
from retrieval.search import Hit

__all__ = ["Statement", "evidence", "quotable", "scored_statements", "statements"]

# Sentence ends followed by a space, semicolons, and CJK sentence marks; also line breaks.
_BOUNDARY = re.compile(r"(?<=[.!?])\s+|[;；。！？!?\n]+")
_MIN_CHARS = 3
_MAX_STATEMENT_CHARS = 200
_CLAUSE = re.compile(r"[,，]\s*")


def statements(text: str) -> list[str]:
    """The statements of a passage, in order (a passage with one statement gives itself); a
    sentence longer than 200 characters is split at its commas."""
    parts: list[str] = []
    for part in (p.strip(" \t,，") for p in _BOUNDARY.split(text)):
        if len(part) <= _MAX_STATEMENT_CHARS:
            parts.append(part)
            continue
        begin = 0
        cuts = [m.end() for m in _CLAUSE.finditer(part)] + [len(part)]
        for previous, cut in zip([0, *cuts], cuts, strict=False):
            if cut - begin > _MAX_STATEMENT_CHARS and previous > begin:
                parts.append(part[begin:previous].strip(" ,，"))
                begin = previous
        parts.append(part[begin:].strip(" ,，"))
    return [p for p in parts if len(p) >= _MIN_CHARS] or [text]


_ASKED = re.compile(r"^\s*(?:Q|Question)\s*[:：-]|[?？]\s*$", re.IGNORECASE)


def quotable(statement: str) -> bool:
    """Whether a statement can support a claim: not a question (a Q&A's "Q: …", a sentence
    ending in "?"), which states nothing about the product."""
    return _ASKED.search(statement) is None


@dataclass(frozen=True)
class Statement:
    """One statement of a retrieved passage and its cosine similarity to the question."""

    hit: int  # the passage's position in the hits
    text: str
    score: float


def scored_statements(
    question: str, hits: Sequence[Hit], embedder: Embedder
) -> list[Statement] | None:
    """Every statement of ``hits`` with its similarity to ``question``, best first (None when
    none of them was scored by the vector retriever: a query routed around the embedder,
    whose similarity would be noise)."""
    if not any("semantic" in h.explanation.retrievers for h in hits):
        return None
    found = [(i, s) for i, h in enumerate(hits) for s in statements(h.text)]
    texts = list(dict.fromkeys(s for _, s in found))
    if not texts:
        return []
    vectors = np.asarray(embedder.embed_documents(texts), dtype=np.float32)
    scores = vectors @ np.asarray(embedder.embed_query(question), dtype=np.float32)
    by_text = dict(zip(texts, (float(v) for v in scores), strict=True))
    ranked = [Statement(i, s, by_text[s]) for i, s in found]
    return sorted(ranked, key=lambda s: -s.score)


def evidence(question: str, hits: Sequence[Hit], embedder: Embedder) -> float | None:
    """The best cosine similarity of ``question`` to one statement of ``hits`` (None when none
    of them was scored by the vector retriever)."""
    ranked = scored_statements(question, hits, embedder)
    return ranked[0].score if ranked else None
