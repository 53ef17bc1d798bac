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

import numpy as np

from retrieval.embedders.base import Embedder
from retrieval.search import Hit

__all__ = ["evidence", "statements"]

# Sentence ends followed by a space, semicolons, and CJK sentence marks; also line breaks.
_BOUNDARY = re.compile(r"(?<=[.!?])\s+|[;；。！？!?\n]+")
_MIN_CHARS = 3


def statements(text: str) -> list[str]:
    """The statements of a passage, in order (a passage with one statement gives itself)."""
    parts = [p.strip(" \t,，") for p in _BOUNDARY.split(text)]
    return [p for p in parts if len(p) >= _MIN_CHARS] or [text]


def evidence(question: str, hits: Sequence[Hit], embedder: Embedder) -> float | None:
    """The best cosine similarity of ``question`` to one statement of ``hits`` (None when none
    of them was scored by the vector retriever: a query routed around the embedder, whose
    similarity would be noise)."""
    if not any("semantic" in h.explanation.retrievers for h in hits):
        return None
    texts = list(dict.fromkeys(s for h in hits for s in statements(h.text)))
    vectors = np.asarray(embedder.embed_documents(texts), dtype=np.float32)
    return float((vectors @ np.asarray(embedder.embed_query(question), dtype=np.float32)).max())
