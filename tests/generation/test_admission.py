"""Admission in front of the generator: a bounded line, places as it moves, refusal when full.

An asker beyond the line must be refused at once (with when to retry), a waiting asker must
learn its place and get its turn when one is free, and a place must never leak."""

from __future__ import annotations

import threading
import time

import pytest

from generation.admission import Admission, GeneratorBusy
from generation.llm.base import GenerationTimeout


def test_one_runs_one_waits_and_the_next_is_refused_at_once() -> None:
    admission = Admission(capacity=1, max_waiting=1)
    first = admission.enter()
    second = admission.enter()
    assert first.admitted and not second.admitted
    start = time.monotonic()
    with pytest.raises(GeneratorBusy) as refused:
        admission.enter()
    assert time.monotonic() - start < 0.1
    assert refused.value.retry_after_s >= 1
    assert admission.state() == {"running": 1, "waiting": 1, "capacity": 1, "max_waiting": 1}


def test_a_waiting_ticket_learns_its_place_and_runs_once_the_first_leaves() -> None:
    admission = Admission(capacity=1, max_waiting=1)
    first = admission.enter()
    second = admission.enter()
    places: list[int] = []
    told = threading.Event()

    def wait() -> None:
        for place in second.wait(timeout_s=5):
            places.append(place)
            told.set()

    waiter = threading.Thread(target=wait)
    waiter.start()
    assert told.wait(2)
    time.sleep(0.05)
    assert not second.admitted  # still waiting while the first runs
    first.leave()
    waiter.join(3)
    assert not waiter.is_alive()
    assert places == [1]
    assert second.admitted
    assert admission.state()["running"] == 1 and admission.state()["waiting"] == 0
    second.leave()
    assert admission.state()["running"] == 0


def test_the_place_in_line_moves_up_as_those_ahead_leave() -> None:
    admission = Admission(capacity=1, max_waiting=2)
    first = admission.enter()
    ahead = admission.enter()
    places = admission.enter().wait(timeout_s=2)
    assert next(places) == 2
    ahead.leave()
    assert next(places) == 1
    first.leave()
    assert list(places) == []  # admitted: the wait is over


def test_leave_is_idempotent() -> None:
    admission = Admission(capacity=1, max_waiting=0)
    ticket = admission.enter()
    ticket.leave()
    ticket.leave()
    assert admission.state()["running"] == 0
    again = admission.enter()  # the place is free once, not twice
    assert again.admitted
    with pytest.raises(GeneratorBusy):
        admission.enter()


def test_a_waiting_ticket_times_out() -> None:
    admission = Admission(capacity=1, max_waiting=1)
    admission.enter()
    waiting = admission.enter()
    start = time.monotonic()
    with pytest.raises(GenerationTimeout):
        for _place in waiting.wait(timeout_s=0.2):
            pass
    assert 0.15 < time.monotonic() - start < 2
    waiting.leave()
    assert admission.state()["waiting"] == 0


def test_a_ticket_that_leaves_while_waiting_frees_its_place() -> None:
    admission = Admission(capacity=1, max_waiting=1)
    first = admission.enter()
    gone = admission.enter()
    gone.leave()
    assert admission.state() == {"running": 1, "waiting": 0, "capacity": 1, "max_waiting": 1}
    kept = admission.enter()  # not refused: the place in line is free again
    first.leave()
    assert list(kept.wait(timeout_s=1)) == [] and kept.admitted


def test_capacity_and_line_are_validated() -> None:
    with pytest.raises(ValueError):
        Admission(capacity=0)
    with pytest.raises(ValueError):
        Admission(max_waiting=-1)
