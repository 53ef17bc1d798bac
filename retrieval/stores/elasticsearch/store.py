"""The reading side of the Elasticsearch store, and the index administration its writers use.

Every catalog generation is its own index, ``{alias}-{YYYYmmddtHHMMSS}-{8 hex}``, and searches go
through the alias. A full re-index (``writer(prune=True)``, or the first build) fills a new index,
checks it and then moves the alias in one ``update_aliases`` call, so searches see the old index
or the new one, never a half-built one; the old index is deleted afterwards. Smaller writes
(``prune=False``) go to the live index and keep its embedding and cross-lingual models. Indices
never refresh on their own (``refresh_interval: -1``): the store refreshes on commit, so staged
writes stay invisible until then. The catalog version is the index name plus a write counter
kept in the index's ``_meta``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
from elasticsearch import Elasticsearch, NotFoundError

from retrieval.breaker import CircuitBreaker
from retrieval.schema import Filters, Product, Unit, UnitKind
from retrieval.stores.base import (
    KnownVectors,
    ScoredUnit,
    StoreError,
    StoreStats,
    StoreUnavailable,
    cross_write_model,
)
from retrieval.stores.elasticsearch.errors import (
    BreakerOpen,
    RetryableSearch,
    reason,
    retry_failed,
    search_hits,
    translated,
)
from retrieval.stores.elasticsearch.mapping import (
    CROSS_SOURCE,
    DEFAULT_URL,
    Generation,
    cross_vector_of,
    format_problem,
    generation_pattern,
    index_body,
    model_problem,
    new_index_name,
    vector_of,
)
from retrieval.stores.elasticsearch.queries import (
    MAX_WINDOW,
    crosslingual_body,
    lexical_body,
    lexical_hits,
    product_body,
    products_body,
    semantic_body,
    semantic_hits,
    unit_of,
    units_body,
)
from retrieval.stores.elasticsearch.writer import TERMS_CHUNK, ElasticsearchWriter, chunks
from retrieval.text import Script

logger = logging.getLogger(__name__)

_MGET_CHUNK = 1_000
_MERGE_TIMEOUT_S = 3_600.0  # a force merge of millions of vectors takes minutes
_VECTOR_FIELDS = ["vector", "embedding"]  # `vector_of` reads either (format 3 or 2)
_SWAP_GRACE_S = 0.5  # searches already routed to the old index finish before it goes
_ADMIN_TIMEOUT_S = 120.0  # bulk, refresh, delete_by_query
# What `search_hits` reads of an ``_msearch`` answer, nothing else (``_index``, ``_id``, ``took``,
# totals). Every answer keeps its ``status``, so none is dropped from the list as empty.
_FILTER_PATH = [
    "responses.status",
    "responses.error",
    "responses._shards.failed",
    "responses._shards.failures",
    "responses.hits.hits._score",
    "responses.hits.hits._source",
    "responses.hits.hits.highlight",
]


class ElasticsearchStore:
    """`DocumentStore` on Elasticsearch 8.12+; connects lazily, on the first request.

    ``request_timeout_s`` is the deadline of each search, mget and mapping lookup (the calls
    of the request path; a timeout is not retried, a refused or dropped connection twice);
    index administration and bulk writes wait at least ``_ADMIN_TIMEOUT_S``. With a
    ``breaker``, every call goes through it: a `StoreUnavailable` (timeout, no connection,
    429/503) opens it, and while it is open calls raise `BreakerOpen` at once, without calling
    Elasticsearch (serving sets one; the indexer does not, so that each of its calls is tried).
    """

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
        bulk_threads: int = 2,
        connections_per_node: int = 32,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self.alias = alias
        self.shards = shards
        self.replicas = replicas
        self.chunk_size = chunk_size
        self.bulk_threads = bulk_threads
        self.version_ttl_s = version_ttl_s
        self._own_client = client is None
        if client is None:
            self.url = url or DEFAULT_URL
            # Keep-alive connections, enough for every serving thread and the bulk threads (the
            # client's default, 10, makes the 11th concurrent request wait for one).
            client = Elasticsearch(
                self.url,
                request_timeout=request_timeout_s,
                max_retries=2,
                retry_on_timeout=False,
                connections_per_node=connections_per_node,
                http_compress=False,
            )
        else:
            self.url = url or _client_url(client)
        self._client = client
        self._admin = client.options(request_timeout=max(request_timeout_s, _ADMIN_TIMEOUT_S))
        self.breaker = breaker
        self._lock = threading.Lock()
        self._generation_cache: tuple[float, Generation | None] | None = None
        self._stats_cache: tuple[float, StoreStats] | None = None
        self._brands_cache: tuple[str, list[str]] | None = None

    # -- plumbing --------------------------------------------------------------------------

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """Translate client errors into `StoreUnavailable` / `StoreError`, through the breaker
        when there is one: `BreakerOpen` at once while it is open; a `StoreUnavailable` opens
        it (raised as `BreakerOpen`, with the pause); any answer, a refusal too, closes it."""
        breaker = self.breaker
        if breaker is None:
            with translated(self.url, action):
                yield
            return
        if not breaker.allow():
            wait = breaker.retry_in()
            msg = (
                f"Elasticsearch at {self.url} is not called ({action}) for {wait:.1f} s more: "
                "it failed lately (circuit breaker open)"
            )
            raise BreakerOpen(msg, retry_after_s=wait)
        try:
            with translated(self.url, action):
                yield
        except StoreUnavailable as exc:
            breaker.failed(exc)
            raise BreakerOpen(str(exc), retry_after_s=breaker.retry_in()) from exc
        except Exception:
            breaker.succeeded()  # Elasticsearch answered, if with a refusal
            raise
        breaker.succeeded()

    def _invalidate(self) -> None:
        with self._lock:
            self._generation_cache = None
            self._stats_cache = None

    def _generation(self, *, fresh: bool = False) -> Generation | None:
        """The index behind the alias and its ``_meta``, cached for ``version_ttl_s``."""
        now = time.monotonic()
        with self._lock:
            cached = self._generation_cache
            if not fresh and cached is not None and now - cached[0] < self.version_ttl_s:
                return cached[1]
        generation: Generation | None
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
                generation = Generation(name, dict(body["mappings"].get("_meta", {})))
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
            # Indices refresh only on commit, so cached shard results stay valid until then.
            "request_cache": True,
        }
        searches: list[Mapping[str, Any]] = []
        for body in wanted:
            searches.extend((header, body))
        for attempt in (1, 2):
            try:
                with self._errors("search"):
                    response = self._client.msearch(searches=searches, filter_path=_FILTER_PATH)
                    results = [search_hits(item, self.url) for item in response["responses"]]
                break
            except RetryableSearch as exc:
                if attempt == 2:  # still not serving: 503, not 500
                    raise retry_failed(exc, self.url) from exc
        found = iter(results)
        return [next(found) if body is not None else [] for body in bodies]

    def _search_index(self, index: str, **body: Any) -> dict[str, Any]:
        with self._errors("search"):
            return dict(self._client.search(index=index, **body).body)

    # -- writes ----------------------------------------------------------------------------

    def writer(
        self,
        *,
        embedding_model: str,
        dim: int,
        prune: bool = False,
        cross_model: str | None = None,
        cross_dim: int = 0,
    ) -> ElasticsearchWriter:
        """Start a write; see `DocumentStore.writer`.

        ``prune`` (and the first write) builds a new index with the write's models and swaps the
        alias on commit; otherwise products are upserted into the live index, which must have
        the same models (an index without cross-lingual vectors takes the write without them).
        An empty live index of other models is built afresh instead.
        """
        if cross_model is not None and cross_dim <= 0:
            msg = f"cross-lingual vectors of '{cross_model}' need a dimension, not {cross_dim}"
            raise StoreError(msg)
        current = None if prune else self._generation(fresh=True)
        problem = None if current is None else format_problem(current)
        if problem is not None:
            raise StoreError(problem)
        if current is not None:
            problem = model_problem(current, embedding_model, dim)
            held = current.cross_embedding_model
            held_dim = int(current.meta.get("cross_dim") or 0)
            other_cross = held != cross_model or (held is not None and held_dim != cross_dim)
            if (problem is not None or other_cross) and self._count(current.index) == 0:
                current = None  # an empty index: build afresh
            elif problem is not None:
                raise StoreError(problem)
        if current is not None:
            cross = cross_write_model(held, held_dim, cross_model, cross_dim, index=current.index)
            if cross is not None:  # indexes of format 4 written before it lack the field
                with self._errors(f"add the cross-lingual source field to {current.index}"):
                    self._admin.indices.put_mapping(index=current.index, properties=CROSS_SOURCE)
            return ElasticsearchWriter(
                self,
                index=current.index,
                embedding_model=embedding_model,
                dim=dim,
                full=False,
                cross_model=cross,
                cross_dim=held_dim if cross is not None else 0,
            )
        index = new_index_name(self.alias)
        body = index_body(
            embedding_model=embedding_model,
            dim=dim,
            shards=self.shards,
            replicas=self.replicas,
            cross_model=cross_model,
            cross_dim=cross_dim,
        )
        with self._errors(f"create the index {index}"):
            self._admin.indices.create(index=index, **body)
        logger.info("building index %s behind alias %s", index, self.alias)
        return ElasticsearchWriter(
            self,
            index=index,
            embedding_model=embedding_model,
            dim=dim,
            full=True,
            cross_model=cross_model,
            cross_dim=cross_dim if cross_model is not None else 0,
        )

    def _refresh(self, index: str) -> None:
        with self._errors(f"refresh {index}"):
            self._admin.indices.refresh(index=index)

    def _merge(self, index: str) -> None:
        """Merge a new index's segments into one per shard before it goes live: a kNN search
        visits every segment's graph, so one graph answers faster (measured: 10.7 -> 7.9 ms a
        kNN at 17k units), and BM25 skips the per-segment overhead."""
        start = time.perf_counter()
        with self._errors(f"merge the segments of {index}"):
            self._admin.options(request_timeout=_MERGE_TIMEOUT_S).indices.forcemerge(
                index=index, max_num_segments=1
            )
        seconds = time.perf_counter() - start
        logger.info("merged %s into one segment per shard in %.1f s", index, seconds)

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
            for chunk in chunks(product_ids, TERMS_CHUNK)
        )

    def _delete_by_query(self, index: str, query: Mapping[str, Any]) -> int:
        with self._errors(f"delete documents from {index}"):
            response = self._admin.delete_by_query(
                index=index, query=query, conflicts="proceed", refresh=False
            )
        if response.get("failures"):
            why = reason(response["failures"])
            msg = f"Elasticsearch could not remove documents of {index}: {why}"
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
        return Generation(index, meta).version

    def _removed_by(self, previous: Generation | None, written: Sequence[str]) -> int:
        """How many products of the previous index are not among ``written``."""
        if previous is None:
            return 0
        return self._count_products(previous.index) - self._count_products(previous.index, written)

    def _point_alias(self, index: str, previous: Generation | None) -> None:
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

    def _retire(self, previous: Generation | None) -> None:
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
            for chunk in chunks(ids, TERMS_CHUNK):
                self._delete_by_query(current.index, {"terms": {"product_id": list(chunk)}})
            self._refresh(current.index)
            version = self._bump_version(current.index)
            logger.info("deleted %d products; index version %s", existing, version)
        return existing

    # -- reads -----------------------------------------------------------------------------

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
        (hits,) = self._msearch([lexical_body(query, kinds, filters, top_k, boosts)])
        return lexical_hits(hits)

    def semantic(
        self,
        vector: np.ndarray,
        *,
        kinds: Sequence[UnitKind],
        filters: Filters | None,
        top_k: int,
    ) -> list[ScoredUnit]:
        """Nearest units by cosine similarity, filtered inside the kNN search, best first."""
        (hits,) = self._msearch([semantic_body(vector, kinds, filters, top_k)])
        return semantic_hits(hits)

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
        bodies = [lexical_body(query, kinds, filters, top_k, boosts)]
        if vector is not None:
            bodies.append(semantic_body(vector, kinds, filters, top_k))
        lexical, *semantic = self._msearch(bodies)
        return lexical_hits(lexical), semantic_hits(semantic[0]) if semantic else []

    def crosslingual(
        self,
        vector: np.ndarray,
        *,
        model: str,
        script: Script,
        kinds: Sequence[UnitKind],
        filters: Filters | None,
        top_k: int,
    ) -> list[ScoredUnit]:
        """Nearest units in the cross-lingual space among those not written in ``script``,
        filtered inside the kNN search, best first; empty when the index behind the alias
        holds no cross-lingual vectors of ``model``."""
        current = self._generation()
        if current is None or current.cross_embedding_model != model:
            return []
        try:
            (hits,) = self._msearch([crosslingual_body(vector, script, kinds, filters, top_k)])
        except StoreError:
            fresh = self._generation(fresh=True)
            if fresh is None or fresh.cross_embedding_model != model:
                return []  # swapped under us to an index without them
            raise
        return semantic_hits(hits)

    def get_product(self, product_id: str) -> Product | None:
        """The product with this id, or None."""
        (hits,) = self._msearch([product_body(product_id)])
        if not hits:
            return None
        return Product.model_validate(hits[0]["_source"]["product"])

    def get_products(self, product_ids: Sequence[str]) -> dict[str, Product]:
        """The products with these ids (unknown ids left out), in one search."""
        wanted = list(dict.fromkeys(product_ids))[:MAX_WINDOW]
        if not wanted:
            return {}
        (hits,) = self._msearch([products_body(wanted)])
        products = (Product.model_validate(h["_source"]["product"]) for h in hits)
        return {p.id: p for p in products}

    def get_units(self, product_id: str, kinds: Sequence[UnitKind] | None = None) -> list[Unit]:
        """The product's units in their indexed order, optionally only these kinds."""
        (hits,) = self._msearch([units_body(product_id, kinds)])
        return [unit_of(hit["_source"]) for hit in hits]

    def product_vectors(self, product_ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored vectors of these products' own units (unknown ids left out)."""
        ids = list(dict.fromkeys(product_ids))
        sources = self._committed_sources(ids, ["kind", *_VECTOR_FIELDS], "read product vectors")
        vectors = {
            doc_id: vector_of(source)
            for doc_id, source in sources
            if source.get("kind") == "product"
        }
        return {doc_id: vector for doc_id, vector in vectors.items() if vector is not None}

    def known_vectors(
        self, units: Sequence[Unit], embedding_model: str, cross_model: str | None = None
    ) -> KnownVectors:
        """The stored vectors of the units whose text is unchanged (see `DocumentStore`)."""
        wanted = {unit.id: unit for unit in units}
        current = self._generation()
        same = current is not None and current.embedding_model == embedding_model
        cross = (
            current is not None
            and cross_model is not None
            and current.cross_embedding_model == cross_model
        )
        known = KnownVectors()
        if not (same or cross):
            return known
        fields = ["text", "embedding_model", *_VECTOR_FIELDS, *(["cross_vector"] if cross else [])]
        for doc_id, source in self._committed_sources(list(wanted), fields, "read stored vectors"):
            if source.get("text") != wanted[doc_id].text:
                continue
            vector = vector_of(source) if same else None
            if vector is not None and source.get("embedding_model") == embedding_model:
                known.embeddings[doc_id] = vector
            cross_vector = cross_vector_of(source) if cross else None
            if cross_vector is not None:
                known.cross[doc_id] = cross_vector
        return known

    def _committed_sources(
        self, ids: list[str], fields: list[str], what: str
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """(id, ``_source`` with ``fields``) of the committed documents among ``ids``, read in
        chunks; nothing more once the index is gone."""
        if not ids or self._generation() is None:
            return
        for chunk in chunks(ids, _MGET_CHUNK):
            with self._errors(what):
                try:
                    response = self._client.mget(
                        index=self.alias,
                        ids=list(chunk),
                        realtime=False,  # what searches see: committed documents only
                        source_includes=fields,
                    )
                except NotFoundError:
                    return
            for doc in response["docs"]:
                source = doc.get("_source")
                if doc.get("found") and source is not None:
                    yield doc["_id"], source

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
                cross_embedding_model=current.cross_embedding_model,
            )
        with self._lock:
            self._stats_cache = (now, stats)
        return stats

    def drop(self) -> list[str]:
        """Delete every index of this alias's generations (and so the alias); returns their
        names. Indices of other aliases sharing the prefix are left alone."""
        own = generation_pattern(self.alias)
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


def _client_url(client: Elasticsearch) -> str:
    """The node URLs of a client made elsewhere, for error messages."""
    try:
        nodes = client.transport.node_pool.all()
        return ", ".join(str(node.base_url) for node in nodes) or DEFAULT_URL
    except AttributeError:
        return "the configured Elasticsearch"
