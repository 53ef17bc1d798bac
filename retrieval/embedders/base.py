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


# The tokens of a text a sentence-transformers embedder reads. MiniLM was trained on 128 and
# loses nothing on the relevance benchmarks against 256 (sentence-transformers' setting), while
# embedding catalog text 1.37x as fast (BENCHMARKS.md, issue 17).
DEFAULT_MAX_TOKENS = 128
UNNAMED_MAX_TOKENS = 256  # the limit names leave out: that of indexes built before the setting


def tokens_suffix(max_tokens: int | None) -> str:
    """What a token limit other than `UNNAMED_MAX_TOKENS` adds to the vectors' name."""
    if max_tokens is None or max_tokens == UNNAMED_MAX_TOKENS:
        return ""
    return f"@{max_tokens}-tokens"
