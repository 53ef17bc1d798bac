"""Re-ranker backed by a `sentence_transformers.CrossEncoder`."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from retrieval.models import resolve_model_source

if TYPE_CHECKING:
    from sentence_transformers import CrossEncoder


class CrossEncoderReranker:
    """A cross-encoder: hub name (``cross-encoder/ms-marco-MiniLM-L-6-v2``), local folder, or
    ``packaged:<name>``. A packaged bi-encoder folder loads with an untrained one-label head:
    real code path, no relevance skill until fine-tuned (see the README).

    Inputs are truncated to ``max_length`` tokens, or to the model's own maximum where that is
    shorter (a model adapted with ``shopguide adapt-reranker --max-length 192`` is served with
    the 192 tokens it was trained on)."""

    def __init__(
        self, model: str, *, device: str = "cpu", batch_size: int = 32, max_length: int = 256
    ) -> None:
        self.model = model
        self.device = device
        self.batch_size = batch_size
        self.max_length = max_length
        self._model: CrossEncoder | None = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        """The configured model name."""
        return self.model

    def warm_up(self) -> None:
        """Load the model once."""
        with self._lock:
            if self._model is None:
                from sentence_transformers import CrossEncoder

                model = CrossEncoder(
                    resolve_model_source(self.model), num_labels=1, device=self.device
                )
                own = model.max_seq_length
                model.max_seq_length = min(own, self.max_length) if own else self.max_length
                self._model = model

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        """One relevance score per text."""
        if not texts:
            return []
        if self._model is None:
            self.warm_up()
        assert self._model is not None
        scores = self._model.predict(
            [(query, text) for text in texts],
            batch_size=self.batch_size,
            show_progress_bar=False,
            convert_to_numpy=True,
        )
        return [float(s) for s in scores]
