"""The interface of re-rankers: score (query, text) pairs, higher is more relevant."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class Reranker(Protocol):
    """Scores how well each text answers the query."""

    @property
    def name(self) -> str:
        """A stable name of the model."""
        ...

    def warm_up(self) -> None:
        """Load the model; idempotent."""
        ...

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        """One score per text, in the order given."""
        ...
