"""Pipeline component: the chat prompt from a question and numbered sources."""

from __future__ import annotations

from typing import Literal

from haystack import component

from generation.llm.base import ChatMessage
from generation.prompts import Source, advice_messages, ask_messages


@component
class SourcesPromptBuilder:
    """Builds the advice prompt (product sources) or the ask prompt (passage sources)."""

    def __init__(self, mode: Literal["advice", "ask"]) -> None:
        if mode not in ("advice", "ask"):
            msg = f"mode must be 'advice' or 'ask', got {mode!r}"
            raise ValueError(msg)
        self.mode = mode

    @component.output_types(messages=list[ChatMessage])
    def run(self, question: str, sources: list[Source]) -> dict[str, object]:
        """The messages for the model."""
        build = advice_messages if self.mode == "advice" else ask_messages
        return {"messages": build(question, sources)}
