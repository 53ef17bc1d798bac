"""The Elasticsearch document store: BM25 and kNN in one `_msearch`, one index per generation.

- `mapping`: index settings and mappings, the indexed documents, generations and version checks
- `queries`: the request bodies (lexical, kNN, filters, highlighting) and the reading of hits
- `writer`: `ElasticsearchWriter`, parallel ``_bulk`` requests, the alias swap on commit
- `store`: `ElasticsearchStore`, the reads and the index administration
- `errors`: client errors and error answers as `StoreUnavailable` / `StoreError`

Errors: the server unreachable, timing out or answering 429/503 raises `StoreUnavailable`
naming the URL; anything else Elasticsearch refuses raises `StoreError` with its reason.
With a circuit breaker (serving), such a failure opens it, and calls then raise `BreakerOpen`
(a `StoreUnavailable` with ``retry_after_s``) at once until one probe after the pause answers.
"""

from retrieval.stores.elasticsearch.mapping import (
    DEFAULT_URL,
    INDEX_FORMAT,
    TEXT_FIELDS,
    attribute_facets,
    category_prefixes,
    index_body,
    unit_document,
)
from retrieval.stores.elasticsearch.queries import filter_clauses
from retrieval.stores.elasticsearch.store import ElasticsearchStore
from retrieval.stores.elasticsearch.writer import ElasticsearchWriter

__all__ = [
    "DEFAULT_URL",
    "INDEX_FORMAT",
    "TEXT_FIELDS",
    "ElasticsearchStore",
    "ElasticsearchWriter",
    "attribute_facets",
    "category_prefixes",
    "filter_clauses",
    "index_body",
    "unit_document",
]
