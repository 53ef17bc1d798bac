"""The answer pipeline, built in one place:

question, sources ─▶ prompt builder ─▶ generator (LLM)
                          └── grammar ──────┘

Its reply is checked claim by claim as it streams (`generation.claims`).
"""

from __future__ import annotations

from typing import Literal

from haystack import Pipeline

from generation.components.llm_generator import LLMGenerator
from generation.components.prompt_builder import SourcesPromptBuilder
from generation.llm.base import LLM, GenerationOptions

MAX_CLAIMS = {"advice": 3, "ask": 2}


def build_answer_pipeline(
    llm: LLM,
    mode: Literal["advice", "ask"],
    options: GenerationOptions | None = None,
    *,
    constrained: bool = True,
) -> Pipeline:
    """Prompt → LLM, for advice or for questions about one product; with ``constrained``,
    decoding follows the quotes grammar where the backend supports it."""
    pipeline = Pipeline()
    pipeline.add_component(
        "prompt",
        SourcesPromptBuilder(mode, constrained=constrained, max_claims=MAX_CLAIMS[mode]),
    )
    pipeline.add_component("generator", LLMGenerator(llm, options))
    pipeline.connect("prompt.messages", "generator.messages")
    pipeline.connect("prompt.grammar", "generator.grammar")
    return pipeline
