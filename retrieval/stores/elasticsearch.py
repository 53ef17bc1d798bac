"""The Elasticsearch document store: BM25 and kNN in one `_msearch`, one index per generation.

Every catalog generation is its own index, ``{alias}-{YYYYmmddtHHMMSS}-{8 hex}``, and searches go
through the alias. A full re-index (``writer(prune=True)``, or the first build) fills a new index,
checks it and then moves the alias in one ``update_aliases`` call, so searches see the old index
or the new one, never a half-built one; the old index is deleted afterwards. Smaller writes
(``prune=False``) go to the live index. Indices never refresh on their own
(``refresh_interval: -1``): the store refreshes on commit, so staged writes stay invisible until
then. The catalog version is the index name plus a write counter kept in the index's ``_meta``.

Errors: the server unreachable, timing out or answering 429/503 raises `StoreUnavailable`
naming the URL; anything else Elasticsearch refuses raises `StoreError` with its reason.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from elasticsearch import (
    ApiError,
    Elasticsearch,
    NotFoundError,
    TransportError,
)
from elasticsearch import ConnectionError as ESConnectionError
from elasticsearch import ConnectionTimeout as ESConnectionTimeout
from elasticsearch.helpers import streaming_bulk

from retrieval.schema import Filters, Product, Unit, UnitKind, split_category
from retrieval.stores.base import (
    CommitReport,
    ProductRecord,
    ScoredUnit,
    StoreError,
    StoreStats,
    StoreUnavailable,
    WriteFailure,
)

logger = logging.getLogger(__name__)

INDEX_FORMAT = 2  # 2: attribute facets, offsets for highlighting
DEFAULT_URL = "http://localhost:9200"

# Unit field (the names `DEFAULT_BOOSTS` uses) -> Elasticsearch text field.
TEXT_FIELDS: Mapping[str, str] = {
    "title": "title",
    "brand": "brand_text",
    "category": "category_text",
    "attributes": "attributes",
    "description": "description",
    "body": "body",
}
_BASE_FIELD = {es: name for name, es in TEXT_FIELDS.items()}
_HIT_SOURCE = ["unit_id", "product_id", "kind", "text", *TEXT_FIELDS.values()]
_PRE, _POST = "\ue000", "\ue001"  # private-use characters: never in catalog text
_HIGHLIGHTED = re.compile(f"{_PRE}(.*?){_POST}", re.DOTALL)
_CJK_TYPES = ["<IDEOGRAPHIC>", "<HIRAGANA>", "<KATAKANA>", "<HANGUL>"]

_MAX_WINDOW = 10_000  # index.max_result_window and the kNN num_candidates ceiling
_TERMS_CHUNK = 1_000  # product ids per terms query / delete_by_query
_MGET_CHUNK = 1_000
_SWAP_GRACE_S = 0.5  # searches already routed to the old index finish before it goes
_ADMIN_TIMEOUT_S = 120.0  # bulk, refresh, delete_by_query


def index_body(
    *, embedding_model: str, dim: int, shards: int = 1, replicas: int = 0
) -> dict[str, Any]:
    """Settings and mappings of one catalog generation (pass to ``indices.create``).

    Text fields are analysed twice: the field itself in English (lower-cased, stop words out,
    plurals stemmed; CJK characters left to the sub-field) and ``.cjk`` with the same chain as
    the built-in ``cjk`` analyzer (width folding, lower-casing, CJK bigrams) keeping only CJK
    tokens, so a Latin word is not counted twice.
    """
    # Offsets in the postings let the unified highlighter (matched terms for explanations)
    # skip re-analysing every hit's text.
    text = {
        "type": "text",
        "analyzer": "shopguide_english",
        "index_options": "offsets",
        "fields": {
            "cjk": {"type": "text", "analyzer": "shopguide_cjk", "index_options": "offsets"}
        },
    }
    keyword = {"type": "keyword"}
    folded = {"type": "keyword", "normalizer": "shopguide_lowercase"}
    return {
        "settings": {
            "index": {
                "number_of_shards": shards,
                "number_of_replicas": replicas,
                "refresh_interval": "-1",  # the store refreshes on commit
            },
            "analysis": {
                "normalizer": {
                    "shopguide_lowercase": {"type": "custom", "filter": ["lowercase"]},
                },
                "filter": {
                    "shopguide_possessive": {"type": "stemmer", "language": "possessive_english"},
                    "shopguide_stop": {"type": "stop", "stopwords": "_english_"},
                    "shopguide_plural": {"type": "stemmer", "language": "minimal_english"},
                    "shopguide_no_cjk": {
                        "type": "keep_types",
                        "mode": "exclude",
                        "types": _CJK_TYPES,
                    },
                    "shopguide_cjk_only": {
                        "type": "keep_types",
                        "mode": "include",
                        "types": ["<DOUBLE>", "<SINGLE>", *_CJK_TYPES],
                    },
                },
                "analyzer": {
                    "shopguide_english": {
                        "type": "custom",
                        "tokenizer": "standard",
                        "filter": [
                            "shopguide_possessive",
                            "lowercase",
                            "shopguide_no_cjk",
                            "shopguide_stop",
                            "shopguide_plural",
                        ],
                    },
                    "shopguide_cjk": {
                        "type": "custom",
                        "tokenizer": "standard",
                        "filter": ["cjk_width", "lowercase", "cjk_bigram", "shopguide_cjk_only"],
                    },
                },
            },
        },
        "mappings": {
            "dynamic": "strict",
            "_meta": {
                "format": INDEX_FORMAT,
                "embedding_model": embedding_model,
                "dim": dim,
                "writes": 0,
            },
            "properties": {
                "unit_id": keyword,
                "product_id": keyword,
                "kind": keyword,
                "position": {"type": "integer"},
                **{es: text for es in TEXT_FIELDS.values()},
                "brand": folded,
                "brand_display": keyword,
                "category_path": folded,
                "facets": {**folded, "ignore_above": 256},
                "currency": keyword,
                "price": {"type": "double"},
                "rating": {"type": "double"},
                "in_stock": {"type": "boolean"},
                "text": {"type": "text", "index": False},
                "product": {"type": "object", "enabled": False},
                "embedding": {
                    "type": "dense_vector",
                    "dims": dim,
                    "index": True,
                    "similarity": "cosine",
                    # Plain HNSW: 8.14+ would default to int8 and change the scores.
                    "index_options": {"type": "hnsw", "m": 16, "ef_construction": 100},
                },
                "embedding_model": {"type": "keyword", "index": False, "doc_values": False},
            },
        },
    }


def attribute_facets(attributes: Mapping[str, Any]) -> list[str]:
    """``name=value`` keywords of a product's attributes (one per item of a list), for facet
    counts and exact attribute filters: ``{"color": "Teal", "ipx": 7}`` -> ``["color=teal",
    "ipx=7"]``. Booleans read ``true``/``false``."""
    facets: list[str] = []
    for name, value in attributes.items():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, bool):
                text = "true" if item else "false"
            elif isinstance(item, float) and item.is_integer():
                text = str(int(item))
            elif isinstance(item, (str, int, float)):
                text = str(item).strip()
            else:
                continue
            if text:
                facets.append(f"{name}={text}".casefold())
    return facets


def category_prefixes(category: str | None) -> list[str]:
    """Every prefix of a category path, case-folded: ``["a", "a > b", "a > b > c"]``."""
    levels = [level.casefold() for level in split_category(category)]
    return [" > ".join(levels[: i + 1]) for i in range(len(levels))]


def unit_document(
    product: Product, unit: Unit, vector: np.ndarray, *, position: int, embedding_model: str
) -> dict[str, Any]:
    """The indexed document of one unit; the product's facets go on every unit."""
    doc: dict[str, Any] = {
        "unit_id": unit.id,
        "product_id": unit.product_id,
        "kind": unit.kind,
        "position": position,
        "text": unit.text,
        "currency": product.currency,
        "embedding": vector.tolist(),
        "embedding_model": embedding_model,
    }
    for name, value in unit.fields.items():
        if value:
            doc[TEXT_FIELDS[name]] = value
    if product.brand:
        doc["brand"] = product.brand.casefold()
        doc["brand_display"] = product.brand
    prefixes = category_prefixes(product.category)
    if prefixes:
        doc["category_path"] = prefixes
    facets = attribute_facets(product.attributes)
    if facets:
        doc["facets"] = facets
    if product.price is not None:
        doc["price"] = product.price
    if product.rating is not None:
        doc["rating"] = product.rating
    if product.in_stock is not None:
        doc["in_stock"] = product.in_stock
    if unit.kind == "product":
        doc["product"] = product.model_dump(mode="json")
    return doc


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


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _reason(error: Any) -> str:
    """The most specific reason in an Elasticsearch error object (or the first of a list)."""
    if isinstance(error, list) and error:
        error = error[0].get("reason", error[0]) if isinstance(error[0], Mapping) else error[0]
    if isinstance(error, Mapping):
        causes = error.get("caused_by") or (error.get("root_cause") or [None])[0]
        reason = f"{error.get('type', 'error')}: {error.get('reason', '')}".strip()
        if isinstance(causes, Mapping) and causes.get("reason") != error.get("reason"):
            reason += f" ({_reason(causes)})"
        return reason
    return str(error)


