"""The interface of text embedders (bi-encoders)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np


class Embedder(Protocol):
    """Turns texts into unit-length vectors; queries and documents may be encoded differently."""

    @property
    def name(self) -> str:
        """A stable name of the model; the index records it."""
        ...

    @property
    def dim(self) -> int:
        """Vector size."""
        ...

    def warm_up(self) -> None:
        """Load the model; idempotent."""
        ...

    def embed_documents(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """One float32 row per text."""
        ...

    def embed_query(self, text: str) -> np.ndarray:
        """One float32 vector."""
        ...
