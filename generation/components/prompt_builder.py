"""Pipeline component: the chat prompt from a question and numbered sources."""

from __future__ import annotations

from typing import Literal

from haystack import component

from generation.llm.base import ChatMessage
from generation.prompts import ABSTAIN_MARKER, Source, advice_messages, ask_messages
from generation.quotes import quotes_grammar
from retrieval.text import has_cjk


@component
class SourcesPromptBuilder:
    """Builds the advice prompt (product sources) or the ask prompt (passage sources) and, when
    ``constrained``, the decoding grammar that lets the reply quote only these sources' own
    statements, in the question's language (`generation.quotes`)."""

    def __init__(
        self, mode: Literal["advice", "ask"], *, constrained: bool = True, max_claims: int = 3
    ) -> None:
        if mode not in ("advice", "ask"):
            msg = f"mode must be 'advice' or 'ask', got {mode!r}"
            raise ValueError(msg)
        self.mode = mode
        self.constrained = constrained
        self.max_claims = max_claims

    @component.output_types(messages=list[ChatMessage], grammar=str | None)
    def run(self, question: str, sources: list[Source]) -> dict[str, object]:
        """The messages for the model, and the grammar (None when unconstrained)."""
        build = advice_messages if self.mode == "advice" else ask_messages
        grammar = None
        if self.constrained and sources:
            grammar = quotes_grammar(
                {s.number: s.statements() for s in sources},
                # a question about one product always quotes its closest passage: the checks,
                # not the model's mood, say whether it answers
                abstain_marker=ABSTAIN_MARKER if self.mode == "advice" else None,
                chinese=has_cjk(question),
                max_claims=self.max_claims,
            )
        return {"messages": build(question, sources), "grammar": grammar}
