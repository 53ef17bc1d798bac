"""Request bodies (pure functions: no client, no network) and the reading of their hits.

Lexical search is a ``multi_match`` (``most_fields``) over the boosted text fields and, for a
query with CJK characters, their ``.cjk`` (bigrams) and ``.chars`` (characters) sub-fields, with
the unified highlighter marking the matched terms; semantic search is a filtered ``knn``, and
cross-lingual search one on ``cross_embedding`` among the units of the other script. All carry
the same ``bool.filter`` clauses, so filters apply inside the search, before top-k.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from retrieval.schema import Filters, Unit, UnitKind
from retrieval.stores.base import CJK_CHARS, ScoredUnit, StoreError
from retrieval.stores.elasticsearch.mapping import TEXT_FIELDS, category_prefixes
from retrieval.text import Script

MAX_WINDOW = 10_000  # index.max_result_window and the kNN num_candidates ceiling
HIT_SOURCE = ["unit_id", "product_id", "kind", "text", *TEXT_FIELDS.values()]
_BASE_FIELD = {es: name for name, es in TEXT_FIELDS.items()}
_CHARS = ".chars"
_FIRST_CJK = 0x1100  # below: no character the .cjk analyzer keeps (Hangul, kana, ideographs)
_PRE, _POST = "\ue000", "\ue001"  # private-use characters: never in catalog text
_HIGHLIGHTED = re.compile(f"{_PRE}(.*?){_POST}", re.DOTALL)


def filter_clauses(kinds: Sequence[UnitKind], filters: Filters | None) -> list[dict[str, Any]]:
    """``bool.filter`` clauses for the kinds and the product filters (same meaning as
    `Filters.matches`: a missing price, rating or stock flag never passes a bound on it)."""
    clauses: list[dict[str, Any]] = [{"terms": {"kind": list(kinds)}}]
    if filters is None or filters.is_empty():
        return clauses
    if filters.product_ids is not None:
        clauses.append({"terms": {"product_id": list(filters.product_ids)}})
    price: dict[str, float] = {}
    if filters.price_min is not None:
        price["gte"] = filters.price_min
    if filters.price_max is not None:
        price["lte"] = filters.price_max
    if price:
        clauses.append({"range": {"price": price}})
    if filters.min_rating is not None:
        clauses.append({"range": {"rating": {"gte": filters.min_rating}}})
    if filters.in_stock is not None:
        clauses.append({"term": {"in_stock": filters.in_stock}})
    if filters.brands is not None:
        wanted = [b.casefold() for b in filters.brands if b.strip()]
        clauses.append({"terms": {"brand": wanted}})
    if filters.exclude_brands is not None:
        unwanted = [b.casefold() for b in filters.exclude_brands]
        clauses.append({"bool": {"must_not": [{"terms": {"brand": unwanted}}]}})
    if filters.category is not None:
        prefixes = category_prefixes(filters.category)
        if prefixes:
            clauses.append({"term": {"category_path": prefixes[-1]}})
    return clauses


def lexical_body(
    query: str,
    kinds: Sequence[UnitKind],
    filters: Filters | None,
    top_k: int,
    boosts: Mapping[str, float],
) -> dict[str, Any] | None:
    """BM25 over the boosted fields with highlighting; None when nothing can match."""
    fields: list[str] = []
    highlight: dict[str, dict[str, Any]] = {}
    # The .cjk sub-fields hold only CJK tokens: a query without a character from Hangul Jamo
    # (U+1100) up cannot match them, and leaving them out halves the fields to highlight.
    # A query with CJK characters also searches the bigrams (.cjk) and, weighted by
    # `CJK_CHARS`, the single Chinese characters (.chars).
    cjk = any(ord(c) >= _FIRST_CJK for c in query)
    weights = {"": 1.0, ".cjk": 1.0, _CHARS: boosts.get(CJK_CHARS, 1.0)} if cjk else {"": 1.0}
    for name, boost in boosts.items():
        es_field = TEXT_FIELDS.get(name)
        if es_field is None or boost <= 0:
            continue
        for suffix, weight in weights.items():
            if boost * weight > 0:
                fields.append(f"{es_field}{suffix}^{boost * weight:g}")
                highlight[f"{es_field}{suffix}"] = {}
    if not fields or not query.strip() or top_k <= 0 or not kinds:
        return None
    return {
        "size": min(top_k, MAX_WINDOW),
        "query": {
            "bool": {
                "must": [
                    {"multi_match": {"query": query, "type": "most_fields", "fields": fields}}
                ],
                "filter": filter_clauses(kinds, filters),
            }
        },
        "_source": HIT_SOURCE,
        "highlight": {
            "type": "unified",
            "pre_tags": [_PRE],
            "post_tags": [_POST],
            "number_of_fragments": 0,
            "fields": highlight,
        },
        "track_total_hits": False,
    }


def semantic_body(
    vector: np.ndarray,
    kinds: Sequence[UnitKind],
    filters: Filters | None,
    top_k: int,
) -> dict[str, Any] | None:
    """Filtered kNN on the unit vectors; None for no direction (no neighbours)."""
    return _knn_body("embedding", vector, kinds, {"filter": filter_clauses(kinds, filters)}, top_k)


def crosslingual_body(
    vector: np.ndarray,
    script: Script,
    kinds: Sequence[UnitKind],
    filters: Filters | None,
    top_k: int,
) -> dict[str, Any] | None:
    """Filtered kNN on the cross-lingual vectors of the units not written in ``script`` (the
    query's); None for no direction (no neighbours)."""
    clauses = {
        "filter": filter_clauses(kinds, filters),
        "must_not": [{"term": {"script": script}}],
    }
    return _knn_body("cross_embedding", vector, kinds, clauses, top_k)


def _knn_body(
    field: str,
    vector: np.ndarray,
    kinds: Sequence[UnitKind],
    clauses: dict[str, Any],
    top_k: int,
) -> dict[str, Any] | None:
    """kNN on ``field`` within the ``bool`` ``clauses``; None for no direction."""
    query = np.asarray(vector, np.float32)
    if query.ndim != 1:
        msg = f"query vector has shape {query.shape}, expected one vector"
        raise StoreError(msg)
    norm = float(np.linalg.norm(query))
    if top_k <= 0 or not kinds or not math.isfinite(norm) or norm == 0:
        return None  # no direction, no neighbours
    k = min(top_k, MAX_WINDOW)
    return {
        "size": k,
        "knn": {
            "field": field,
            "query_vector": (query / norm).tolist(),
            "k": k,
            "num_candidates": min(max(100, 2 * k), MAX_WINDOW),
            "filter": {"bool": clauses},
        },
        "_source": HIT_SOURCE,
        "track_total_hits": False,
    }


def products_body(product_ids: Sequence[str]) -> dict[str, Any]:
    """The product units of these (distinct) ids, their ``product`` object only."""
    return {
        "size": len(product_ids),
        "query": {
            "bool": {
                "filter": [
                    {"terms": {"product_id": list(product_ids)}},
                    {"term": {"kind": "product"}},
                ]
            }
        },
        "_source": ["product"],
    }


def product_body(product_id: str) -> dict[str, Any]:
    """The product unit of one id."""
    return {
        "size": 1,
        "query": {
            "bool": {
                "filter": [{"term": {"product_id": product_id}}, {"term": {"kind": "product"}}]
            }
        },
        "_source": ["product"],
    }


def units_body(product_id: str, kinds: Sequence[UnitKind] | None) -> dict[str, Any]:
    """A product's units (optionally of these kinds) in their indexed order."""
    clauses: list[dict[str, Any]] = [{"term": {"product_id": product_id}}]
    if kinds is not None:
        clauses.append({"terms": {"kind": list(kinds)}})
    return {
        "size": MAX_WINDOW,
        "query": {"bool": {"filter": clauses}},
        "sort": [{"position": "asc"}],
        "_source": HIT_SOURCE,
    }


def unit_of(source: Mapping[str, Any]) -> Unit:
    """The unit a hit's ``_source`` (of `HIT_SOURCE`) describes."""
    return Unit(
        id=source["unit_id"],
        product_id=source["product_id"],
        kind=source["kind"],
        text=source.get("text", ""),
        fields={name: source[es] for name, es in TEXT_FIELDS.items() if source.get(es)},
    )


def matched_terms(highlight: Mapping[str, Sequence[str]]) -> dict[str, tuple[str, ...]]:
    """Highlighted tokens per base field (``title.cjk`` counts as ``title``), lower-cased; a
    character of ``.chars`` only where no other term of the field holds it."""
    matched: dict[str, dict[str, None]] = {}
    chars: dict[str, dict[str, None]] = {}
    for es_field, fragments in highlight.items():
        into = chars if es_field.endswith(_CHARS) else matched
        name = _BASE_FIELD.get(es_field.removesuffix(_CHARS).removesuffix(".cjk"))
        if name is None:
            continue
        terms = into.setdefault(name, {})
        for fragment in fragments:
            for token in _HIGHLIGHTED.findall(fragment):
                terms[token.casefold()] = None
    for name, found in chars.items():
        words = "".join(matched.get(name, {}))
        for token in found:
            alone = "".join(c for c in token if c not in words)
            if alone:
                matched.setdefault(name, {})[alone] = None
    return {name: tuple(terms) for name, terms in matched.items() if terms}


def lexical_hits(hits: Iterable[Mapping[str, Any]]) -> list[ScoredUnit]:
    """Scored units of a lexical search, with their matched terms."""
    return [
        ScoredUnit(
            unit_of(hit["_source"]), float(hit["_score"]), matched_terms(hit.get("highlight", {}))
        )
        for hit in hits
    ]


def semantic_hits(hits: Iterable[Mapping[str, Any]]) -> list[ScoredUnit]:
    """Scored units of a kNN search; Elasticsearch scores cosine as (1 + cos) / 2, this gives
    back the cosine itself."""
    return [ScoredUnit(unit_of(hit["_source"]), 2.0 * float(hit["_score"]) - 1.0) for hit in hits]
