"""Writes: `ElasticsearchWriter` streams products into a generation's index with ``_bulk``
requests sent in parallel, and makes them visible on commit (an alias swap or a refresh)."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from elasticsearch import Elasticsearch
from elasticsearch.helpers import streaming_bulk

from retrieval.stores.base import (
    CommitReport,
    ProductRecord,
    StoreError,
    WriteFailure,
    cross_vectors_problem,
    normalized,
    vectors_problem,
)
from retrieval.stores.elasticsearch.errors import reason, translated
from retrieval.stores.elasticsearch.mapping import TEXT_FIELDS, unit_document

if TYPE_CHECKING:
    from retrieval.stores.elasticsearch.store import ElasticsearchStore

logger = logging.getLogger(__name__)

TERMS_CHUNK = 1_000  # product ids per terms query / delete_by_query
_MIN_BULK = 64  # actions per request below which splitting a write gains nothing


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    """Consecutive slices of at most ``size`` items."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _send_group(client: Elasticsearch, actions: Sequence[dict[str, Any]]) -> dict[str, str]:
    errors: dict[str, str] = {}
    for ok, item in streaming_bulk(
        client,
        actions,
        chunk_size=len(actions),
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
        errors.setdefault(str(result.get("_id")), reason(result.get("error")))
    return errors


def send_bulk(
    client: Elasticsearch,
    actions: Sequence[dict[str, Any]],
    *,
    url: str,
    chunk_size: int,
    pool: ThreadPoolExecutor | None = None,
    threads: int = 1,
) -> dict[str, str]:
    """Send index/delete actions in ``_bulk`` requests of at most ``chunk_size`` actions, up to
    ``threads`` of them at once on ``pool`` (rejected ones retried with back-off); returns the
    first error per ``_id`` (a delete of a missing document is no error). The actions of one
    call must name distinct ids: requests run in any order."""
    errors: dict[str, str] = {}
    if not actions:
        return errors
    size = max(1, chunk_size)
    if pool is not None and threads > 1:
        # Smaller requests when that lets every thread have one.
        size = min(size, max(_MIN_BULK, -(-len(actions) // threads)))
    groups = list(chunks(actions, size))
    with translated(url, "write documents"):
        if pool is None or len(groups) == 1:
            results = [_send_group(client, group) for group in groups]
        else:
            results = list(pool.map(lambda group: _send_group(client, group), groups))
    for found in results:
        for unit_id, why in found.items():
            errors.setdefault(unit_id, why)
    return errors


def record_problem(record: ProductRecord) -> str | None:
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
    return vectors_problem(record.embeddings, len(units), None)


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

    With a ``cross_model`` every record needs its cross-lingual vectors (``cross_dim``-d);
    without one, records' cross-lingual vectors are left out (the store's `writer` decided).
    """

    def __init__(
        self,
        store: ElasticsearchStore,
        *,
        index: str,
        embedding_model: str,
        dim: int,
        full: bool,
        cross_model: str | None = None,
        cross_dim: int = 0,
    ) -> None:
        self._store = store
        self.index = index
        self._embedding_model = embedding_model
        self.dim = dim  # Elasticsearch checks every vector against the mapping
        self._full = full
        self.cross_model = cross_model
        self.cross_dim = cross_dim
        self._staged = _Staged()
        self._closed = False
        self._pool: ThreadPoolExecutor | None = None  # bulk requests in parallel; on first use

    def _send(self, actions: Sequence[dict[str, Any]]) -> dict[str, str]:
        store = self._store
        if self._pool is None and store.bulk_threads > 1 and len(actions) > _MIN_BULK:
            self._pool = ThreadPoolExecutor(store.bulk_threads, thread_name_prefix="es-bulk")
        return send_bulk(
            store._admin,
            actions,
            url=store.url,
            chunk_size=store.chunk_size,
            pool=self._pool,
            threads=store.bulk_threads,
        )

    def _close(self) -> None:
        self._closed = True
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

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
            problem = record_problem(record)
            if problem is None and self.cross_model is not None:
                problem = cross_vectors_problem(record, self.cross_model, self.cross_dim)
            if problem is not None:
                failures.append(WriteFailure(record.product.id, problem))
            else:
                batch[record.product.id] = record
        actions: list[dict[str, Any]] = []
        owner: dict[str, str] = {}  # unit id -> product id
        rewritten: set[str] = set()  # products whose earlier units this batch deletes
        for pid, record in batch.items():
            vectors = normalized(record.embeddings)
            cross = None
            if self.cross_model is not None and record.cross_embeddings is not None:
                cross = normalized(record.cross_embeddings)
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
                            cross_vector=None if cross is None else cross[position],
                        ),
                    }
                )
            new_ids = {unit.id for unit in record.units}
            for old_id in self._staged.units.get(pid, []):  # written earlier by this writer
                if old_id not in new_ids:
                    owner[old_id] = pid
                    rewritten.add(pid)
                    actions.append({"_op_type": "delete", "_index": self.index, "_id": old_id})
        errors = self._send(actions)
        failed: dict[str, str] = {}
        for unit_id, why in errors.items():
            failed.setdefault(owner.get(unit_id, unit_id), f"unit {unit_id}: {why}")
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
        leftover = self._send(cleanup)
        if leftover:
            msg = f"could not take back the units of refused products: {leftover}"
            raise StoreError(msg)
        for failure in failures:
            logger.warning("product %s not written: %s", failure.product_id, failure.reason)
        return failures

    def commit(self) -> CommitReport:
        """Make the written products visible: swap the alias (full) or refresh (live)."""
        self._check_open()
        self._close()
        if self._full:
            return self._commit_full()
        return self._commit_live()

    def _commit_full(self) -> CommitReport:
        store, staged = self._store, self._staged
        try:
            store._refresh(self.index)
            store._merge(self.index)
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
        for chunk in chunks(items, TERMS_CHUNK):
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
        for pids in chunks(dropped, TERMS_CHUNK):
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
        self._close()
        if self._full:
            self._store._drop_index(self.index)
        elif self._staged.units:
            logger.warning(
                "aborted a write of %d products to the live index %s: what was sent stays "
                "there, unseen until its next refresh",
                len(self._staged.units),
                self.index,
            )
