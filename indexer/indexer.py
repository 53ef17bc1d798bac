"""The indexing job: read a catalog, turn products into units, embed in batches, write.

Bad rows are reported and skipped; everything else is indexed. Unchanged texts keep their
stored vectors, so re-indexing a catalog only embeds what changed. Nothing becomes visible
until the final commit, which is atomic.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice

import numpy as np
from tqdm import tqdm

from indexer.reader import Row, RowError
from indexer.units import product_units
from retrieval.embedders.base import Embedder
from retrieval.schema import Product
from retrieval.stores.base import DocumentStore, ProductRecord

logger = logging.getLogger(__name__)


@dataclass
class IndexReport:
    """What an indexing run did."""

    read: int = 0
    indexed: int = 0
    skipped: int = 0
    removed: int = 0
    units: int = 0
    embedded: int = 0
    reused_embeddings: int = 0
    seconds: float = 0.0
    version: str | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """False when nothing could be indexed (an empty catalog included)."""
        return self.indexed > 0


def _batches(rows: Iterable[Row | RowError], size: int) -> Iterator[list[Row | RowError]]:
    iterator = iter(rows)
    while batch := list(islice(iterator, size)):
        yield batch


def index_catalog(
    rows: Iterable[Row | RowError],
    store: DocumentStore,
    embedder: Embedder,
    *,
    prune: bool = False,
    batch_size: int = 256,
    progress: bool = True,
    max_reported_errors: int = 1000,
) -> IndexReport:
    """Index every valid row; with ``prune``, remove stored products absent from ``rows``."""
    started = time.perf_counter()
    report = IndexReport()
    embedder.warm_up()
    writer = store.writer(embedding_model=embedder.name, dim=embedder.dim, prune=prune)
    bar = tqdm(desc="indexing", unit=" products", disable=not progress)
    seen: dict[str, tuple[str, int]] = {}
    try:
        for batch in _batches(rows, batch_size):
            products: dict[str, Product] = {}
            for row in batch:
                report.read += 1
                if isinstance(row, RowError):
                    _skip(report, str(row), max_reported_errors)
                    continue
                pid = row.product.id
                if pid in seen:
                    first = seen[pid]
                    logger.warning(
                        "%s:%d: product %s repeats %s:%d; the later row wins",
                        row.path,
                        row.line,
                        pid,
                        first[0],
                        first[1],
                    )
                seen[pid] = (row.path, row.line)
                products[pid] = row.product
            failures = writer.write(_records(list(products.values()), store, embedder, report))
            for failure in failures:
                _skip(
                    report, f"product {failure.product_id}: {failure.reason}", max_reported_errors
                )
            report.indexed += len(products) - len(failures)
            bar.update(len(batch))
            if not progress and report.read % (batch_size * 20) < len(batch):
                logger.info("read %d rows, indexed %d products", report.read, report.indexed)
        if report.indexed == 0:  # never let an empty or broken file prune the index
            writer.abort()
        else:
            committed = writer.commit()
            report.removed = committed.removed
            report.version = committed.version
    except BaseException:
        writer.abort()
        raise
    finally:
        bar.close()
    report.indexed = min(report.indexed, len(seen))
    report.seconds = time.perf_counter() - started
    return report


def _skip(report: IndexReport, message: str, limit: int) -> None:
    report.skipped += 1
    logger.warning("skipped %s", message)
    if len(report.errors) < limit:
        report.errors.append(message)


def _records(
    products: list[Product], store: DocumentStore, embedder: Embedder, report: IndexReport
) -> list[ProductRecord]:
    """Units and vectors for a batch; vectors of unchanged texts come from the store."""
    units_of = {p.id: product_units(p) for p in products}
    all_units = [u for units in units_of.values() for u in units]
    known = store.known_embeddings(all_units, embedder.name)
    missing = [u for u in all_units if u.id not in known]
    texts = list(dict.fromkeys(u.text for u in missing))  # a text repeated in the batch: once
    if texts:
        by_text = dict(zip(texts, embedder.embed_documents(texts), strict=True))
        known.update({u.id: by_text[u.text] for u in missing})
    report.units += len(all_units)
    report.embedded += len(texts)
    report.reused_embeddings += len(all_units) - len(texts)
    return [
        ProductRecord(
            product=p,
            units=units_of[p.id],
            embeddings=np.vstack([known[u.id] for u in units_of[p.id]])
            if units_of[p.id]
            else np.zeros((0, embedder.dim), np.float32),
        )
        for p in products
    ]
