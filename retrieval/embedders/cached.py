"""An embedder that keeps query vectors in a cache."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from retrieval.caches.base import Cache, cache_key
from retrieval.embedders.base import Embedder

logger = logging.getLogger(__name__)

_DTYPE = np.dtype("<f4")  # explicit byte order: workers on any machine share the entries


class CachedEmbedder:
    """Wraps an `Embedder`: query vectors come from ``cache`` when there, documents never do.

    Keys hold the model name, its size and the exact query text (the model sees the exact
    text, so no normalisation); an entry of the wrong length reads as a miss.
    """

    def __init__(self, embedder: Embedder, cache: Cache, *, ttl_s: float = 86400) -> None:
        self.embedder = embedder
        self.cache = cache
        self.ttl_s = ttl_s

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

    def embed_documents(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """Delegated: indexing embeds each text once anyway."""
        return self.embedder.embed_documents(texts, progress=progress)

    def embed_query(self, text: str) -> np.ndarray:
        """The cached vector for ``text``, or the model's (then cached)."""
        key = cache_key("embedding", model=self.name, dim=self.dim, text=text)
        cached = self.cache.get(key)
        if cached is not None:
            if len(cached) == self.dim * _DTYPE.itemsize:
                return np.frombuffer(cached, dtype=_DTYPE).astype(np.float32)
            logger.warning("ignoring a cached query vector of %d bytes", len(cached))
        vector = self.embedder.embed_query(text)
        self.cache.set(key, np.asarray(vector, dtype=_DTYPE).tobytes(), self.ttl_s)
        return vector
