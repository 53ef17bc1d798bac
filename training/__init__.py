"""Adapting a cross-encoder re-ranker to a shop's own catalog, without human labels.

Synthetic shopper queries are built from each product's structure (`queries`, optionally an LLM:
`llm_queries`); the unit a query was built from is its positive, and hard negatives come from the
project's own hybrid search (`negatives`). `cross_encoder` trains a `sentence_transformers`
CrossEncoder on those pairs and `adapt` runs the whole job and writes its manifest.

Dependencies: `training` uses `indexer`, `retrieval` and `generation`; only `app` uses it.
"""

import retrieval  # noqa: F401  (first: it switches Haystack's telemetry off before Haystack loads)
