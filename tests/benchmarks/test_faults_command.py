"""``python -m benchmarks.faults``: its arguments and its account of requests and events without
servers, then one short scenario end to end on the real stack (integration)."""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import pytest

from benchmarks import faults
from benchmarks.faults import Ledger, Outcome


def test_arguments_default_to_every_scenario_in_order() -> None:
    args = faults.parse_args([])
    assert args.scenarios == [
        "redis", "elasticsearch", "elasticsearch-stall", "reindex", "duplicates"
    ]  # fmt: skip
    assert (args.seconds, args.max_requests, args.es_url) == (30.0, 20_000, None)
    assert (args.event_rate, args.max_batch, args.spool_timeout) == (0.0, 20, 60.0)
    assert args.out == Path("bench-results/faults.json")
    picked = faults.parse_args(
        ["--scenarios", "duplicates, elasticsearch-stall,redis,redis", "--seconds", "6"]
    )
    assert picked.scenarios == ["redis", "elasticsearch-stall", "duplicates"]
    assert picked.seconds == 6.0
    assert faults.parse_args(["--event-rate", "120"]).event_rate == 120.0


@pytest.mark.parametrize(
    "argv",
    [
        ["--scenarios", "redis,postgres"],
        ["--scenarios", ""],
        ["--seconds", "0"],
        ["--max-requests", "-1"],
        ["--outage", "soon"],
        ["--seconds", "4", "--before", "4"],
        ["--es-signal", "hup"],
        ["--event-rate", "-1"],
        ["--max-batch", "0"],
    ],
)
def test_bad_arguments_are_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        faults.parse_args(argv)
    assert exit_.value.code == 2


def _outcome(kind: str, sent: float, status: int | None, **extra: Any) -> Outcome:
    return Outcome(kind, sent, sent + 0.01, status, **extra)


def test_requests_are_counted_by_status_class() -> None:
    outcomes = [
        _outcome("search", 0.0, 200),
        _outcome("cached", 0.1, 200, cached=True),
        _outcome("search", 0.2, 200, empty=True),
        _outcome("event", 0.3, 503, code="profiles_unavailable"),
        _outcome("event", 0.4, 503, code="profiles_unavailable"),
        _outcome("search", 0.5, 500, code="store_error"),
        _outcome("search", 0.6, 502),
        _outcome("search", 0.7, 429, code="rate_limited"),
        _outcome("event", 0.8, None, code="ReadTimeout", phase="drain"),
    ]
    summary = faults.summarize_requests(outcomes)
    assert {k: summary[k] for k in ("sent", "ok", "failed")} == {"sent": 9, "ok": 3, "failed": 6}
    assert summary["status_503"] == 2
    assert summary["status_5xx_other"] == 2
    assert summary["status_500"] == 1
    assert summary["status_4xx"] == 1
    assert summary["transport_errors"] == 1
    assert summary["empty_results"] == 1
    assert summary["failures"] == {
        "503 profiles_unavailable": 2,
        "500 store_error": 1,
        "502": 1,
        "429 rate_limited": 1,
        "ReadTimeout": 1,
    }
    assert summary["by_kind"]["event"] == {"sent": 3, "ok": 0}
    assert summary["by_phase"] == {"load": 8, "drain": 1}


def test_recovery_counts_only_requests_sent_after_the_restart() -> None:
    outcomes = [
        _outcome("event", 1.0, 200),  # before the restart at 5.0: does not count
        _outcome("cached", 1.0, 200, cached=True),
        _outcome("event", 5.2, 503, code="profiles_unavailable"),
        _outcome("event", 5.5, 200),
        _outcome("cached", 5.6, 200),  # answered, but not from the cache
        _outcome("personal", 6.0, 200, personalized=True),
        _outcome("search", 6.5, 200),
    ]
    assert faults.recoveries(outcomes, 5.0, ("events", "cache", "profiles", "search")) == {
        "events": 0.51,
        "cache": None,
        "profiles": 1.01,
        "search": 1.01,
    }


