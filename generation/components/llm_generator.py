"""Pipeline component: run an `LLM` backend, optionally streaming each piece to a callback."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from haystack import component

from generation.llm.base import LLM, ChatMessage, GenerationOptions


@component
class LLMGenerator:
    """Generates the reply; measures time to first piece and the number of pieces."""

    def __init__(self, llm: LLM, options: GenerationOptions | None = None) -> None:
        self.llm = llm
        self.options = options or GenerationOptions()

    def warm_up(self) -> None:
        """Load the model."""
        self.llm.warm_up()

    @component.output_types(reply=str, first_token_ms=float, pieces=int, took_ms=float)
    def run(
        self,
        messages: list[ChatMessage],
        grammar: str | None = None,
        streaming_callback: Callable[[str], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> dict[str, object]:
        """The model's whole reply (following ``grammar`` where the backend can enforce it)."""
        start = time.perf_counter()
        first = None
        pieces: list[str] = []
        options = self.options if grammar is None else replace(self.options, grammar=grammar)
        for piece in self.llm.stream(messages, options, cancelled=cancelled):
            if first is None:
                first = (time.perf_counter() - start) * 1000
            pieces.append(piece)
            if streaming_callback is not None:
                streaming_callback(piece)
        took = (time.perf_counter() - start) * 1000
        return {
            "reply": "".join(pieces),
            "first_token_ms": first if first is not None else took,
            "pieces": len(pieces),
            "took_ms": took,
        }
