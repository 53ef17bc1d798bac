"""Two API worker processes posting events for one shopper at the same time (issue 22): the
events each process posts, and the process body, for the file store and Redis tests."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from personalization.events import Event
from personalization.stores.base import ProfileStore
from personalization.stores.file import FileProfileStore
from personalization.stores.redis import RedisProfileStore
from retrieval.schema import Product

USER = "shopper-both-workers"
PER_WORKER = 5_000
SHARED_EVERY = 10  # every tenth event of a worker is one the other worker posts too
BATCH = 50
START = 1_700_000_000.0
PRODUCTS = {
    f"p{i}": Product(id=f"p{i}", title=f"Product {i}", brand=f"Brand {i % 4}", category="Audio")
    for i in range(8)
}


def worker_events(worker: int) -> list[Event]:
    """The worker's ``PER_WORKER`` events in posting order: its own ids, and every
    ``SHARED_EVERY``-th a shared id (the same event, at the same time, in both workers)."""
    events = []
    for i in range(PER_WORKER):
        shared = i % SHARED_EVERY == 0
        event_id = f"shared-{i}" if shared else f"w{worker}-{i}"
        events.append(
            Event(
                event_id=event_id,
                user_id=USER,
                type="purchase" if i % 7 == 0 else "view",
                at=START + i,
                product_id=f"p{i % len(PRODUCTS)}",
            )
        )
    return events


def distinct_events() -> int:
    """How many distinct events the two workers post together."""
    return len({e.event_id for worker in (0, 1) for e in worker_events(worker)})


def open_store(kind: str, where: str) -> ProfileStore:
    """A profile store remembering every event id of the run (the window of duplicates is
    ``max_events``: a separate bound, documented)."""
    if kind == "file":
        return FileProfileStore(Path(where), max_events=2 * PER_WORKER)
    return RedisProfileStore(where, max_events=2 * PER_WORKER)


def post(kind: str, where: str, worker: int, start: multiprocessing.synchronize.Event) -> None:
    """The process body: wait for the start, then post the worker's events in batches, each
    batch also repeating its first event (a tracker's retry within a batch)."""
    store = open_store(kind, where)
    events = worker_events(worker)
    start.wait(30)
    try:
        for at in range(0, len(events), BATCH):
            batch = events[at : at + BATCH]
            store.add_events([*batch, batch[0]], PRODUCTS, {})
    finally:
        store.close()


def run_two_workers(kind: str, where: str) -> list[int]:
    """Run both workers at once in their own processes; their exit codes."""
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    processes = [context.Process(target=post, args=(kind, where, w, start)) for w in (0, 1)]
    for process in processes:
        process.start()
    start.set()
    for process in processes:
        process.join(300)
    return [process.exitcode if process.exitcode is not None else -1 for process in processes]
