"""The indexing job: read a catalog, turn products into units, embed in batches, write.

Bad rows are reported and skipped; everything else is indexed. Unchanged texts keep their
stored vectors, so re-indexing a catalog only embeds what changed. Nothing becomes visible
until the final commit, which is atomic.

Three stages overlap, joined by bounded queues (`indexer.pipeline`), so memory does not grow
with the catalog:

    read     a thread: pulls ``batch_size`` rows at a time, drops bad rows, builds the units
             and looks up the vectors the store already has (`DocumentStore.known_vectors`)
    embed    the calling thread: gathers whole batches until about ``embed_batch`` units are
             waiting and embeds their missing texts in one call (a text repeated there: once),
             and likewise with the cross-lingual embedder when there is one
    write    one thread, the only one calling `IndexWriter.write`, batch by batch in catalog
             order, so a product id read again later replaces the earlier one

Any error in a stage (an interrupt included) stops the others, aborts the writer and is raised
again in the caller; nothing is committed then.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice

import numpy as np
from tqdm import tqdm

from indexer.pipeline import Pipeline
from indexer.reader import Row, RowError
from indexer.units import product_units
from retrieval.embedders.base import Embedder
from retrieval.schema import Product, Unit
from retrieval.stores.base import DocumentStore, IndexWriter, KnownVectors, ProductRecord

logger = logging.getLogger(__name__)

EMBED_BATCH = 2048
"""Units gathered for one `Embedder.embed_documents` call (length sorting works per call)."""
PREFETCH_BATCHES = 8
"""Batches the read stage may have ready before the embedder takes them."""
_LOG_EVERY_BATCHES = 20


@dataclass
class IndexReport:
    """What an indexing run did.

    ``stage_seconds`` holds the time spent in each stage: ``read`` (pulling and validating
    rows), ``units``, ``lookup`` (stored vectors), ``embed``, ``write``, ``commit`` (opening
    the writer and committing), and how long the embedder waited: ``waiting_for_batches``
    (the read stage was behind) and ``waiting_for_writer`` (the write stage was behind). The
    stages run at the same time, so these add up to more than ``seconds``.
    """

    read: int = 0
    indexed: int = 0
    skipped: int = 0
    removed: int = 0
    units: int = 0
    embedded: int = 0
    reused_embeddings: int = 0
    cross_embedded: int = 0  # texts the cross-lingual embedder embedded
    reused_cross_embeddings: int = 0
    seconds: float = 0.0
    version: str | None = None
    errors: list[str] = field(default_factory=list)
    stage_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """False when nothing could be indexed (an empty catalog included)."""
        return self.indexed > 0


@dataclass
class _Batch:
    """Up to ``batch_size`` catalog rows on their way through the stages."""

    rows: int
    products: list[Product]
    units_of: dict[str, list[Unit]]
    known: KnownVectors
    missing: list[Unit]  # units without a stored vector
    cross_missing: list[Unit]  # units without a stored cross-lingual vector (when wanted)
    records: list[ProductRecord] = field(default_factory=list)

    @property
    def units(self) -> int:
        return sum(len(units) for units in self.units_of.values())


class _Run:
    """The report, shared by the stages, and the clocks of each (one stage per clock)."""

    def __init__(self, report: IndexReport, max_reported_errors: int) -> None:
        self.report = report
        self.max_reported_errors = max_reported_errors
        self.seconds: dict[str, float] = defaultdict(float)
        self.seen: dict[str, tuple[str, int]] = {}
        self._lock = threading.Lock()

    def skip(self, message: str) -> None:
        logger.warning("skipped %s", message)
        with self._lock:
            self.report.skipped += 1
            if len(self.report.errors) < self.max_reported_errors:
                self.report.errors.append(message)

    def add_indexed(self, count: int) -> None:
        with self._lock:
            self.report.indexed += count

    @contextlib.contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        """Add the time the block takes to ``stage``'s clock."""
        clock = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] += time.perf_counter() - clock


