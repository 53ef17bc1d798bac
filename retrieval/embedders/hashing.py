"""A model-free embedder: hashed word and character n-grams, for tests and tiny set-ups."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from retrieval.text import normalize, tokenize


class HashingEmbedder:
    """Feature hashing of words and character trigrams into ``dim`` signed buckets.

    Deterministic and instant; similar strings get similar vectors, synonyms do not. It serves
    fast tests and machines without a model; the default is a real sentence-transformers model.
    """

    def __init__(self, dim: int = 256) -> None:
        if dim <= 0:
            msg = f"dim must be positive, got {dim}"
            raise ValueError(msg)
        self._dim = dim

    @property
    def name(self) -> str:
        """Model name recorded in the index."""
        return f"hashing-{self._dim}"

    @property
    def dim(self) -> int:
        """Vector size."""
        return self._dim

    def warm_up(self) -> None:
        """Nothing to load."""

    def _features(self, text: str) -> list[str]:
        words = tokenize(text)
        flat = normalize(text)
        grams = [flat[i : i + 3] for i in range(max(len(flat) - 2, 0))]
        return [f"w:{w}" for w in words] + [f"c:{g}" for g in grams if g.strip()]

    def _vector(self, text: str) -> np.ndarray:
        vector = np.zeros(self._dim, np.float32)
        for feature in self._features(text):
            digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
            bucket = int.from_bytes(digest[:4], "little") % self._dim
            vector[bucket] += 1.0 if digest[4] & 1 else -1.0
        norm = float(np.linalg.norm(vector))
        return vector / norm if norm else vector

    def embed_documents(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """One row per text."""
        if not texts:
            return np.zeros((0, self._dim), np.float32)
        return np.vstack([self._vector(t) for t in texts])

    def embed_query(self, text: str) -> np.ndarray:
        """One vector."""
        return self._vector(text)
