"""The circuit breaker's states, on an injected clock."""

import logging
import threading

import pytest

from retrieval.breaker import CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def breaker(clock: Clock) -> CircuitBreaker:
    return CircuitBreaker("the store", retry_after_s=5.0, clock=clock)


def test_closed_lets_every_call_through(breaker: CircuitBreaker) -> None:
    assert breaker.state == "closed"
    assert all(breaker.allow() for _ in range(10))
    breaker.succeeded()
    assert (breaker.state, breaker.retry_in(), breaker.opened) == ("closed", 0.0, 0)


def test_a_failure_opens_it_for_retry_after_s(breaker: CircuitBreaker, clock: Clock) -> None:
    breaker.failed(TimeoutError("stalled"))
    assert breaker.state == "open"
    assert breaker.opened == 1
    assert not breaker.allow()
    clock.now += 3.2
    assert not breaker.allow()
    assert breaker.retry_in() == pytest.approx(1.8)


def test_one_probe_after_the_pause_and_its_success_closes_it(
    breaker: CircuitBreaker, clock: Clock
) -> None:
    breaker.failed("refused")
    clock.now += 5.0
    assert breaker.allow()  # the probe
    assert breaker.state == "half-open"
    assert not breaker.allow()  # everyone else still fails fast
    assert not breaker.allow()
    breaker.succeeded()
    assert breaker.state == "closed"
    assert breaker.allow()
    assert breaker.opened == 1


def test_a_failed_probe_opens_it_again_for_the_full_pause(
    breaker: CircuitBreaker, clock: Clock
) -> None:
    breaker.failed("refused")
    clock.now += 6.0
    assert breaker.allow()
    clock.now += 1.5  # the probe times out
    breaker.failed("timed out")
    assert breaker.state == "open"
    assert breaker.retry_in() == pytest.approx(5.0)
    clock.now += 4.9
    assert not breaker.allow()
    clock.now += 0.1
    assert breaker.allow()
    assert breaker.opened == 1  # still the same outage


def test_a_lost_probe_is_replaced_after_the_pause(breaker: CircuitBreaker, clock: Clock) -> None:
    breaker.failed("refused")
    clock.now += 5.0
    assert breaker.allow()  # this probe never reports
    clock.now += 4.0
    assert not breaker.allow()
    clock.now += 1.0
    assert breaker.allow()
    assert breaker.state == "half-open"


def test_opening_and_closing_are_logged_once(
    breaker: CircuitBreaker, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="retrieval.breaker"):
        breaker.failed(TimeoutError("stalled"))
        breaker.failed(TimeoutError("stalled"))  # a call already in flight: no second warning
        clock.now += 5.0
        breaker.allow()
        breaker.succeeded()
        breaker.succeeded()
    messages = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert messages == [
        ("WARNING", "the store failed (stalled): circuit breaker open, failing fast for 5.0 s"),
        ("INFO", "the store answers again: circuit breaker closed"),
    ]


def test_retry_after_s_must_not_be_negative_and_zero_probes_at_once(clock: Clock) -> None:
    with pytest.raises(ValueError, match="negative"):
        CircuitBreaker("x", retry_after_s=-1)
    breaker = CircuitBreaker("x", retry_after_s=0, clock=clock)
    breaker.failed("refused")
    assert breaker.state == "open" and breaker.probe_due()
    assert breaker.allow() and breaker.state == "half-open"


def test_failed_and_succeeded_say_when_the_state_changed(
    breaker: CircuitBreaker, clock: Clock
) -> None:
    assert breaker.succeeded() is False  # closed already
    assert breaker.failed("refused") is True  # this one opened it
    assert breaker.failed("refused") is False
    assert not breaker.probe_due()
    clock.now += 5.0
    assert breaker.probe_due()
    assert breaker.allow() and not breaker.probe_due()  # the probe is out
    assert breaker.failed("refused") is False  # the probe failed: open again, not newly
    assert breaker.succeeded() is True
    assert breaker.opened == 1


def test_a_forced_call_goes_as_a_probe_while_open(breaker: CircuitBreaker, clock: Clock) -> None:
    breaker.failed("refused")
    assert not breaker.allow()
    assert breaker.allow(force=True) and breaker.state == "half-open"
    assert not breaker.allow()  # the others still wait
    breaker.succeeded()
    assert breaker.allow()


def test_log_off_leaves_the_words_to_the_owner(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    breaker = CircuitBreaker("quiet", retry_after_s=5.0, clock=clock, log=False)
    with caplog.at_level(logging.DEBUG, logger="retrieval.breaker"):
        assert breaker.failed("refused")
        clock.now += 5.0
        breaker.allow()
        assert breaker.succeeded()
    assert caplog.records == []


def test_only_one_probe_among_threads(breaker: CircuitBreaker, clock: Clock) -> None:
    breaker.failed("refused")
    clock.now += 5.0
    start = threading.Barrier(16)
    allowed: list[bool] = []
    lock = threading.Lock()

    def call() -> None:
        start.wait()
        verdict = breaker.allow()
        with lock:
            allowed.append(verdict)

    threads = [threading.Thread(target=call) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(allowed) == [False] * 15 + [True]