def index_catalog(
    rows: Iterable[Row | RowError],
    store: DocumentStore,
    embedder: Embedder,
    *,
    prune: bool = False,
    batch_size: int = 256,
    progress: bool = True,
    max_reported_errors: int = 1000,
    embed_batch: int = EMBED_BATCH,
    prefetch_batches: int = PREFETCH_BATCHES,
    cross_embedder: Embedder | None = None,
) -> IndexReport:
    """Index every valid row; with ``prune``, remove stored products absent from ``rows``.
    With a ``cross_embedder`` (multilingual), every unit also gets its cross-lingual vector.

    ``batch_size`` rows go to the store in one write; the units of whole batches are embedded
    together until about ``embed_batch`` of them wait; the read stage runs at most
    ``prefetch_batches`` batches ahead of the embedder. A product id repeated in ``rows``: the
    later row wins, with a warning. Whatever a stage raises is raised here after the writer is
    aborted.
    """
    if min(batch_size, embed_batch, prefetch_batches) < 1:
        msg = "batch_size, embed_batch and prefetch_batches must be positive"
        raise ValueError(msg)
    started = time.perf_counter()
    report = IndexReport()
    run = _Run(report, max_reported_errors)
    embedder.warm_up()
    if cross_embedder is not None:
        cross_embedder.warm_up()
    with run.timed("commit"):  # opening it: Elasticsearch creates the index here
        writer = store.writer(
            embedding_model=embedder.name,
            dim=embedder.dim,
            prune=prune,
            cross_model=cross_embedder.name if cross_embedder is not None else None,
            cross_dim=cross_embedder.dim if cross_embedder is not None else 0,
        )
    bar = tqdm(desc="indexing", unit=" products", disable=not progress)
    pipeline = Pipeline()
    prepared: queue.Queue[_Batch | None] = queue.Queue(maxsize=prefetch_batches)
    embedded: queue.Queue[list[_Batch] | None] = queue.Queue(maxsize=1)
    error: BaseException | None = None
    try:
        pipeline.start(
            "indexer-read",
            lambda: _read_stage(
                rows,
                store,
                (embedder.name, cross_embedder.name if cross_embedder is not None else None),
                batch_size,
                run,
                pipeline,
                prepared,
            ),
        )
        pipeline.start(
            "indexer-write",
            lambda: _write_stage(writer, batch_size, progress, bar, run, pipeline, embedded),
        )
        _embed_stage(embedder, cross_embedder, embed_batch, run, pipeline, prepared, embedded)
        pipeline.join()
        pipeline.check()  # the writer may have failed on the last batches
        if report.indexed == 0:  # never let an empty or broken file prune the index
            writer.abort()
        else:
            with run.timed("commit"):
                committed = writer.commit()
            report.removed = committed.removed
            report.version = committed.version
    except BaseException as exc:  # noqa: BLE001 - an interrupt too: raised below, after abort
        pipeline.fail(exc)
        error = pipeline.error
        pipeline.join()  # the write stage is done before the writer is aborted
        _abort(writer)
    finally:
        bar.close()
    if error is not None:
        raise error
    report.indexed = min(report.indexed, len(run.seen))
    report.seconds = time.perf_counter() - started
    report.stage_seconds = {name: round(s, 6) for name, s in run.seconds.items()}
    return report


def _abort(writer: IndexWriter) -> None:
    try:
        writer.abort()
    except Exception:  # the error that got us here matters more
        logger.exception("could not abort the index writer")


def _batches(
    rows: Iterable[Row | RowError], size: int, run: _Run
) -> Iterator[list[Row | RowError]]:
    iterator = iter(rows)
    while True:
        with run.timed("read"):
            batch = list(islice(iterator, size))
        if not batch:
            return
        yield batch


def _read_stage(
    rows: Iterable[Row | RowError],
    store: DocumentStore,
    models: tuple[str, str | None],
    batch_size: int,
    run: _Run,
    pipeline: Pipeline,
    out: queue.Queue[_Batch | None],
) -> None:
    """Batches of valid products with their units and the vectors the store already has, of
    ``models`` (the embedder's and the cross-lingual embedder's, None without one)."""
    embedding_model, cross_model = models
    report = run.report
    seen = run.seen
    for batch in _batches(rows, batch_size, run):
        pipeline.check()
        products: dict[str, Product] = {}
        for row in batch:
            report.read += 1
            if isinstance(row, RowError):
                run.skip(str(row))
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
        with run.timed("units"):
            units_of = {pid: product_units(p) for pid, p in products.items()}
        all_units = [u for units in units_of.values() for u in units]
        with run.timed("lookup"):
            known = (
                store.known_vectors(all_units, embedding_model, cross_model)
                if all_units
                else KnownVectors()
            )
        missing = [u for u in all_units if u.id not in known.embeddings]
        cross_missing = (
            [u for u in all_units if u.id not in known.cross] if cross_model is not None else []
        )
        pipeline.put(
            out,
            _Batch(len(batch), list(products.values()), units_of, known, missing, cross_missing),
        )
    pipeline.put(out, None)


