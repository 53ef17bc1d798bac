"""Pipeline component: the chat prompt from a question and numbered sources."""

from __future__ import annotations

from typing import Literal

from haystack import component

from generation.grammar import claims_grammar
from generation.llm.base import ChatMessage
from generation.prompts import ABSTAIN_MARKER, Source, advice_messages, ask_messages


@component
class SourcesPromptBuilder:
    """Builds the advice prompt (product sources) or the ask prompt (passage sources) and, when
    ``constrained``, the decoding grammar that lets the reply cite only these sources."""

    def __init__(self, mode: Literal["advice", "ask"], *, constrained: bool = True) -> None:
        if mode not in ("advice", "ask"):
            msg = f"mode must be 'advice' or 'ask', got {mode!r}"
            raise ValueError(msg)
        self.mode = mode
        self.constrained = constrained

    @component.output_types(messages=list[ChatMessage], grammar=str | None)
    def run(self, question: str, sources: list[Source]) -> dict[str, object]:
        """The messages for the model, and the grammar (None when unconstrained)."""
        build = advice_messages if self.mode == "advice" else ask_messages
        grammar = None
        if self.constrained and sources:
            grammar = claims_grammar([s.number for s in sources], abstain_marker=ABSTAIN_MARKER)
        return {"messages": build(question, sources), "grammar": grammar}
