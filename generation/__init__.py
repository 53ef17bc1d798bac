"""Grounded answers: prompts, LLM backends, citations, constraints, answer pipelines."""

import retrieval  # noqa: F401  (first: it switches Haystack's telemetry off before Haystack loads)