def _embed_stage(
    embedder: Embedder,
    cross_embedder: Embedder | None,
    embed_batch: int,
    run: _Run,
    pipeline: Pipeline,
    inbox: queue.Queue[_Batch | None],
    out: queue.Queue[list[_Batch] | None],
) -> None:
    """Gather whole batches until ``embed_batch`` units (or rows) wait, embed, hand on."""
    group: list[_Batch] = []
    units = rows = 0
    while True:
        with run.timed("waiting_for_batches"):
            batch = pipeline.get(inbox)
        if batch is not None:
            group.append(batch)
            units += batch.units
            rows += batch.rows
            if units < embed_batch and rows < embed_batch:
                continue
        if group:
            _embed_group(group, embedder, cross_embedder, run)
            with run.timed("waiting_for_writer"):
                pipeline.put(out, group)
            group = []
            units = rows = 0
        if batch is None:
            pipeline.put(out, None)
            return


def _embed_group(
    group: list[_Batch], embedder: Embedder, cross_embedder: Embedder | None, run: _Run
) -> None:
    """Fill in each batch's records; the group's missing texts are embedded in one call per
    embedder."""
    report = run.report
    by_text = _embedded(embedder, [u for batch in group for u in batch.missing], run, "embed")
    units = sum(batch.units for batch in group)
    report.units += units
    report.embedded += len(by_text)
    report.reused_embeddings += units - len(by_text)
    cross_by_text: dict[str, np.ndarray] = {}
    if cross_embedder is not None:
        cross_by_text = _embedded(
            cross_embedder, [u for batch in group for u in batch.cross_missing], run, "embed_cross"
        )
        report.cross_embedded += len(cross_by_text)
        report.reused_cross_embeddings += units - len(cross_by_text)
    for batch in group:
        known = batch.known.embeddings
        known.update({u.id: by_text[u.text] for u in batch.missing})
        cross = batch.known.cross
        cross.update({u.id: cross_by_text[u.text] for u in batch.cross_missing})
        batch.records = [
            ProductRecord(
                product=p,
                units=batch.units_of[p.id],
                embeddings=_rows([known[u.id] for u in batch.units_of[p.id]], embedder.dim),
                cross_embeddings=_rows(
                    [cross[u.id] for u in batch.units_of[p.id]], cross_embedder.dim
                )
                if cross_embedder is not None
                else None,
            )
            for p in batch.products
        ]
        batch.known, batch.missing, batch.cross_missing = KnownVectors(), [], []


def _embedded(
    embedder: Embedder, units: list[Unit], run: _Run, stage: str
) -> dict[str, np.ndarray]:
    """The vectors of the units' texts, by text (a text repeated: embedded once)."""
    texts = list(dict.fromkeys(u.text for u in units))
    if not texts:
        return {}
    with run.timed(stage):
        return dict(zip(texts, embedder.embed_documents(texts), strict=True))


def _rows(vectors: list[np.ndarray], dim: int) -> np.ndarray:
    return np.vstack(vectors) if vectors else np.zeros((0, dim), np.float32)


def _write_stage(
    writer: IndexWriter,
    batch_size: int,
    progress: bool,
    bar: tqdm,  # type: ignore[type-arg]
    run: _Run,
    pipeline: Pipeline,
    inbox: queue.Queue[list[_Batch] | None],
) -> None:
    """Write each batch in catalog order, the only caller of ``writer.write``."""
    done = 0
    log_every = batch_size * _LOG_EVERY_BATCHES
    while (group := pipeline.get(inbox)) is not None:
        for batch in group:
            pipeline.check()
            if batch.records:
                with run.timed("write"):
                    failures = writer.write(batch.records)
                for failure in failures:
                    run.skip(f"product {failure.product_id}: {failure.reason}")
                run.add_indexed(len(batch.records) - len(failures))
            bar.update(batch.rows)
            done += batch.rows
            if not progress and done % log_every < batch.rows:
                logger.info("read %d rows, indexed %d products", done, run.report.indexed)


__all__ = ["EMBED_BATCH", "PREFETCH_BATCHES", "IndexReport", "index_catalog"]
