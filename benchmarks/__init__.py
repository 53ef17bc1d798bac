"""Benchmark commands: relevance, tuning, load, indexing, the stack; each prints a table and
writes JSON to bench-results/."""

import retrieval  # noqa: F401  (first: it switches Haystack's telemetry off before Haystack loads)