def _api_reason(exc: ApiError) -> str:
    body = exc.body
    if isinstance(body, Mapping) and "error" in body:
        return _reason(body["error"])
    return str(exc.message)


def _unit(source: Mapping[str, Any]) -> Unit:
    return Unit(
        id=source["unit_id"],
        product_id=source["product_id"],
        kind=source["kind"],
        text=source.get("text", ""),
        fields={name: source[es] for name, es in TEXT_FIELDS.items() if source.get(es)},
    )


def _matched_terms(highlight: Mapping[str, Sequence[str]]) -> dict[str, tuple[str, ...]]:
    """Highlighted tokens per base field (``title.cjk`` counts as ``title``), lower-cased."""
    matched: dict[str, dict[str, None]] = {}
    for es_field, fragments in highlight.items():
        name = _BASE_FIELD.get(es_field.removesuffix(".cjk"))
        if name is None:
            continue
        terms = matched.setdefault(name, {})
        for fragment in fragments:
            for token in _HIGHLIGHTED.findall(fragment):
                terms[token.casefold()] = None
    return {name: tuple(terms) for name, terms in matched.items() if terms}


def _record_problem(record: ProductRecord) -> str | None:
    """Why a record cannot be written (the mapping checks the vector size itself)."""
    product, units = record.product, record.units
    if sum(unit.kind == "product" for unit in units) != 1:
        return "a product needs exactly one unit of kind 'product'"
    for unit in units:
        if unit.product_id != product.id:
            return f"unit {unit.id} belongs to product {unit.product_id}"
        unknown = set(unit.fields) - set(TEXT_FIELDS)
        if unknown:
            return f"unit {unit.id} has fields the index does not know: {sorted(unknown)}"
    vectors = np.asarray(record.embeddings)
    if vectors.ndim != 2 or vectors.shape[0] != len(units):
        return f"embeddings of shape {vectors.shape} for {len(units)} units"
    if not np.isfinite(vectors).all():
        return "embeddings hold NaN or infinite values"
    if (np.linalg.norm(vectors, axis=1) == 0).any():
        return "an embedding is all zeros (cosine similarity needs a direction)"
    return None