def test_the_event_account_finds_lost_and_double_counted_events() -> None:
    clean = faults.event_figures(
        sent_ids={"a", "b", "c"},
        acked_ids={"a", "b", "c"},
        posted=5,
        accepted=3,
        duplicates=2,
        stored={"u1": (2, ["b", "a"]), "u2": (1, ["c"])},
    )
    assert clean["lost"] == clean["twice"] == clean["accepted_over"] == 0
    assert (clean["sent"], clean["counted"], clean["unacknowledged"]) == (3, 3, 0)

    broken = faults.event_figures(
        sent_ids={"a", "b", "c", "d"},
        acked_ids={"a", "b", "c"},
        posted=6,
        accepted=4,
        duplicates=0,
        stored={"u1": (3, ["b", "a", "a"]), "u2": (0, [])},
    )
    assert broken["lost"] == 1  # c: acknowledged, not kept
    assert broken["twice"] == 1  # a: counted and kept twice
    assert broken["accepted_over"] == 1  # 4 accepted, 3 counted
    assert broken["unacknowledged"] == 1  # d


def test_the_ledger_keeps_batches_until_acknowledged() -> None:
    ledger = Ledger()
    first = ledger.add([{"event_id": "e1", "user_id": "u1"}, {"event_id": "e2", "user_id": "u1"}])
    second = ledger.add([{"event_id": "e3", "user_id": "u2"}])
    ledger.answered(first, None)
    ledger.answered(first, {"accepted": 1, "duplicates": 1})
    ledger.answered(second, None)
    assert ledger.pending() == [second]
    assert ledger.users() == ["u1", "u2"] and ledger.acked_users() == ["u1"]
    figures = ledger.figures({"u1": (2, ["e2", "e1"]), "u2": (0, [])})
    assert (figures["posted"], figures["accepted"], figures["duplicates_reported"]) == (5, 1, 1)
    assert (figures["acknowledged"], figures["unacknowledged"], figures["lost"]) == (2, 1, 0)


def test_a_queued_batch_is_acknowledged_but_does_not_show_the_store_back() -> None:
    outcomes = [
        _outcome("event", 5.1, 200, queued=2),  # acknowledged, kept in the spool
        _outcome("event", 5.6, 200),
    ]
    assert faults.recoveries(outcomes, 5.0, ("events",)) == {"events": 0.61}
    ledger = Ledger()
    batch = ledger.add([{"event_id": "e1", "user_id": "u1"}, {"event_id": "e2", "user_id": "u1"}])
    ledger.answered(batch, {"accepted": 0, "duplicates": 0, "queued": 2})
    figures = ledger.figures({"u1": (2, ["e1", "e2"])})
    assert (figures["queued"], figures["accepted"], figures["counted"]) == (2, 0, 2)
    assert figures["lost"] == figures["accepted_over"] == figures["unacknowledged"] == 0
    lost = ledger.figures({"u1": (1, ["e1"])})  # queued, then never applied
    assert lost["lost"] == 1


def test_percentiles_by_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]  # 1 .. 100
    assert faults.percentile(values, 50) == 50.0
    assert faults.percentile(values, 99) == 99.0
    assert faults.percentile(values, 100) == 100.0
    assert faults.percentile([3.0, 1.0, 2.0], 99) == 3.0
    assert faults.percentile([0.2], 50) == 0.2
    assert faults.percentile([], 99) is None


def test_the_outage_window_takes_the_requests_that_started_in_it() -> None:
    outcomes = [
        Outcome("search", 4.9, 7.0, 503, "store_unavailable"),  # started before: left out
        Outcome("search", 5.0, 7.0, 503, "store_unavailable"),  # slow, caught in the stall
        Outcome("cached", 5.5, 5.6, 200, cached=True),
        Outcome("event", 6.0, 6.1, 200, queued=3),
        Outcome("event", 6.5, 6.7, None, "ReadTimeout"),  # no answer: not counted answered
        Outcome("search", 14.9, 15.2, 200),  # answered after the window
        Outcome("event", 7.0, 7.1, 200, phase="drain"),  # the drain at the end: left out
    ]
    w = faults.window_figures(outcomes, 5.0, 15.0)
    assert (w["requests"], w["ok"], w["status_503"], w["over_1_5_s"]) == (5, 3, 1, 1)
    assert w["latency_s"] == {"p50": 0.2, "p99": 2.0, "max": 2.0}
    assert w["ok_latency_s"]["max"] == 0.3
    assert w["answered_per_s"] == 0.4  # 4.9, 5.0 (7.0), 5.5 (5.6), 6.0 (6.1): 4 in 10 s
    assert w["ok_per_s"] == 0.2
    assert w["by_kind"]["search"] == {
        "requests": 2,
        "ok": 1,
        "latency_s": {"p50": 0.3, "p99": 2.0, "max": 2.0},
    }
    empty = faults.window_figures([], 0.0, 1.0)
    assert empty["requests"] == 0 and empty["latency_s"] == {"p50": None, "p99": None, "max": None}


