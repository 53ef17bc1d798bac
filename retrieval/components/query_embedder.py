"""Pipeline component: embed the query text."""

from __future__ import annotations

import time

import numpy as np
from haystack import component

from retrieval.embedders.base import Embedder


@component
class QueryEmbedder:
    """Turns the query into a vector with the same embedder the index was built with."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    def warm_up(self) -> None:
        """Load the model."""
        self.embedder.warm_up()

    @component.output_types(embedding=np.ndarray | None, took_ms=float)
    def run(self, text: str, enabled: bool = True) -> dict[str, object]:
        """Embed ``text``; with ``enabled=False`` (the query's semantic weight is 0) the
        embedding is None and the model is not run."""
        start = time.perf_counter()
        embedding = self.embedder.embed_query(text) if enabled else None
        return {"embedding": embedding, "took_ms": (time.perf_counter() - start) * 1000}
