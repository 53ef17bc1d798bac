"""Embedder wrappers the benchmarks share."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import numpy as np

from retrieval.embedders.base import Embedder

logger = logging.getLogger(__name__)


class MemoEmbedder:
    """An `Embedder` that embeds each distinct document text once and remembers its vector, so
    several indexes (stores, the textbook peer) share one embedding pass. Queries are always
    embedded afresh. ``embedded`` counts the texts the model computed; with ``log_every_s``
    progress is logged, also when no terminal shows a bar."""

    def __init__(self, embedder: Embedder, *, log_every_s: float | None = None) -> None:
        self.embedder = embedder
        self.log_every_s = log_every_s
        self.embedded = 0
        self._vectors: dict[str, np.ndarray] = {}
        self._started = self._shown = time.perf_counter()

    @property
    def name(self) -> str:
        """The wrapped model's name."""
        return self.embedder.name

    @property
    def dim(self) -> int:
        """The wrapped model's vector size."""
        return self.embedder.dim

    def warm_up(self) -> None:
        """Load the wrapped model."""
        self.embedder.warm_up()
        self._started = self._shown = time.perf_counter()

    def embed_documents(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """Vectors of texts seen before come from memory; the rest from the model."""
        missing = [t for t in dict.fromkeys(texts) if t not in self._vectors]
        if missing:
            vectors = self.embedder.embed_documents(missing, progress=progress)
            self._vectors.update(zip(missing, np.asarray(vectors, np.float32), strict=True))
            self.embedded += len(missing)
            self._log_progress()
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return np.vstack([self._vectors[t] for t in texts])

    def embed_query(self, text: str) -> np.ndarray:
        """The wrapped model's query vector."""
        return np.asarray(self.embedder.embed_query(text), np.float32)

    def _log_progress(self) -> None:
        now = time.perf_counter()
        if self.log_every_s is None or now - self._shown < self.log_every_s:
            return
        self._shown = now
        rate = self.embedded / max(now - self._started, 1e-9)
        logger.info("%d texts embedded, %.1f/s", self.embedded, rate)