def test_the_event_rate_counts_the_clients_batches_when_first_sent() -> None:
    batches = [
        faults.Batch([{"event_id": "a"}, {"event_id": "b"}], at=1.0),
        faults.Batch([{"event_id": "c"}], at=2.5),
        faults.Batch([{"event_id": "d"}] * 3, at=3.0),  # after the window
        faults.Batch([{"event_id": "p"}], at=2.0, source="probe"),
    ]
    assert faults.event_rate(batches, 1.0, 3.0) == {"events": 3, "per_s": 1.5}


def test_a_paced_client_waits_when_ahead_and_catches_up_when_behind() -> None:
    rng = random.Random(0)
    size, wait = faults.batch_size(0.5, 60, 100.0, 20, rng)  # due at 0.6 s
    assert 1 <= size <= 3 and wait == pytest.approx(0.1)
    size, wait = faults.batch_size(2.0, 100, 100.0, 20, rng)  # 100 owed: capped
    assert (size, wait) == (20, 0.0)
    size, wait = faults.batch_size(1.0, 99, 100.0, 20, rng)  # one owed
    assert 1 <= size <= 3 and wait == 0.0


def _scenario(name: str, **changes: Any) -> dict[str, Any]:
    outcomes = [_outcome("search", 0.0, 200), _outcome("event", 0.1, 503, code="x")]
    scenario: dict[str, Any] = {
        "scenario": name,
        "title": faults.TITLES[name],
        "wall_s": 12.34,
        "requests": faults.summarize_requests(outcomes),
        "events": faults.event_figures(
            sent_ids={"a"},
            acked_ids={"a"},
            posted=2,
            accepted=1,
            duplicates=0,
            stored={"u": (1, ["a"])},
        ),
        "fault": None,
        "recovery_s": {},
        "server_errors_logged": 0,
        "server_error_messages": [],
        "errors": [],
    }
    if name in faults.RECOVERY_KINDS:
        scenario["fault"] = {"down_s": 5.01, "ready_s": 0.03, "back_s": 4.2}
        scenario["recovery_s"] = {kind: 0.1 for kind in faults.RECOVERY_KINDS[name]}
    scenario.update(changes)
    scenario["problems"] = faults.problems(scenario)
    return scenario


def test_problems_are_5xx_other_than_503_lost_or_twice_counted_events_and_no_recovery() -> None:
    assert _scenario("redis")["problems"] == []
    assert _scenario("duplicates")["problems"] == []
    with_500 = _scenario(
        "reindex", requests=faults.summarize_requests([_outcome("search", 0.0, 500)])
    )
    assert with_500["problems"] == ["1 responses 5xx other than 503"]
    stuck = _scenario("elasticsearch", recovery_s={"search": 0.2, "events": None})
    assert stuck["problems"] == ["did not recover: events"]
    events = dict(_scenario("duplicates")["events"], lost=2, twice=1)
    assert _scenario("duplicates", events=events)["problems"] == [
        "2 acknowledged events lost",
        "1 events counted twice",
    ]


