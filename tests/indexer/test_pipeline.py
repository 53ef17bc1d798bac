"""The overlapped indexing pipeline: order, duplicates, failures, bounded memory, overlap."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any, cast

import numpy as np
import pytest

from indexer.indexer import index_catalog
from indexer.pipeline import Pipeline, Stopped
from indexer.reader import Row, RowError
from indexer.units import product_units
from retrieval.embedders.hashing import HashingEmbedder
from retrieval.schema import Product
from retrieval.stores.base import StoreError
from retrieval.stores.embedded import EmbeddedStore

WAIT_S = 5.0  # generous: an event that should come arrives in milliseconds


def product(i: int, title: str | None = None, *, pid: str | None = None) -> Product:
    return Product.model_validate(
        {
            "id": pid or f"p{i:05d}",
            "title": title or f"Product {i} kettle",
            "description": f"Stainless steel kettle, 1.{i % 5} litres.",
        }
    )


def rows_of(products: Sequence[Product]) -> list[Row | RowError]:
    return [Row("c.jsonl", i + 1, p) for i, p in enumerate(products)]


class CountingRows:
    """An iterator of rows that counts how many were pulled."""

    def __init__(self, rows: Sequence[Row | RowError], on_row: Any = None) -> None:
        self.rows = rows
        self.pulled = 0
        self.on_row = on_row

    def __iter__(self) -> Iterator[Row | RowError]:
        for row in self.rows:
            self.pulled += 1
            if self.on_row is not None:
                self.on_row(self.pulled)
            yield row


class SpyWriter:
    """Delegates to a real writer; records calls, can be slowed down or made to fail."""

    def __init__(self, inner: Any, owner: SpyStore) -> None:
        self.inner = inner
        self.owner = owner

    def write(self, records: Sequence[Any]) -> Any:
        owner = self.owner
        owner.calls.append("write")
        owner.threads.add(threading.get_ident())
        if owner.on_write is not None:
            owner.on_write(len(owner.written), records)
        owner.written.append([r.product.id for r in records])
        return self.inner.write(records)

    def commit(self) -> Any:
        self.owner.calls.append("commit")
        return self.inner.commit()

    def abort(self) -> None:
        self.owner.calls.append("abort")
        self.inner.abort()


class SpyStore:
    """A real `EmbeddedStore` whose writer is a `SpyWriter`."""

    def __init__(self, inner: EmbeddedStore, on_write: Any = None) -> None:
        self.inner = inner
        self.on_write = on_write
        self.calls: list[str] = []
        self.written: list[list[str]] = []
        self.threads: set[int] = set()

    def writer(self, **options: Any) -> SpyWriter:
        return SpyWriter(self.inner.writer(**options), self)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class HookedEmbedder(HashingEmbedder):
    """The hashing embedder, with a hook called before each `embed_documents` call."""

    def __init__(self, hook: Any = None) -> None:
        super().__init__(64)
        self.hook = hook
        self.calls: list[int] = []

    def embed_documents(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        self.calls.append(len(texts))
        if self.hook is not None:
            self.hook(len(self.calls))
        return super().embed_documents(texts, progress=progress)


def no_stage_threads_left() -> bool:
    return not [t for t in threading.enumerate() if t.name.startswith("indexer-")]


def index(rows: Any, store: Any, embedder: Any, **options: Any) -> Any:
    return index_catalog(rows, cast(Any, store), embedder, progress=False, **options)


def test_order_is_kept_and_every_vector_belongs_to_its_unit() -> None:
    products = [product(i) for i in range(300)]
    spy = SpyStore(EmbeddedStore())
    embedder = HookedEmbedder()
    report = index(rows_of(products), spy, embedder, batch_size=16, embed_batch=50)
    assert [pid for batch in spy.written for pid in batch] == [p.id for p in products]
    assert all(len(batch) <= 16 for batch in spy.written)
    assert spy.calls[-1] == "commit" and "abort" not in spy.calls
    assert len(spy.threads) == 1  # one writer thread
    assert (report.read, report.indexed, report.units) == (300, 300, 600)
    assert len(embedder.calls) == 10  # 19 batches of 32 units, two a call (>= 50 units)
    # descriptions repeat (5 texts): each group embeds them once; the vectors still match
    assert report.embedded + report.reused_embeddings == report.units
    assert report.reused_embeddings > 0
    vectors = spy.inner.product_vectors([p.id for p in products])
    expected = embedder.embed_documents([product_units(p)[0].text for p in products])
    np.testing.assert_allclose(np.vstack([vectors[p.id] for p in products]), expected, atol=1e-6)
    assert set(report.stage_seconds) >= {"read", "units", "lookup", "embed", "write", "commit"}
    assert no_stage_threads_left()


def test_a_later_duplicate_wins_even_after_the_first_was_written(
    caplog: pytest.LogCaptureFixture,
) -> None:
    products = [product(i) for i in range(100)]
    products.append(product(0, "Kettle, the corrected title", pid="p00000"))
    spy = SpyStore(EmbeddedStore())
    with caplog.at_level(logging.WARNING):
        report = index(rows_of(products), spy, HookedEmbedder(), batch_size=10, embed_batch=20)
    assert spy.written[0][0] == "p00000" and spy.written[-1] == ["p00000"]
    found = spy.inner.get_product("p00000")
    assert found is not None and found.title == "Kettle, the corrected title"
    assert (report.read, report.indexed, report.skipped) == (101, 100, 0)
    assert "repeats c.jsonl:1; the later row wins" in caplog.text
    hits = spy.inner.semantic(
        HookedEmbedder().embed_query("Kettle, the corrected title"),
        kinds=("product",),
        filters=None,
        top_k=1,
    )
    assert hits[0].unit.product_id == "p00000"


def test_bad_rows_and_refused_products_are_reported() -> None:
    rows = rows_of([product(i) for i in range(30)])
    rows[3] = RowError("c.jsonl", 4, "invalid JSON")
    rows[25] = RowError("c.jsonl", 26, "missing title")
    report = index(rows, EmbeddedStore(), HookedEmbedder(), batch_size=4, embed_batch=8)
    assert (report.read, report.indexed, report.skipped) == (30, 28, 2)
    assert report.errors == ["c.jsonl:4: invalid JSON", "c.jsonl:26: missing title"]


def test_a_failing_write_aborts_and_is_raised() -> None:
    store = EmbeddedStore()
    index(rows_of([product(i) for i in range(5)]), store, HookedEmbedder())
    version = store.stats().version
    error = StoreError("bulk request refused")

    def fail_third(call: int, records: Any) -> None:
        if call == 2:
            raise error

    spy = SpyStore(store, on_write=fail_third)
    rows = CountingRows(rows_of([product(i) for i in range(2000)]))
    with pytest.raises(StoreError) as raised:
        index(rows, spy, HookedEmbedder(), batch_size=10, embed_batch=20, prefetch_batches=2)
    assert raised.value is error
    assert spy.calls[-1] == "abort" and "commit" not in spy.calls
    assert spy.calls.count("write") == 3
    assert rows.pulled < 2000  # the read stage stopped too
    assert store.stats().version == version and store.stats().products == 5
    assert no_stage_threads_left()


def test_an_embedder_error_aborts_and_is_raised_with_no_commit() -> None:
    def fail_second(call: int) -> None:
        if call == 2:
            msg = "onnx runtime error"
            raise RuntimeError(msg)

    spy = SpyStore(EmbeddedStore())
    rows = CountingRows(rows_of([product(i) for i in range(2000)]))
    with pytest.raises(RuntimeError, match="onnx runtime error"):
        index(rows, spy, HookedEmbedder(fail_second), batch_size=10, embed_batch=20)
    assert spy.calls[-1] == "abort" and "commit" not in spy.calls
    assert spy.inner.stats().products == 0
    assert rows.pulled < 2000
    assert no_stage_threads_left()


def test_an_interrupt_while_embedding_aborts_and_is_raised() -> None:
    def interrupt(call: int) -> None:
        if call == 3:
            raise KeyboardInterrupt

    spy = SpyStore(EmbeddedStore())
    with pytest.raises(KeyboardInterrupt):
        index(
            rows_of([product(i) for i in range(500)]),
            spy,
            HookedEmbedder(interrupt),
            batch_size=10,
            embed_batch=20,
        )
    assert spy.calls[-1] == "abort" and "commit" not in spy.calls
    assert no_stage_threads_left()


def test_a_failing_reader_aborts_and_is_raised() -> None:
    def broken_rows() -> Iterator[Row | RowError]:
        yield from rows_of([product(i) for i in range(50)])
        msg = "disk went away"
        raise OSError(msg)

    spy = SpyStore(EmbeddedStore())
    with pytest.raises(OSError, match="disk went away"):
        index(broken_rows(), spy, HookedEmbedder(), batch_size=10, embed_batch=20)
    assert spy.calls[-1] == "abort" and "commit" not in spy.calls
    assert no_stage_threads_left()


def test_the_read_stage_stays_a_bounded_number_of_batches_ahead() -> None:
    batch_size, embed_batch, prefetch = 10, 20, 2
    total = 1500
    rows = CountingRows(rows_of([product(i) for i in range(total)]))
    lead: list[int] = []

    def slow_write(call: int, records: Any) -> None:
        lead.append(rows.pulled - call * batch_size)  # rows read but not yet written
        time.sleep(0.002)

    spy = SpyStore(EmbeddedStore(), on_write=slow_write)
    report = index(
        rows,
        spy,
        HookedEmbedder(),
        batch_size=batch_size,
        embed_batch=embed_batch,
        prefetch_batches=prefetch,
    )
    assert report.indexed == total
    # in flight at most: the batch being read, the queue of prepared batches, the group being
    # gathered, the group waiting for the writer and the group being written
    bound = batch_size * (1 + prefetch) + 3 * (embed_batch + batch_size)
    assert max(lead) <= bound < total / 5


def test_the_writer_writes_while_the_embedder_embeds() -> None:
    writing = threading.Event()
    embedded_while_writing = threading.Event()
    saw: list[bool] = []

    def slow_first_write(call: int, records: Any) -> None:
        if call == 0:
            writing.set()
            saw.append(embedded_while_writing.wait(WAIT_S))
            writing.clear()

    def embedding(call: int) -> None:
        if writing.is_set():
            embedded_while_writing.set()

    spy = SpyStore(EmbeddedStore(), on_write=slow_first_write)
    report = index(
        rows_of([product(i) for i in range(200)]),
        spy,
        HookedEmbedder(embedding),
        batch_size=10,
        embed_batch=20,
    )
    assert saw == [True]
    assert report.indexed == 200


def test_rows_are_read_while_the_embedder_embeds() -> None:
    total = 200
    all_read = threading.Event()
    saw: list[bool] = []

    def on_row(pulled: int) -> None:
        if pulled == total:
            all_read.set()

    def embedding(call: int) -> None:
        if call == 1:  # serial indexing could not read on until this call returns
            saw.append(all_read.wait(WAIT_S))

    rows = CountingRows(rows_of([product(i) for i in range(total)]), on_row)
    report = index(
        rows,
        EmbeddedStore(),
        HookedEmbedder(embedding),
        batch_size=10,
        embed_batch=20,
        prefetch_batches=total,  # the read stage never waits for the queue
    )
    assert saw == [True]
    assert report.indexed == total


def test_an_empty_catalog_never_commits() -> None:
    spy = SpyStore(EmbeddedStore())
    report = index([], spy, HookedEmbedder())
    assert not report.ok
    assert spy.calls == ["abort"]
    assert no_stage_threads_left()


def test_sizes_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        index([], EmbeddedStore(), HookedEmbedder(), embed_batch=0)


def test_pipeline_hand_offs_stop_when_a_stage_fails() -> None:
    pipeline = Pipeline(poll_s=0.01)
    channel: queue.Queue[int] = queue.Queue(maxsize=1)
    channel.put(0)
    blocked = threading.Event()

    def producer() -> None:
        blocked.set()
        pipeline.put(channel, 1)  # full: waits until the run stops

    pipeline.start("test-producer", producer)
    assert blocked.wait(WAIT_S)
    first, second = ValueError("first"), ValueError("second")
    pipeline.fail(first)
    pipeline.fail(second)
    pipeline.join()
    assert pipeline.error is first
    with pytest.raises(Stopped):
        pipeline.get(channel)
