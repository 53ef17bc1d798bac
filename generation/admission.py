"""Admission control for the generator: a bounded queue in front of a model that answers
one (or a few) at a time.

A model on a 2-core machine writes one answer at a time; more askers than it can serve must
not wait minutes for a timeout. `Admission` lets ``capacity`` answers run at once and up to
``max_waiting`` more wait in line, in order; an asker beyond that is refused at once with
`GeneratorBusy`, whose ``retry_after_s`` is the wait the line ahead would take (from the
recent answer times). A waiting asker learns its place in the line as it moves. Search and
`/health` never pass through here, so waiting answers cannot starve them.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator

from generation.llm.base import GenerationError, GenerationTimeout

__all__ = ["Admission", "GeneratorBusy", "Ticket"]


class GeneratorBusy(GenerationError):
    """Every place in the line is taken; ``retry_after_s`` says when to ask again."""

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Admission:
    """At most ``capacity`` answers at once and ``max_waiting`` in line (see the module
    docstring)."""

    def __init__(self, capacity: int = 1, max_waiting: int = 4, *, typical_s: float = 6.0):
        if capacity < 1 or max_waiting < 0:
            msg = f"need capacity >= 1 and max_waiting >= 0, got {capacity}, {max_waiting}"
            raise ValueError(msg)
        self.capacity = capacity
        self.max_waiting = max_waiting
        self._condition = threading.Condition()
        self._running = 0
        self._line: deque[object] = deque()
        self._recent: deque[float] = deque([typical_s], maxlen=20)

    def state(self) -> dict[str, int]:
        """How many answers run and wait now."""
        with self._condition:
            return {
                "running": self._running,
                "waiting": len(self._line),
                "capacity": self.capacity,
                "max_waiting": self.max_waiting,
            }

    def _retry_after(self, ahead: int) -> int:
        typical = sorted(self._recent)[len(self._recent) // 2]
        return max(1, round(typical * (ahead / self.capacity + 1)))

    def enter(self) -> Ticket:
        """A place: running at once, or waiting in line; `GeneratorBusy` when the line is
        full. Call `Ticket.leave` when done (or gone)."""
        with self._condition:
            ticket = Ticket(self)
            if self._running < self.capacity and not self._line:
                self._running += 1
                ticket.admitted_at = time.monotonic()
                return ticket
            if len(self._line) >= self.max_waiting:
                ahead = self._running + len(self._line)
                msg = f"the generator is busy: {ahead} answers are ahead; try again shortly"
                raise GeneratorBusy(msg, retry_after_s=self._retry_after(len(self._line)))
            self._line.append(ticket)
            return ticket


class Ticket:
    """One asker's place with an `Admission`."""

    def __init__(self, admission: Admission) -> None:
        self._admission = admission
        self.admitted_at: float | None = None
        self._left = False

    @property
    def admitted(self) -> bool:
        """Whether it may generate now."""
        return self.admitted_at is not None

    def wait(
        self, *, timeout_s: float = 120.0, cancelled: Callable[[], bool] | None = None
    ) -> Iterator[int]:
        """Wait for its turn, yielding its 1-based place in line each time it changes.
        Raises `GenerationTimeout` after ``timeout_s`` in line."""
        admission = self._admission
        condition = admission._condition
        deadline = time.monotonic() + timeout_s
        told = 0
        while True:
            with condition:
                if self.admitted:
                    return
                if self._left or self not in admission._line:
                    msg = "left the line while waiting"
                    raise GenerationError(msg)
                if admission._running < admission.capacity and admission._line[0] is self:
                    admission._line.popleft()
                    admission._running += 1
                    self.admitted_at = time.monotonic()
                    condition.notify_all()
                    return
                place = admission._line.index(self) + 1
                if place == told:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        msg = f"still waiting for the generator after {timeout_s:g} s"
                        raise GenerationTimeout(msg)
                    condition.wait(min(left, 0.25))
                    place = 0
            if place and place != told:
                told = place
                yield place
            if cancelled is not None and cancelled():
                msg = "the asker left while waiting"
                raise GenerationError(msg)

    def leave(self) -> None:
        """Give the place back (idempotent)."""
        admission = self._admission
        with admission._condition:
            if self._left:
                return
            self._left = True
            if self.admitted_at is not None:
                admission._running -= 1
                admission._recent.append(time.monotonic() - self.admitted_at)
            elif self in admission._line:
                admission._line.remove(self)
            admission._condition.notify_all()