def test_the_report_has_a_row_per_scenario_and_the_verdict() -> None:
    scenarios = [_scenario("redis"), _scenario("duplicates")]
    result = {
        "stack": {
            "catalog": "data/sample_catalog.jsonl",
            "products": 44,
            "queries": 44,
            "elasticsearch": "own node",
            "redis": "own redis",
            "server": "shopguide serve",
        },
        "settings": {
            "embedder": "hashing-256",
            "search_clients": 4,
            "event_clients": 2,
            "seconds": 30.0,
            "max_requests": 100,
            "before": 5.0,
            "outage": 5.0,
        },
        "scenarios": scenarios,
        "problems": {},
        "wall_s": 99.0,
        "machine": {"load_average_at_start": [1.0], "load_average_at_end": [2.0]},
    }
    window = faults.window_figures(
        [Outcome("search", 5.0, 5.2, 503, "store_unavailable"), Outcome("event", 6.0, 6.1, 200)],
        5.0,
        10.0,
    )
    scenarios[0]["windows"] = {"outage": {**window, "events_sent": {"events": 600, "per_s": 120.0}}}
    scenarios[0]["fault"]["spool_empty_s"] = 2.5
    scenarios[0]["events"]["queued"] = 7
    scenarios[1]["windows"] = {"load": {**window, "events_sent": {"events": 0, "per_s": 0.0}}}
    text = faults.render(result)
    lines = text.splitlines()
    outage_header = next(line for line in lines if line.startswith("during the outage"))
    assert outage_header.split()[3:] == [
        "s", "requests", "p50", "s", "p99", "s", "max", "s", ">1.5s", "answ/s", "2xx/s", "ev/s",
        "queued", "spool", "s",
    ]  # fmt: skip
    outage_rows = [line for line in lines if line.startswith(("Redis killed ", "duplicate"))]
    assert outage_rows[2].split()[2:] == [
        "5.0", "2", "0.10", "0.20", "0.20", "0", "0.4", "0.2", "120.0", "7", "2.50",
    ]  # fmt: skip
    assert outage_rows[3].startswith("duplicate events *")  # no fault: the whole load
    assert "outage (5.0-10.0 s): 2 requests, p50 0.10 p99 0.20 max 0.20 s" in text
    header = next(line for line in lines if line.startswith("scenario"))
    assert header.split() == [
        "scenario", "wall", "s", "requests", "ok", "failed", "503", "5xx", "500", "empty",
        "events", "counted", "lost", "twice", "down", "s", "ready", "s", "back", "s",
    ]  # fmt: skip
    redis_row = next(line for line in lines if line.startswith("Redis killed"))
    assert redis_row.split()[2:] == [
        "12.3", "2", "1", "1", "1", "0", "0", "0", "1", "1", "0", "0", "5.01", "0.03", "4.20",
    ]  # fmt: skip
    duplicates_row = next(line for line in lines if line.startswith("duplicate events"))
    assert duplicates_row.split()[-3:] == ["-", "-", "-"]
    assert "working again after the restart: events 0.10 s, cache 0.10 s" in text
    assert lines[-1].startswith("problems: none; wall time 99.0 s")
    result["problems"] = {"redis": ["1 events counted twice"]}
    assert faults.render(result).splitlines()[-1].startswith("problems: in redis;")


@pytest.mark.integration
def test_the_redis_scenario_end_to_end(tmp_path: Path) -> None:
    es_url = os.environ.get("SHOPGUIDE_TEST_ES_URL")
    if not es_url:
        pytest.skip("SHOPGUIDE_TEST_ES_URL is not set (no Elasticsearch to test against)")
    if shutil.which("redis-server") is None:
        pytest.skip("no redis-server to kill")
    out = tmp_path / "faults.json"
    code = faults.main(
        [
            "--es-url", es_url,
            "--scenarios", "redis",
            "--seconds", "2",
            "--before", "1",
            "--outage", "1",
            "--after", "0.5",
            "--search-clients", "2",
            "--event-clients", "2",
            "--embedder", "hashing-256",
            "--startup-timeout", "120",
            "--out", str(out),
        ]
    )  # fmt: skip
    result = json.loads(out.read_text(encoding="utf-8"))
    assert code == 0, result["problems"]
    assert "behind a TCP proxy" in result["stack"]["elasticsearch"]
    (scenario,) = result["scenarios"]
    requests, events = scenario["requests"], scenario["events"]
    assert requests["sent"] > 0 and requests["status_5xx_other"] == 0
    assert requests["by_kind"]["search"]["ok"] == requests["by_kind"]["search"]["sent"]
    assert set(requests["failures"]) <= {"503 profiles_unavailable"}  # events while down
    assert events["sent"] > 0
    assert events["counted"] == events["acknowledged"] == events["sent"]
    assert events["lost"] == events["twice"] == 0
    assert scenario["fault"]["down_s"] >= 1.0
    assert all(v is not None for v in scenario["recovery_s"].values())
    assert set(scenario["recovery_s"]) == {"events", "cache", "profiles"}


def test_a_held_proxy_answers_nothing_until_released() -> None:
    """The stall of ``elasticsearch-stall`` with ``--es-url``: connections are accepted, the
    bytes wait in the proxy, and arrive once it is released."""
    import socket
    import threading

    from benchmarks.servers import TcpProxy

    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def echo() -> None:
        conn, _ = server.accept()
        with conn:
            while data := conn.recv(1024):
                conn.sendall(data)

    threading.Thread(target=echo, daemon=True).start()
    proxy = TcpProxy("127.0.0.1", port)
    proxy.start()
    try:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as client:
            client.sendall(b"one")
            assert client.recv(16) == b"one"
            proxy.hold()
            client.sendall(b"two")
            client.settimeout(0.3)
            with pytest.raises(TimeoutError):
                client.recv(16)
            proxy.release()
            client.settimeout(5)
            assert client.recv(16) == b"two"
    finally:
        proxy.cut()
        server.close()
