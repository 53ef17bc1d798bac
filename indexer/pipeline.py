"""Threads joined by bounded queues, where the first failure stops every stage.

`Pipeline` runs stage functions in threads and hands items between them through bounded
`queue.Queue` objects, so a fast stage can run at most a queue's length ahead of a slow one.
Every blocking hand-off wakes up regularly to see whether another stage has failed: the first
exception recorded (`Pipeline.fail`) stops the others, which leave with `Stopped`, and stays in
`Pipeline.error` for the caller to re-raise once `Pipeline.join` has returned.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")


class Stopped(Exception):
    """Raised in a stage when another stage has failed: it should leave quietly."""


class Pipeline:
    """A stop flag, the first error, and the threads of one run."""

    def __init__(self, *, poll_s: float = 0.05) -> None:
        self.poll_s = poll_s
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    @property
    def stopped(self) -> bool:
        """True once any stage has failed."""
        return self._stop.is_set()

    def fail(self, error: BaseException) -> None:
        """Record ``error`` unless an earlier one was, and stop every stage."""
        with self._lock:
            if self.error is None:
                self.error = error
        self._stop.set()

    def check(self) -> None:
        """Raise `Stopped` when the run has been stopped."""
        if self._stop.is_set():
            raise Stopped

    def put(self, channel: queue.Queue[T], item: T) -> None:
        """Hand ``item`` on, waiting while ``channel`` is full; `Stopped` if the run stops."""
        while True:
            self.check()
            try:
                channel.put(item, timeout=self.poll_s)
            except queue.Full:
                continue
            return

    def get(self, channel: queue.Queue[T]) -> T:
        """The next item of ``channel``, waiting for one; `Stopped` if the run stops."""
        while True:
            self.check()
            try:
                return channel.get(timeout=self.poll_s)
            except queue.Empty:
                continue

    def start(self, name: str, target: Callable[[], None]) -> None:
        """Run ``target`` in a daemon thread; what it raises (but `Stopped`) fails the run."""

        def run() -> None:
            try:
                target()
            except Stopped:
                pass
            except BaseException as error:  # handed to the caller, who raises it
                logger.debug("pipeline stage %s failed", name, exc_info=True)
                self.fail(error)

        thread = threading.Thread(target=run, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def join(self) -> None:
        """Wait for every thread started here (a stage in a blocking call finishes it first)."""
        for thread in self._threads:
            thread.join()


__all__ = ["Pipeline", "Stopped"]
