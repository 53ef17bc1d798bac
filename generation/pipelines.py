"""The answer pipeline, built in one place:

question, sources ─▶ prompt builder ─▶ generator (LLM) ─▶ citation checker ─▶ answer
                          └── grammar ──────┘
"""

from __future__ import annotations

from typing import Literal

from haystack import Pipeline

from generation.components.citation_checker import CitationChecker
from generation.components.llm_generator import LLMGenerator
from generation.components.prompt_builder import SourcesPromptBuilder
from generation.llm.base import LLM, GenerationOptions


def build_answer_pipeline(
    llm: LLM,
    mode: Literal["advice", "ask"],
    options: GenerationOptions | None = None,
    *,
    constrained: bool = True,
) -> Pipeline:
    """Prompt → LLM → citation check, for advice or for questions about one product; with
    ``constrained``, decoding follows the claims grammar where the backend supports it."""
    pipeline = Pipeline()
    pipeline.add_component("prompt", SourcesPromptBuilder(mode, constrained=constrained))
    pipeline.add_component("generator", LLMGenerator(llm, options))
    pipeline.add_component("citations", CitationChecker())
    pipeline.connect("prompt.messages", "generator.messages")
    pipeline.connect("prompt.grammar", "generator.grammar")
    pipeline.connect("generator.reply", "citations.reply")
    return pipeline