@dataclass(frozen=True)
class _Generation:
    """The index behind the alias now."""

    index: str
    meta: Mapping[str, Any]

    @property
    def version(self) -> str:
        return f"{self.index}@{int(self.meta.get('writes', 0))}"

    @property
    def embedding_model(self) -> str | None:
        model = self.meta.get("embedding_model")
        return str(model) if model is not None else None


class _RetryableSearch(Exception):
    """A search hit an index that went away under it (a concurrent alias swap), or a shard
    that cannot serve yet (``unavailable``: a node starting, its shards recovering)."""

    def __init__(self, reason: str, *, unavailable: bool = False) -> None:
        super().__init__(reason)
        self.unavailable = unavailable


class ElasticsearchStore:
    """`DocumentStore` on Elasticsearch 8.12+; connects lazily, on the first request."""

    def __init__(
        self,
        url: str | None = None,
        *,
        alias: str = "shopguide-units",
        shards: int = 1,
        replicas: int = 0,
        client: Elasticsearch | None = None,
        request_timeout_s: float = 10.0,
        chunk_size: int = 500,
        version_ttl_s: float = 1.0,
    ) -> None:
        self.alias = alias
        self.shards = shards
        self.replicas = replicas
        self.chunk_size = chunk_size
        self.version_ttl_s = version_ttl_s
        self._own_client = client is None
        if client is None:
            self.url = url or DEFAULT_URL
            client = Elasticsearch(
                self.url, request_timeout=request_timeout_s, max_retries=2, retry_on_timeout=False
            )
        else:
            self.url = url or _client_url(client)
        self._client = client
        self._admin = client.options(request_timeout=max(request_timeout_s, _ADMIN_TIMEOUT_S))
        self._lock = threading.Lock()
        self._generation_cache: tuple[float, _Generation | None] | None = None
        self._stats_cache: tuple[float, StoreStats] | None = None
        self._brands_cache: tuple[str, list[str]] | None = None

    # -- plumbing --------------------------------------------------------------------------

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """Translate client errors into `StoreUnavailable` / `StoreError`."""
        try:
            yield
        except StoreError:
            raise
        except (ESConnectionError, ESConnectionTimeout) as exc:
            msg = f"Elasticsearch at {self.url} cannot be reached ({action}): {exc}"
            raise StoreUnavailable(msg) from exc
        except ApiError as exc:
            reason = _api_reason(exc)
            if exc.meta.status in (429, 503):
                msg = f"Elasticsearch at {self.url} is unavailable ({action}): {reason}"
                raise StoreUnavailable(msg) from exc
            msg = f"Elasticsearch could not {action}: {reason}"
            raise StoreError(msg) from exc
        except TransportError as exc:
            msg = f"Elasticsearch at {self.url} could not {action}: {exc}"
            raise StoreError(msg) from exc

    def _invalidate(self) -> None:
        with self._lock:
            self._generation_cache = None
            self._stats_cache = None

    def _generation(self, *, fresh: bool = False) -> _Generation | None:
        """The index behind the alias and its ``_meta``, cached for ``version_ttl_s``."""
        now = time.monotonic()
        with self._lock:
            cached = self._generation_cache
            if not fresh and cached is not None and now - cached[0] < self.version_ttl_s:
                return cached[1]
        generation: _Generation | None
        with self._errors("look up the index"):
            try:
                response = self._client.indices.get_mapping(index=self.alias)
            except NotFoundError:
                generation = None
            else:
                indices = dict(response.body)
                if len(indices) != 1:
                    msg = f"the alias {self.alias} points to several indices: {sorted(indices)}"
                    raise StoreError(msg)
                ((name, body),) = indices.items()
                generation = _Generation(name, dict(body["mappings"].get("_meta", {})))
        with self._lock:
            self._generation_cache = (now, generation)
        return generation

    def _msearch(self, bodies: Sequence[dict[str, Any] | None]) -> list[list[dict[str, Any]]]:
        """Run the searches (None: no search, no hits) in one ``_msearch``; retried once when an
        index went away under it."""
        wanted = [body for body in bodies if body is not None]
        if not wanted:
            return [[] for _ in bodies]
        header = {
            "index": self.alias,
            "ignore_unavailable": True,
            "allow_partial_search_results": False,
        }
        searches: list[Mapping[str, Any]] = []
        for body in wanted:
            searches.extend((header, body))
        for attempt in (1, 2):
            try:
                with self._errors("search"):
                    response = self._client.msearch(searches=searches)
                    results = [self._hits(item) for item in response["responses"]]
                break
            except _RetryableSearch as exc:
                if attempt == 2 and exc.unavailable:  # still not serving: 503, not 500
                    msg = f"Elasticsearch at {self.url} is unavailable (search): {exc}"
                    raise StoreUnavailable(msg) from exc
                if attempt == 2:
                    msg = f"Elasticsearch could not search: {exc}"
                    raise StoreError(msg) from exc
        found = iter(results)
        return [next(found) if body is not None else [] for body in bodies]

    def _hits(self, item: Mapping[str, Any]) -> list[dict[str, Any]]:
        error = item.get("error")
        if error is not None:
            reason = _reason(error)
            status = int(item.get("status", 500))
            unavailable = status in (429, 503) or "no_shard_available" in reason
            if status == 404 or "index_not_found" in reason or "no_shard_available" in reason:
                raise _RetryableSearch(reason, unavailable=unavailable)
            if status in (429, 503):
                msg = f"Elasticsearch at {self.url} is unavailable (search): {reason}"
                raise StoreUnavailable(msg)
            msg = f"Elasticsearch could not search: {reason}"
            raise StoreError(msg)
        if item.get("_shards", {}).get("failed"):
            reason = _reason(item["_shards"].get("failures"))
            raise _RetryableSearch(reason, unavailable="no_shard_available" in reason)
        return list(item["hits"]["hits"])

    def _search_index(self, index: str, **body: Any) -> dict[str, Any]:
        with self._errors("search"):
            return dict(self._client.search(index=index, **body).body)

    # -- writes ----------------------------------------------------------------------------

    def writer(self, *, embedding_model: str, dim: int, prune: bool = False) -> ElasticsearchWriter:
        """Start a write; see `DocumentStore.writer`.

        ``prune`` (and the first write) builds a new index and swaps the alias on commit;
        otherwise products are upserted into the live index.
        """
        current = None if prune else self._generation(fresh=True)
        if current is not None and current.meta.get("format") != INDEX_FORMAT:
            msg = (
                f"the index {current.index} has format {current.meta.get('format')}, this "
                f"version writes format {INDEX_FORMAT}: re-index the whole catalog with prune"
            )
            raise StoreError(msg)
        if current is not None and (
            current.embedding_model != embedding_model or current.meta.get("dim") != dim
        ):
            if self._count(current.index) != 0:
                msg = (
                    f"the index was built with the embedding model "
                    f"'{current.embedding_model}' ({current.meta.get('dim')}-d), not "
                    f"'{embedding_model}' ({dim}-d): re-index the whole catalog with prune"
                )
                raise StoreError(msg)
            current = None  # an empty index: build afresh
        if current is not None:
            return ElasticsearchWriter(
                self, index=current.index, embedding_model=embedding_model, dim=dim, full=False
            )
        index = self._new_index_name()
        body = index_body(
            embedding_model=embedding_model, dim=dim, shards=self.shards, replicas=self.replicas
        )
        with self._errors(f"create the index {index}"):
            self._admin.indices.create(index=index, **body)
        logger.info("building index %s behind alias %s", index, self.alias)
        return ElasticsearchWriter(
            self, index=index, embedding_model=embedding_model, dim=dim, full=True
        )

    def _new_index_name(self) -> str:
        # Index names must be lower-case: 20240131t120000, not 20240131T120000.
        stamp = time.strftime("%Y%m%dt%H%M%S", time.gmtime())
        return f"{self.alias}-{stamp}-{uuid.uuid4().hex[:8]}"

    def _bulk(self, actions: list[dict[str, Any]]) -> dict[str, str]:
        """Send index/delete actions; returns the first error per ``_id`` (a delete of a missing
        document is no error)."""
        errors: dict[str, str] = {}
        if not actions:
            return errors
        with self._errors("write documents"):
            for ok, item in streaming_bulk(
                self._admin,
                actions,
                chunk_size=self.chunk_size,
                raise_on_error=False,
                max_retries=4,
                initial_backoff=0.5,
                max_backoff=10,
                yield_ok=False,
            ):
                if ok:
                    continue
                ((op, result),) = item.items()
                if op == "delete" and result.get("status") == 404:
                    continue
                errors.setdefault(str(result.get("_id")), _reason(result.get("error")))
        return errors

    def _refresh(self, index: str) -> None:
        with self._errors(f"refresh {index}"):
            self._admin.indices.refresh(index=index)

    def _count(self, index: str, query: Mapping[str, Any] | None = None) -> int:
        with self._errors(f"count the documents of {index}"):
            return int(self._admin.count(index=index, query=query)["count"])

    def _count_products(self, index: str, product_ids: Sequence[str] | None = None) -> int:
        """Product units in ``index`` (only those of ``product_ids`` when given)."""
        if product_ids is None:
            return self._count(index, {"term": {"kind": "product"}})
        return sum(
            self._count(
                index,
                {
                    "bool": {
                        "filter": [
                            {"term": {"kind": "product"}},
                            {"terms": {"product_id": list(chunk)}},
                        ]
                    }
                },
            )
            for chunk in _chunks(product_ids, _TERMS_CHUNK)
        )

    def _delete_by_query(self, index: str, query: Mapping[str, Any]) -> int:
        with self._errors(f"delete documents from {index}"):
            response = self._admin.delete_by_query(
                index=index, query=query, conflicts="proceed", refresh=False
            )
        if response.get("failures"):
            reason = _reason(response["failures"])
            msg = f"Elasticsearch could not remove documents of {index}: {reason}"
            raise StoreError(msg)
        return int(response.get("deleted", 0))

    def _bump_version(self, index: str) -> str:
        """Count a write in the index's ``_meta`` (read-modify-write; readers see it after the
        refresh that made the write visible)."""
        with self._errors(f"update the version of {index}"):
            response = self._admin.indices.get_mapping(index=index)
            meta = dict(response[index]["mappings"].get("_meta", {}))
            meta["writes"] = int(meta.get("writes", 0)) + 1
            self._admin.indices.put_mapping(index=index, meta=meta)
        self._invalidate()
        return _Generation(index, meta).version

    def _removed_by(self, previous: _Generation | None, written: Sequence[str]) -> int:
        """How many products of the previous index are not among ``written``."""
        if previous is None:
            return 0
        return self._count_products(previous.index) - self._count_products(previous.index, written)

    def _point_alias(self, index: str, previous: _Generation | None) -> None:
        """Point the alias at ``index`` alone, in one atomic call."""
        actions: list[Mapping[str, Any]] = []
        if previous is not None:
            actions.append({"remove": {"index": previous.index, "alias": self.alias}})
        actions.append({"add": {"index": index, "alias": self.alias}})
        with self._errors(f"point the alias {self.alias} at {index}"):
            self._admin.indices.update_aliases(actions=actions)
        self._invalidate()
        logger.info(
            "alias %s now points at %s (was %s)",
            self.alias,
            index,
            previous.index if previous else None,
        )

    def _retire(self, previous: _Generation | None) -> None:
        """Delete the index the alias left, once searches already sent to it are done."""
        if previous is None:
            return
        time.sleep(_SWAP_GRACE_S)
        self._drop_index(previous.index)

    def _is_live(self, index: str) -> bool:
        try:
            current = self._generation(fresh=True)
        except StoreError:
            return False
        return current is not None and current.index == index

    def _drop_index(self, index: str) -> None:
        try:
            with self._errors(f"delete the index {index}"):
                self._admin.indices.delete(index=index, ignore_unavailable=True)
        except StoreError as exc:
            logger.warning("could not delete the abandoned index %s: %s", index, exc)

    def delete_products(self, product_ids: Sequence[str]) -> int:
        """Remove products and their units now; returns how many existed."""
        current = self._generation(fresh=True)
        ids = list(dict.fromkeys(product_ids))
        if current is None or not ids:
            return 0
        existing = self._count_products(current.index, ids)
        if existing:
            for chunk in _chunks(ids, _TERMS_CHUNK):
                self._delete_by_query(current.index, {"terms": {"product_id": list(chunk)}})
            self._refresh(current.index)
            version = self._bump_version(current.index)
            logger.info("deleted %d products; index version %s", existing, version)
        return existing

    # -- reads -----------------------------------------------------------------------------

    def _lexical_body(
        self,
        query: str,
        kinds: Sequence[UnitKind],
        filters: Filters | None,
        top_k: int,
        boosts: Mapping[str, float],
    ) -> dict[str, Any] | None:
        fields: list[str] = []
        highlight: dict[str, dict[str, Any]] = {}
        for name, boost in boosts.items():
            es_field = TEXT_FIELDS.get(name)
            if es_field is None or boost <= 0:
                continue
            fields += [f"{es_field}^{boost}", f"{es_field}.cjk^{boost}"]
            highlight[es_field] = {}
            highlight[f"{es_field}.cjk"] = {}
        if not fields or not query.strip() or top_k <= 0 or not kinds:
            return None
        return {
            "size": min(top_k, _MAX_WINDOW),
            "query": {
                "bool": {
                    "must": [
                        {"multi_match": {"query": query, "type": "most_fields", "fields": fields}}
                    ],
                    "filter": filter_clauses(kinds, filters),
                }
            },
            "_source": _HIT_SOURCE,
            "highlight": {
                "type": "unified",
                "pre_tags": [_PRE],
                "post_tags": [_POST],
                "number_of_fragments": 0,
                "fields": highlight,
            },
            "track_total_hits": False,
        }

    def _semantic_body(
        self,
        vector: np.ndarray,
        kinds: Sequence[UnitKind],
        filters: Filters | None,
        top_k: int,
    ) -> dict[str, Any] | None:
        query = np.asarray(vector, np.float32)
        if query.ndim != 1:
            msg = f"query vector has shape {query.shape}, expected one vector"
            raise StoreError(msg)
        norm = float(np.linalg.norm(query))
        if top_k <= 0 or not kinds or not math.isfinite(norm) or norm == 0:
            return None  # no direction, no neighbours
        k = min(top_k, _MAX_WINDOW)
        return {
            "size": k,
            "knn": {
                "field": "embedding",
                "query_vector": (query / norm).tolist(),
                "k": k,
                "num_candidates": min(max(100, 2 * k), _MAX_WINDOW),
                "filter": {"bool": {"filter": filter_clauses(kinds, filters)}},
            },
            "_source": _HIT_SOURCE,
            "track_total_hits": False,
        }

    @staticmethod
    def _lexical_hits(hits: Iterable[Mapping[str, Any]]) -> list[ScoredUnit]:
        return [
            ScoredUnit(
                _unit(hit["_source"]),
                float(hit["_score"]),
                _matched_terms(hit.get("highlight", {})),
            )
            for hit in hits
        ]

    @staticmethod
    def _semantic_hits(hits: Iterable[Mapping[str, Any]]) -> list[ScoredUnit]:
        # Elasticsearch scores cosine as (1 + cos) / 2; give back the cosine itself.
        return [ScoredUnit(_unit(hit["_source"]), 2.0 * float(hit["_score"]) - 1.0) for hit in hits]

    def lexical(
        self,
        query: str,
        *,
        kinds: Sequence[UnitKind],
        filters: Filters | None,
        top_k: int,
        boosts: Mapping[str, float],
    ) -> list[ScoredUnit]:
        """BM25 over the fields in ``boosts`` (and their ``.cjk`` sub-fields), best first."""
        (hits,) = self._msearch([self._lexical_body(query, kinds, filters, top_k, boosts)])
        return self._lexical_hits(hits)

    def semantic(
        self,
        vector: np.ndarray,
        *,
        kinds: Sequence[UnitKind],
        filters: Filters | None,
        top_k: int,
    ) -> list[ScoredUnit]:
        """Nearest units by cosine similarity, filtered inside the kNN search, best first."""
        (hits,) = self._msearch([self._semantic_body(vector, kinds, filters, top_k)])
        return self._semantic_hits(hits)

    def hybrid(
        self,
        query: str,
        vector: np.ndarray | None,
        *,
        kinds: Sequence[UnitKind],
        filters: Filters | None,
        top_k: int,
        boosts: Mapping[str, float],
    ) -> tuple[list[ScoredUnit], list[ScoredUnit]]:
        """Both searches with the same filters in one ``_msearch`` round trip (only BM25
        when there is no ``vector``)."""
        bodies = [self._lexical_body(query, kinds, filters, top_k, boosts)]
        if vector is not None:
            bodies.append(self._semantic_body(vector, kinds, filters, top_k))
        lexical, *semantic = self._msearch(bodies)
        return self._lexical_hits(lexical), self._semantic_hits(semantic[0]) if semantic else []

    def get_product(self, product_id: str) -> Product | None:
        """The product with this id, or None."""
        (hits,) = self._msearch(
            [
                {
                    "size": 1,
                    "query": {
                        "bool": {
                            "filter": [
                                {"term": {"product_id": product_id}},
                                {"term": {"kind": "product"}},
                            ]
                        }
                    },
                    "_source": ["product"],
                }
            ]
        )
        if not hits:
            return None
        return Product.model_validate(hits[0]["_source"]["product"])

    def get_products(self, product_ids: Sequence[str]) -> dict[str, Product]:
        """The products with these ids (unknown ids left out), in one search."""
        wanted = list(dict.fromkeys(product_ids))[:_MAX_WINDOW]
        if not wanted:
            return {}
        (hits,) = self._msearch(
            [
                {
                    "size": len(wanted),
                    "query": {
                        "bool": {
                            "filter": [
                                {"terms": {"product_id": wanted}},
                                {"term": {"kind": "product"}},
                            ]
                        }
                    },
                    "_source": ["product"],
                }
            ]
        )
        products = (Product.model_validate(h["_source"]["product"]) for h in hits)
        return {p.id: p for p in products}

    def get_units(self, product_id: str, kinds: Sequence[UnitKind] | None = None) -> list[Unit]:
        """The product's units in their indexed order, optionally only these kinds."""
        clauses: list[dict[str, Any]] = [{"term": {"product_id": product_id}}]
        if kinds is not None:
            clauses.append({"terms": {"kind": list(kinds)}})
        (hits,) = self._msearch(
            [
                {
                    "size": _MAX_WINDOW,
                    "query": {"bool": {"filter": clauses}},
                    "sort": [{"position": "asc"}],
                    "_source": _HIT_SOURCE,
                }
            ]
        )
        return [_unit(hit["_source"]) for hit in hits]

    def product_vectors(self, product_ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored vectors of these products' own units (unknown ids left out)."""
        if not product_ids or self._generation() is None:
            return {}
        found: dict[str, np.ndarray] = {}
        for chunk in _chunks(list(dict.fromkeys(product_ids)), _MGET_CHUNK):
            with self._errors("read product vectors"):
                try:
                    response = self._client.mget(
                        index=self.alias,
                        ids=list(chunk),
                        realtime=False,  # what searches see: committed documents only
                        source_includes=["kind", "embedding"],
                    )
                except NotFoundError:
                    return {}
            for doc in response["docs"]:
                source = doc.get("_source")
                if doc.get("found") and source and source.get("kind") == "product":
                    found[doc["_id"]] = np.asarray(source["embedding"], np.float32)
        return found

    def known_embeddings(
        self, units: Sequence[Unit], embedding_model: str
    ) -> dict[str, np.ndarray]:
        """Stored vectors of the units whose text and embedding model are unchanged."""
        if not units or self._generation() is None:
            return {}
        wanted = {unit.id: unit for unit in units}
        found: dict[str, np.ndarray] = {}
        for chunk in _chunks(list(wanted), _MGET_CHUNK):
            with self._errors("read stored embeddings"):
                try:
                    response = self._client.mget(
                        index=self.alias,
                        ids=list(chunk),
                        realtime=False,  # what searches see: committed documents only
                        source_includes=["text", "embedding", "embedding_model"],
                    )
                except NotFoundError:
                    return {}
            for doc in response["docs"]:
                source = doc.get("_source")
                if not doc.get("found") or source is None:
                    continue
                unit = wanted[doc["_id"]]
                if (
                    source.get("embedding_model") == embedding_model
                    and source.get("text") == unit.text
                ):
                    found[unit.id] = np.asarray(source["embedding"], np.float32)
        return found

    def brands(self) -> list[str]:
        """Every brand in the catalog as written there, sorted (cached per catalog version)."""
        current = self._generation()
        if current is None:
            return []
        cached = self._brands_cache
        if cached is not None and cached[0] == current.version:
            return cached[1]
        brands: set[str] = set()
        after: Mapping[str, Any] | None = None
        while True:
            composite: dict[str, Any] = {
                "size": 1000,
                "sources": [{"brand": {"terms": {"field": "brand_display"}}}],
            }
            if after is not None:
                composite["after"] = after
            try:
                response = self._search_index(
                    current.index,
                    size=0,
                    query={"term": {"kind": "product"}},
                    aggs={"brands": {"composite": composite}},
                )
            except StoreError:
                if self._generation(fresh=True) != current:
                    return self.brands()  # swapped under us: read the new index
                raise
            buckets = response["aggregations"]["brands"]["buckets"]
            brands.update(bucket["key"]["brand"] for bucket in buckets)
            after = response["aggregations"]["brands"].get("after_key")
            if not buckets or after is None:
                break
        result = sorted(brands)
        self._brands_cache = (current.version, result)
        return result

    def stats(self) -> StoreStats:
        """Counts and the catalog version (cached for ``version_ttl_s``)."""
        now = time.monotonic()
        with self._lock:
            cached = self._stats_cache
            if cached is not None and now - cached[0] < self.version_ttl_s:
                return cached[1]
        current = self._generation()
        if current is None:
            stats = StoreStats("elasticsearch", None, 0, 0, None)
        else:
            try:
                response = self._search_index(
                    current.index,
                    size=0,
                    track_total_hits=True,
                    aggs={"products": {"filter": {"term": {"kind": "product"}}}},
                )
            except StoreError:
                if self._generation(fresh=True) != current:
                    self._invalidate()
                    return self.stats()  # swapped under us: count the new index
                raise
            stats = StoreStats(
                backend="elasticsearch",
                version=current.version,
                products=int(response["aggregations"]["products"]["doc_count"]),
                units=int(response["hits"]["total"]["value"]),
                embedding_model=current.embedding_model,
            )
        with self._lock:
            self._stats_cache = (now, stats)
        return stats

    def drop(self) -> list[str]:
        """Delete every index of this alias's generations (and so the alias); returns their
        names. Indices of other aliases sharing the prefix are left alone."""
        own = re.compile(rf"{re.escape(self.alias)}-\d{{8}}t\d{{6}}-[0-9a-f]{{8}}")
        with self._errors("delete the indices"):
            found = self._admin.indices.get(index=f"{self.alias}-*", expand_wildcards="all")
            names = sorted(name for name in found.body if own.fullmatch(name))
            if names:  # by exact names: wildcard deletes are refused by default
                self._admin.indices.delete(index=",".join(names))
        self._invalidate()
        logger.info("dropped %s: %s", self.alias, ", ".join(names) or "nothing")
        return names

    def close(self) -> None:
        """Close the client's connections (a client passed in is left open)."""
        if self._own_client:
            self._client.close()


@dataclass
class _Staged:
    """What a writer has sent: unit ids per product, products it had to take out again."""

    units: dict[str, list[str]] = field(default_factory=dict)
    dropped: set[str] = field(default_factory=set)
    sample: list[float] | None = None


class ElasticsearchWriter:
    """Streams products into an index; `commit` makes them visible.

    A full writer fills a new index and swaps the alias on commit (abort deletes the index). A
    live writer upserts into the index behind the alias; on commit it deletes the units those
    products no longer have and refreshes. Abort cannot take back documents a live writer has
    already sent: they stay unseen until the index's next refresh.
    """

    def __init__(
        self,
        store: ElasticsearchStore,
        *,
        index: str,
        embedding_model: str,
        dim: int,
        full: bool,
    ) -> None:
        self._store = store
        self.index = index
        self._embedding_model = embedding_model
        self.dim = dim  # Elasticsearch checks every vector against the mapping
        self._full = full
        self._staged = _Staged()
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            msg = "this writer has already been committed or aborted"
            raise StoreError(msg)

    def write(self, records: Sequence[ProductRecord]) -> list[WriteFailure]:
        """Send products (a product id written again replaces the earlier one); returns the
        products Elasticsearch or the checks refused, with the reason."""
        self._check_open()
        failures: list[WriteFailure] = []
        batch: dict[str, ProductRecord] = {}
        for record in records:
            problem = _record_problem(record)
            if problem is not None:
                failures.append(WriteFailure(record.product.id, problem))
            else:
                batch[record.product.id] = record
        actions: list[dict[str, Any]] = []
        owner: dict[str, str] = {}  # unit id -> product id
        rewritten: set[str] = set()  # products whose earlier units this batch deletes
        for pid, record in batch.items():
            vectors = np.asarray(record.embeddings, np.float32)
            vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
            for position, (unit, vector) in enumerate(zip(record.units, vectors, strict=True)):
                owner[unit.id] = pid
                actions.append(
                    {
                        "_op_type": "index",
                        "_index": self.index,
                        "_id": unit.id,
                        "_source": unit_document(
                            record.product,
                            unit,
                            vector,
                            position=position,
                            embedding_model=self._embedding_model,
                        ),
                    }
                )
            new_ids = {unit.id for unit in record.units}
            for old_id in self._staged.units.get(pid, []):  # written earlier by this writer
                if old_id not in new_ids:
                    owner[old_id] = pid
                    rewritten.add(pid)
                    actions.append({"_op_type": "delete", "_index": self.index, "_id": old_id})
        errors = self._store._bulk(actions)
        failed: dict[str, str] = {}
        for unit_id, reason in errors.items():
            failed.setdefault(owner.get(unit_id, unit_id), f"unit {unit_id}: {reason}")
        cleanup: list[dict[str, Any]] = []
        for pid, record in batch.items():
            if pid not in failed:
                self._staged.units[pid] = [unit.id for unit in record.units]
                self._staged.dropped.discard(pid)
                if self._staged.sample is None:
                    self._staged.sample = np.asarray(record.embeddings[0], np.float32).tolist()
                continue
            failures.append(WriteFailure(pid, failed[pid]))
            sent = [unit.id for unit in record.units if unit.id not in errors]
            if sent or pid in rewritten:
                # Half a product is worse than none: take it out (a live writer removes its
                # older units on commit). Refused whole, a product keeps what it had.
                cleanup += [{"_op_type": "delete", "_index": self.index, "_id": i} for i in sent]
                cleanup += [
                    {"_op_type": "delete", "_index": self.index, "_id": i}
                    for i in self._staged.units.pop(pid, [])
                    if i not in sent
                ]
                self._staged.dropped.add(pid)
        leftover = self._store._bulk(cleanup)
        if leftover:
            msg = f"could not take back the units of refused products: {leftover}"
            raise StoreError(msg)
        for failure in failures:
            logger.warning("product %s not written: %s", failure.product_id, failure.reason)
        return failures

    def commit(self) -> CommitReport:
        """Make the written products visible: swap the alias (full) or refresh (live)."""
        self._check_open()
        self._closed = True
        if self._full:
            return self._commit_full()
        return self._commit_live()

    def _commit_full(self) -> CommitReport:
        store, staged = self._store, self._staged
        try:
            store._refresh(self.index)
            expected = sum(len(ids) for ids in staged.units.values())
            count = store._count(self.index)
            if count != expected:
                msg = (
                    f"the new index {self.index} holds {count} documents, "
                    f"{expected} were written: not switching to it"
                )
                raise StoreError(msg)
            self._sample_query(expected)
            previous = store._generation(fresh=True)
            removed = store._removed_by(previous, list(staged.units))
            store._point_alias(self.index, previous)
        except BaseException:
            # Never delete an index the alias points at (an alias call that timed out may
            # still have been applied).
            if not store._is_live(self.index):
                store._drop_index(self.index)
            store._invalidate()
            raise
        store._retire(previous)
        version = f"{self.index}@0"
        logger.info(
            "committed index %s: %d products, %d units, %d removed",
            version,
            len(staged.units),
            expected,
            removed,
        )
        return CommitReport(
            version=version,
            products=len(staged.units),
            units=expected,
            written=len(staged.units),
            removed=removed,
        )

    def _sample_query(self, expected: int) -> None:
        """A BM25-free filter query and a kNN query against the new index must answer."""
        if not expected or self._staged.sample is None:
            return
        response = self._store._search_index(
            self.index,
            size=1,
            query={"term": {"kind": "product"}},
            knn={
                "field": "embedding",
                "query_vector": self._staged.sample,
                "k": 1,
                "num_candidates": 10,
            },
        )
        if not response["hits"]["hits"]:
            msg = f"a sample query on the new index {self.index} found nothing"
            raise StoreError(msg)

    def _commit_live(self) -> CommitReport:
        store, staged = self._store, self._staged
        current = store._generation(fresh=True)
        if current is None or current.index != self.index:
            msg = (
                f"the index {self.index} was replaced by "
                f"{current.index if current else 'nothing'} while writing: write again"
            )
            raise StoreError(msg)
        items = list(staged.units.items())
        for chunk in _chunks(items, _TERMS_CHUNK):
            # Units these products had before and no longer have (a removed review).
            store._delete_by_query(
                self.index,
                {
                    "bool": {
                        "filter": [{"terms": {"product_id": [pid for pid, _ in chunk]}}],
                        "must_not": [{"ids": {"values": [i for _, ids in chunk for i in ids]}}],
                    }
                },
            )
        dropped = sorted(staged.dropped - set(staged.units))
        for pids in _chunks(dropped, _TERMS_CHUNK):
            store._delete_by_query(self.index, {"terms": {"product_id": list(pids)}})
        store._refresh(self.index)
        version = store._bump_version(self.index)
        stats = store.stats()
        logger.info("committed %d products into %s", len(staged.units), version)
        return CommitReport(
            version=version,
            products=stats.products,
            units=stats.units,
            written=len(staged.units),
            removed=0,
        )

    def abort(self) -> None:
        """Drop the staged products: a full writer deletes its index."""
        if self._closed:
            return
        self._closed = True
        if self._full:
            self._store._drop_index(self.index)
        elif self._staged.units:
            logger.warning(
                "aborted a write of %d products to the live index %s: what was sent stays "
                "there, unseen until its next refresh",
                len(self._staged.units),
                self.index,
            )


def _client_url(client: Elasticsearch) -> str:
    """The node URLs of a client made elsewhere, for error messages."""
    try:
        nodes = client.transport.node_pool.all()
        return ", ".join(str(node.base_url) for node in nodes) or DEFAULT_URL
    except AttributeError:
        return "the configured Elasticsearch"


__all__ = [
    "ElasticsearchStore",
    "ElasticsearchWriter",
    "category_prefixes",
    "filter_clauses",
    "index_body",
    "unit_document",
]
