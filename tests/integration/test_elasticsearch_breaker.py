"""The Elasticsearch store's deadline and circuit breaker: a server that accepts connections
and never answers (as a frozen Elasticsearch does) costs one deadline, then calls fail fast;
after the pause one call probes, and an answer closes the breaker."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from elastic_transport import ConnectionTimeout

from retrieval.breaker import CircuitBreaker
from retrieval.stores.base import StoreError, StoreUnavailable
from retrieval.stores.elasticsearch import ElasticsearchStore
from retrieval.stores.elasticsearch.errors import BreakerOpen

BOOSTS = {"title": 3.0, "text": 1.0}
DEADLINE_S = 0.5


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def stalled_url() -> Iterator[str]:
    """A server that accepts every connection and never answers."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            held.append(conn)  # read nothing, answer nothing

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def _search(store: ElasticsearchStore) -> list[str]:
    found = store.lexical("skillet", kinds=("product",), filters=None, top_k=3, boosts=BOOSTS)
    return [hit.unit.product_id for hit in found]


def _timed(call: object) -> tuple[float, BaseException]:
    start = time.perf_counter()
    with pytest.raises(StoreUnavailable) as raised:
        call()  # type: ignore[operator]
    return time.perf_counter() - start, raised.value


def test_a_stalled_server_costs_one_deadline_then_calls_fail_fast(stalled_url: str) -> None:
    breaker = CircuitBreaker("Elasticsearch", retry_after_s=30.0)
    store = ElasticsearchStore(
        stalled_url, alias="stalled", request_timeout_s=DEADLINE_S, breaker=breaker
    )
    try:
        elapsed, first = _timed(lambda: _search(store))
        # one deadline: a timeout is not retried (2 retries would take 3 deadlines)
        assert DEADLINE_S * 0.8 <= elapsed < DEADLINE_S * 2
        assert isinstance(first, BreakerOpen)
        assert isinstance(first.__cause__, StoreUnavailable)  # the timeout, named
        assert first.retry_after_s == pytest.approx(30.0, abs=1.0)
        assert breaker.state == "open"

        start = time.perf_counter()
        for call in (
            lambda: _search(store),
            store.stats,
            lambda: store.get_product("pan-lodge"),
            lambda: store.product_vectors(["pan-lodge"]),
            store.brands,
        ):
            _, error = _timed(call)
            assert isinstance(error, BreakerOpen)
            assert 28.0 < error.retry_after_s <= 30.0
            assert "circuit breaker open" in str(error)
        assert time.perf_counter() - start < 0.5
        assert breaker.opened == 1
    finally:
        store.close()


def test_a_probe_that_stalls_too_opens_it_again(stalled_url: str) -> None:
    clock = Clock()
    breaker = CircuitBreaker("Elasticsearch", retry_after_s=5.0, clock=clock)
    store = ElasticsearchStore(
        stalled_url, alias="stalled", request_timeout_s=DEADLINE_S, breaker=breaker
    )
    try:
        _timed(lambda: _search(store))
        clock.now += 5.0
        elapsed, _ = _timed(lambda: _search(store))  # the probe waits out its deadline
        assert elapsed >= DEADLINE_S * 0.8
        assert breaker.state == "open"
        elapsed, _ = _timed(lambda: _search(store))
        assert elapsed < 0.5
    finally:
        store.close()


def test_after_the_pause_a_probe_that_answers_closes_it(
    es_url: str, es_indexed: ElasticsearchStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    breaker = CircuitBreaker("Elasticsearch", retry_after_s=5.0, clock=clock)
    store = ElasticsearchStore(
        es_url, alias=es_indexed.alias, request_timeout_s=2.0, breaker=breaker
    )
    try:
        assert _search(store) == ["pan-lodge"]
        real = store._client.msearch
        sent: list[int] = []

        def stalled(**kwargs: object) -> object:
            sent.append(1)
            if len(sent) == 1:
                raise ConnectionTimeout("Connection timed out")
            return real(**kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(store._client, "msearch", stalled)
        with pytest.raises(BreakerOpen, match="cannot be reached"):
            _search(store)
        clock.now += 4.9
        with pytest.raises(BreakerOpen, match="circuit breaker open"):
            _search(store)
        assert len(sent) == 1  # failed fast: Elasticsearch not called
        clock.now += 0.1
        assert _search(store) == ["pan-lodge"]  # the probe
        assert breaker.state == "closed"
        assert _search(store) == ["pan-lodge"]
        assert len(sent) == 3
    finally:
        store.close()


def test_a_refusal_is_an_answer_and_does_not_open_it(
    es_url: str, es_indexed: ElasticsearchStore
) -> None:
    breaker = CircuitBreaker("Elasticsearch", retry_after_s=5.0)
    store = ElasticsearchStore(es_url, alias=es_indexed.alias, breaker=breaker)
    try:
        with pytest.raises(StoreError) as raised:
            store._search_index(f"{es_indexed.alias}-missing", size=0)
        assert not isinstance(raised.value, StoreUnavailable)
        assert breaker.state == "closed"
        assert store.stats().products > 0
    finally:
        store.close()
