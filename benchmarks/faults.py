"""Searches and events under load while Redis and Elasticsearch are killed, while Elasticsearch
is frozen, during re-indexing, and with duplicate event ids: what failed, what was lost, how
slow the answers were during the outage, how long recovery took.

    python -m benchmarks.faults
        [--scenarios redis,elasticsearch,elasticsearch-stall,reindex,duplicates]
        [--seconds 30] [--max-requests 20000] [--before 5] [--outage 5] [--after 5]
        [--search-clients 4] [--event-clients 2] [--event-rate 0] [--max-batch 20] [--users 8]
        [--duplicate-clients 4] [--duplicate-ids 500] [--spool-timeout 60]
        [--catalog data/sample_catalog.jsonl] [--embedder packaged:all-minilm-l6-v2]
        [--es-url URL] [--es-signal kill|term] [--out bench-results/faults.json]

The command owns its servers: a redis-server on a free loopback port that persists every write
before replying (append-only file, ``appendfsync always``: profiles are state, and a SIGKILL
must not lose an acknowledged event), and a single-node Elasticsearch 8.12.2 started from the
install `scripts/services.sh` caches, on its own port and data folder (`benchmarks.servers`).
With ``--es-url`` it uses that Elasticsearch instead, behind a loopback TCP proxy, and
"killing" it cuts the proxy (every connection closed, new ones refused) and "restarting"
restores it, "freezing" it holds the proxy (connections accepted, no byte forwarded either way)
and "resuming" releases it: said so in the output. The catalog is indexed once (behind the alias
``bench-faults-<pid>``, deleted afterwards) and the API runs as its own process, ``python -m
app.cli serve`` (one uvicorn worker, real middleware, authentication with the run's own key,
rate limits off as in `benchmarks.load`), on Elasticsearch, a Redis cache and Redis profiles.

Every scenario runs against that one server, bounded by ``--seconds`` of load (stretched while
a restart and its recovery take longer, at most ``--recovery-timeout`` more) and by
``--max-requests`` requests. Search clients cycle through an anonymous uncached search, the
same search through the cache, and a shopper's personalized uncached search, over queries made
of the first three words of the catalog's titles. Event clients post batches of one to three
events (views, clicks, carts, purchases of catalog products) with fresh ids, round-robin over
``--users`` shoppers, and retry a failed batch with the same ids (as a shop should) until it is
acknowledged. A client waits ``--retry-delay`` after a failed request. With ``--event-rate``
the event clients together pace their events to that many a second (a tracker): a client that
falls behind (slow answers, retries) catches up with larger batches, of at most
``--max-batch`` events; without it each sends its next batch as soon as the last is answered.
An acknowledged batch was applied, or ``queued`` (the API's spool keeps events while the profile
store or the catalog is down and applies them later): either way it is not sent again.

- ``redis``: after ``--before`` seconds Redis is SIGKILLed, restarted ``--outage`` seconds
  later on the same port and files. Recovered when, sent after the restart, an event is
  applied (acknowledged and not queued: profiles written), a search is served from the cache,
  and a search is personalized (profiles read).
- ``elasticsearch``: the same with Elasticsearch (``--es-signal``: SIGKILL or SIGTERM), whose
  restart takes its own time ("ready s"). Recovered when an uncached search and an event
  (which reads the products) succeed, the event applied.
- ``elasticsearch-stall``: Elasticsearch frozen instead (SIGSTOP, then SIGCONT after
  ``--outage`` seconds; with ``--es-url``, the proxy held): its connections stay open and
  nothing answers, so the API meets its deadline and its circuit breaker rather than refused
  connections. "ready s" is SIGCONT to cluster health yellow; recovered as ``elasticsearch``.
- ``reindex``: the full catalog is indexed again, into a new index that the alias swaps to,
  over and over while the load runs (pausing half a second between builds).
- ``duplicates``: ``--duplicate-clients`` clients post the same ``--duplicate-ids`` event ids
  for one shopper, each in its own order, in batches of one to five that sometimes repeat an id
  within the batch. No fault.

From a restart on, a recovery probe sends, every 100 ms, whichever of those requests has not
yet succeeded since the restart (so recovery is measured even when ``--max-requests`` has
stopped the load); it also reads ``/health`` every 200 ms until the API's event spool is empty
("spool empty s": every queued event applied). After the load, every batch not yet
acknowledged is sent again until it is (at most ``--drain-timeout`` seconds), and the command
waits until ``/health`` reports the event spool empty (at most ``--spool-timeout`` seconds: the
API drains it every few seconds). Then each shopper's profile is read back from Redis (the
profile store): events counted, and the ids of the events stored.

Reported per scenario: requests sent, answered 2xx, failed (any other status or a transport
error), 503s (the API saying cleanly that a backend is down), other 5xx, 500s, 2xx searches
with no results; events sent (distinct ids), queued (the sum of ``queued`` in the answers),
counted by the profiles, lost (acknowledged, applied or queued, but not counted), counted
twice; how long the server was down, how long its restart took until it served ("ready": Redis
answering PING, Elasticsearch's cluster health yellow), and from the restart until everything
listed above worked again ("back"). For the requests that started during the outage (the
whole load when there is none): latency p50, p99 and max (by kind too), requests answered (any
HTTP status) and answered 2xx per second, and the events a second the event clients sent; the
same before the fault and after the restart, for comparison. Exits 1 when a request got a 5xx
other than 503, an event was lost, counted twice or never acknowledged, the API accepted more
events than were counted, or the stack did not recover; 0 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import random
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from app.auth.keys import key_entry, new_key
from benchmarks.load import _UNUSED_LLM_URL, DEFAULT_EMBEDDER, Server, start_server
from benchmarks.relevance import machine
from benchmarks.servers import (
    ES_VERSION,
    OwnElasticsearch,
    OwnRedis,
    TcpProxy,
    free_port,
    wait_es_ready,
)

SCENARIOS = ("redis", "elasticsearch", "elasticsearch-stall", "reindex", "duplicates")
TITLES = {
    "redis": "Redis killed",
    "elasticsearch": "Elasticsearch killed",
    "elasticsearch-stall": "Elasticsearch frozen",
    "reindex": "full re-index",
    "duplicates": "duplicate events",
}
# What must work again after each fault, from the restart on.
RECOVERY_KINDS = {
    "redis": ("events", "cache", "profiles"),
    "elasticsearch": ("search", "events"),
    "elasticsearch-stall": ("search", "events"),
}
EVENT_TYPES = ("view", "view", "click", "cart", "purchase")
MAX_EVENTS_KEPT = 100_000  # the server keeps every event of a shopper, so all can be read back
KEY = new_key("bench-faults")  # the run's own key: the server accepts it, and only it
AUTH = {"Authorization": f"Bearer {KEY}"}


# -- arguments -----------------------------------------------------------------------------


def _scenarios(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names or set(names) - set(SCENARIOS):
        msg = f"expected a comma-separated list of {', '.join(SCENARIOS)}: {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return [name for name in SCENARIOS if name in names]  # canonical order, once each


def _number(kind: Callable[[str], float | int], *, zero: bool) -> Callable[[str], Any]:
    """An argparse type: a number of ``kind``, positive (or zero too, with ``zero``)."""

    def parse(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            msg = f"not a number: {text!r}"
            raise argparse.ArgumentTypeError(msg) from None
        if value < 0 or (value == 0 and not zero):
            wanted = "zero or a positive number" if zero else "a positive number"
            msg = f"expected {wanted}, got {text}"
            raise argparse.ArgumentTypeError(msg)
        return value

    return parse


def _positive(kind: Callable[[str], float | int]) -> Callable[[str], Any]:
    return _number(kind, zero=False)


def _non_negative(kind: Callable[[str], float | int]) -> Callable[[str], Any]:
    return _number(kind, zero=True)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command's arguments (`SystemExit` on a bad one, as argparse does)."""
    assert __doc__ is not None
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", type=_scenarios, default=list(SCENARIOS))
    parser.add_argument("--seconds", type=_positive(float), default=30.0, help="load per scenario")
    parser.add_argument(
        "--max-requests", type=_positive(int), default=20_000, help="load requests per scenario"
    )
    parser.add_argument(
        "--before", type=_positive(float), default=5.0, help="load before the fault"
    )
    parser.add_argument(
        "--outage", type=_positive(float), default=5.0, help="seconds the server stays down"
    )
    parser.add_argument(
        "--after", type=_positive(float), default=5.0, help="load kept after the recovery"
    )
    parser.add_argument("--recovery-timeout", type=_positive(float), default=120.0)
    parser.add_argument("--drain-timeout", type=_positive(float), default=60.0)
    parser.add_argument(
        "--spool-timeout",
        type=_positive(float),
        default=60.0,
        help="wait at most this long for the API's event spool to be empty before reading back",
    )
    parser.add_argument("--search-clients", type=_positive(int), default=4)
    parser.add_argument("--event-clients", type=_positive(int), default=2)
    parser.add_argument(
        "--event-rate",
        type=_non_negative(float),
        default=0.0,
        help="events a second the event clients pace themselves to, together (0: unpaced)",
    )
    parser.add_argument(
        "--max-batch",
        type=_positive(int),
        default=20,
        help="largest batch a paced event client sends to catch up",
    )
    parser.add_argument("--users", type=_positive(int), default=8, help="shoppers of the events")
    parser.add_argument("--duplicate-clients", type=_positive(int), default=4)
    parser.add_argument("--duplicate-ids", type=_positive(int), default=500)
    parser.add_argument(
        "--retry-delay", type=_positive(float), default=0.1, help="a client's wait after a failure"
    )
    parser.add_argument("--catalog", type=Path, default=Path("data/sample_catalog.jsonl"))
    parser.add_argument("--embedder", default=DEFAULT_EMBEDDER)
    parser.add_argument(
        "--es-url", help="use this Elasticsearch behind a TCP proxy (a cut, not a kill)"
    )
    parser.add_argument("--es-signal", choices=["kill", "term"], default="kill")
    parser.add_argument("--startup-timeout", type=_positive(float), default=600.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("bench-results/faults.json"))
    args = parser.parse_args(argv)
    if args.before >= args.seconds:
        parser.error(f"--before ({args.before}) must be less than --seconds ({args.seconds})")
    return args


# -- what happened to each request ---------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """One request: its kind (search, cached, personal, event), when it was sent and answered
    (seconds since the scenario began), its status (None: transport error) and error code;
    for an event batch, how many of its events the API queued rather than applied."""

    kind: str
    sent: float
    done: float
    status: int | None
    code: str | None = None
    cached: bool = False
    personalized: bool = False
    empty: bool = False
    phase: str = "load"  # load, probe (after a restart) or drain (events sent again at the end)
    queued: int = 0

    @property
    def latency(self) -> float:
        return self.done - self.sent

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def label(self) -> str:
        """How it failed: ``503 store_unavailable``, ``ConnectError``, ..."""
        if self.status is None:
            return str(self.code)
        return f"{self.status} {self.code}" if self.code else str(self.status)


def summarize_requests(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """Counts of the requests: sent, ok, failed, by status class and by failure."""
    failed = [o for o in outcomes if not o.ok]
    statuses = [o.status for o in failed if o.status is not None]
    by_kind: dict[str, dict[str, int]] = {}
    for o in outcomes:
        entry = by_kind.setdefault(o.kind, {"sent": 0, "ok": 0})
        entry["sent"] += 1
        entry["ok"] += o.ok
    return {
        "sent": len(outcomes),
        "ok": len(outcomes) - len(failed),
        "failed": len(failed),
        "status_503": sum(s == 503 for s in statuses),
        "status_5xx_other": sum(s >= 500 and s != 503 for s in statuses),
        "status_500": sum(s == 500 for s in statuses),
        "status_4xx": sum(400 <= s < 500 for s in statuses),
        "transport_errors": sum(o.status is None for o in failed),
        "empty_results": sum(o.ok and o.empty for o in outcomes),
        "failures": dict(Counter(o.label() for o in failed).most_common()),
        "by_kind": by_kind,
        "by_phase": dict(Counter(o.phase for o in outcomes)),
    }


def recovered(o: Outcome, kind: str) -> bool:
    """Whether ``o`` shows that ``kind`` works: an event batch applied (acknowledged, none
    queued), a cached search, a personalized search, an uncached search."""
    if not o.ok:
        return False
    if kind == "events":
        return o.kind == "event" and not o.queued  # applied: queued says the store is down
    if kind == "cache":
        return o.cached
    if kind == "profiles":
        return o.personalized
    if kind == "search":
        return o.kind in ("search", "personal") and not o.cached
    msg = f"unknown recovery kind {kind!r}"
    raise ValueError(msg)


def recoveries(
    outcomes: Sequence[Outcome], since: float, kinds: Sequence[str]
) -> dict[str, float | None]:
    """Per kind, seconds from ``since`` to the answer of the first request sent at or after
    ``since`` that shows it works (None: none did)."""
    found: dict[str, float | None] = {}
    for kind in kinds:
        done = [o.done for o in outcomes if o.sent >= since and recovered(o, kind)]
        found[kind] = round(min(done) - since, 3) if done else None
    return found


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile of ``values`` by nearest rank (the smallest value with at least
    ``q`` % of them at or below it); None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def _latencies(values: Sequence[float]) -> dict[str, float | None]:
    def r(v: float | None) -> float | None:
        return None if v is None else round(v, 4)

    return {
        "p50": r(percentile(values, 50)),
        "p99": r(percentile(values, 99)),
        "max": r(max(values) if values else None),
    }


def window_figures(outcomes: Sequence[Outcome], start: float, end: float) -> dict[str, Any]:
    """The requests that started in ``[start, end)`` (seconds of the scenario; the drain at
    the end left out): how many, their latency (p50, p99, max; by kind too, and of those
    answered 2xx), and per second of the window, the requests answered (any HTTP status) and
    answered 2xx in it (by when the answer came)."""
    span = max(end - start, 1e-9)
    started = [o for o in outcomes if start <= o.sent < end and o.phase != "drain"]
    answered = [
        o for o in outcomes if start <= o.done < end and o.status is not None and o.phase != "drain"
    ]
    by_kind: dict[str, dict[str, Any]] = {}
    for kind in sorted({o.kind for o in started}):
        mine = [o for o in started if o.kind == kind]
        by_kind[kind] = {
            "requests": len(mine),
            "ok": sum(o.ok for o in mine),
            "latency_s": _latencies([o.latency for o in mine]),
        }
    return {
        "start_s": round(start, 3),
        "end_s": round(end, 3),
        "requests": len(started),
        "ok": sum(o.ok for o in started),
        "status_503": sum(o.status == 503 for o in started),
        "latency_s": _latencies([o.latency for o in started]),
        "ok_latency_s": _latencies([o.latency for o in started if o.ok]),
        "over_1_5_s": sum(o.latency > 1.5 for o in started),
        "answered_per_s": round(len(answered) / span, 1),
        "ok_per_s": round(sum(o.ok for o in answered) / span, 1),
        "by_kind": by_kind,
    }


def event_rate(batches: Sequence[Batch], start: float, end: float) -> dict[str, float]:
    """The events the event clients (not the probe) first sent in ``[start, end)``: how many,
    and how many a second."""
    sent = sum(len(b.events) for b in batches if b.source == "load" and start <= b.at < end)
    return {"events": sent, "per_s": round(sent / max(end - start, 1e-9), 1)}


def event_figures(
    *,
    sent_ids: set[str],
    acked_ids: set[str],
    posted: int,
    accepted: int,
    duplicates: int,
    stored: Mapping[str, tuple[int, Sequence[str]]],
    queued: int = 0,
) -> dict[str, int]:
    """The events' account: ``stored`` holds, per shopper, the events their profile counted and
    the ids of the events kept; ``queued``: the events the API answered it queued. Lost:
    acknowledged (applied or queued) but not kept; twice: counted or kept more often than there
    are distinct ids kept; accepted_over: the API said "accepted" more often than events were
    counted (it would have applied one twice)."""
    kept: list[str] = [i for _, ids in stored.values() for i in ids]
    distinct = set(kept)
    counted = sum(count for count, _ in stored.values())
    twice = sum(
        max(count - len(set(ids)), len(ids) - len(set(ids)), 0) for count, ids in stored.values()
    )
    return {
        "sent": len(sent_ids),
        "posted": posted,
        "acknowledged": len(acked_ids),
        "unacknowledged": len(sent_ids - acked_ids),
        "accepted": accepted,
        "queued": queued,
        "duplicates_reported": duplicates,
        "counted": counted,
        "kept": len(kept),
        "lost": len(acked_ids - distinct),
        "twice": twice,
        "unknown": len(distinct - sent_ids),
        "accepted_over": max(accepted - counted, 0),
    }


def problems(scenario: Mapping[str, Any]) -> list[str]:
    """What makes a scenario fail the check."""
    found = []
    requests, events = scenario["requests"], scenario["events"]
    if requests["status_5xx_other"]:
        found.append(f"{requests['status_5xx_other']} responses 5xx other than 503")
    if events["lost"]:
        found.append(f"{events['lost']} acknowledged events lost")
    if events["twice"]:
        found.append(f"{events['twice']} events counted twice")
    if events["accepted_over"]:
        found.append(f"{events['accepted_over']} more events accepted than counted")
    if events["unacknowledged"]:
        found.append(f"{events['unacknowledged']} events never acknowledged")
    if scenario.get("fault") is not None:
        missing = [k for k, v in scenario["recovery_s"].items() if v is None]
        if missing or scenario["fault"].get("error"):
            found.append(f"did not recover: {', '.join(missing) or scenario['fault']['error']}")
    if scenario.get("errors"):
        found.append(f"{len(scenario['errors'])} errors in the run: {scenario['errors'][0]}")
    return found


# -- the run's state -----------------------------------------------------------------------


@dataclass
class Batch:
    """Events posted together, sent again with the same ids until acknowledged; when it was
    first sent (seconds of the scenario) and by whom (load: an event client, probe)."""

    events: list[dict[str, Any]]
    acked: bool = False
    at: float = 0.0
    source: str = "load"


@dataclass
class Ledger:
    """Every event batch of a scenario and what the API answered."""

    batches: list[Batch] = field(default_factory=list)
    accepted: int = 0
    duplicates: int = 0
    queued: int = 0
    posted: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    _acked_users: set[str] = field(default_factory=set)

    def add(self, events: list[dict[str, Any]], at: float = 0.0, source: str = "load") -> Batch:
        batch = Batch(events, at=at, source=source)
        with self.lock:
            self.batches.append(batch)
        return batch

    def answered(self, batch: Batch, body: Mapping[str, Any] | None) -> None:
        """Record one post of ``batch``: its 2xx body, or None when it failed."""
        with self.lock:
            self.posted += len(batch.events)
            if body is not None:
                batch.acked = True
                self._acked_users.update(e["user_id"] for e in batch.events)
                self.accepted += int(body.get("accepted", 0))
                self.duplicates += int(body.get("duplicates", 0))
                self.queued += int(body.get("queued", 0))

    def pending(self) -> list[Batch]:
        with self.lock:
            return [b for b in self.batches if not b.acked]

    def all(self) -> list[Batch]:
        with self.lock:
            return list(self.batches)

    def users(self) -> list[str]:
        with self.lock:
            return sorted({e["user_id"] for b in self.batches for e in b.events})

    def acked_users(self) -> list[str]:
        """The shoppers with an acknowledged event (they have a profile)."""
        with self.lock:
            return sorted(self._acked_users)

    def figures(self, stored: Mapping[str, tuple[int, Sequence[str]]]) -> dict[str, int]:
        with self.lock:
            sent = {e["event_id"] for b in self.batches for e in b.events}
            acked = {e["event_id"] for b in self.batches if b.acked for e in b.events}
            return event_figures(
                sent_ids=sent,
                acked_ids=acked,
                posted=self.posted,
                accepted=self.accepted,
                duplicates=self.duplicates,
                stored=stored,
                queued=self.queued,
            )


class Run:
    """One scenario in progress: its clock, its request budget, what happened."""

    def __init__(self, name: str, url: str, budget: int, retry_delay_s: float) -> None:
        self.name = name
        self.url = url
        self.budget = budget
        self.retry_delay_s = retry_delay_s
        self.t0 = time.monotonic()
        self.stop = threading.Event()
        self.outcomes: list[Outcome] = []
        self.ledger = Ledger()
        self.errors: list[str] = []
        self._taken = 0
        self._lock = threading.Lock()
        self._ids = 0
        self.tag = f"{os.getpid()}-{int(time.time())}-{name[:3]}"

    def now(self) -> float:
        return time.monotonic() - self.t0

    def take(self) -> bool:
        """Spend one request of the budget (False: none left)."""
        with self._lock:
            if self._taken >= self.budget:
                return False
            self._taken += 1
            return True

    def event_id(self) -> str:
        with self._lock:
            self._ids += 1
            return f"{self.tag}-{self._ids}"

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=AUTH, timeout=60)

    def request(
        self,
        client: httpx.Client,
        kind: str,
        path: str,
        body: dict[str, Any],
        *,
        phase: str = "load",
    ) -> tuple[Outcome, dict[str, Any] | None]:
        """POST ``body``; the outcome (recorded) and the 2xx body."""
        sent = self.now()
        try:
            response = client.post(path, json=body)
        except httpx.HTTPError as exc:
            outcome = Outcome(kind, sent, self.now(), None, type(exc).__name__, phase=phase)
            self.outcomes.append(outcome)
            return outcome, None
        done = self.now()
        try:
            data = response.json()
        except ValueError:
            data = {}
        data = data if isinstance(data, dict) else {}
        ok = 200 <= response.status_code < 300
        error = data.get("error") if not ok else None
        outcome = Outcome(
            kind,
            sent,
            done,
            response.status_code,
            str(error.get("code")) if isinstance(error, dict) else None,
            cached=ok and bool(data.get("cached")),
            personalized=ok and bool(data.get("personalized")),
            empty=ok and kind != "event" and not data.get("results"),
            phase=phase,
            queued=int(data.get("queued") or 0) if ok and kind == "event" else 0,
        )
        self.outcomes.append(outcome)
        return outcome, data if ok else None

    def post_batch(self, client: httpx.Client, batch: Batch, *, phase: str = "load") -> bool:
        """Post ``batch`` once; whether it was acknowledged."""
        _, body = self.request(client, "event", "/events", {"events": batch.events}, phase=phase)
        self.ledger.answered(batch, body)
        return body is not None

    def guard(self, work: Callable[[], None]) -> Callable[[], None]:
        """``work`` with any exception kept as an error of the run (and the run stopped)."""

        def run() -> None:
            try:
                work()
            except Exception as exc:  # a bug of the benchmark, reported, not swallowed
                logging.getLogger(__name__).exception("%s: a client failed", self.name)
                self.errors.append(f"{type(exc).__name__}: {exc}")
                self.stop.set()

        return run


# -- the clients ---------------------------------------------------------------------------


def search_client(run: Run, queries: Sequence[str], users: Sequence[str], seed: int) -> None:
    """Anonymous, cached and personalized searches in turn until stopped."""
    rng = random.Random(seed)  # noqa: S311 - reproducible load, not security
    with run.client() as client:
        turn = seed
        while not run.stop.is_set() and run.take():
            turn += 1
            query = rng.choice(queries)
            kind = ("search", "cached", "personal")[turn % 3]
            body: dict[str, Any] = {"query": query, "cache": kind == "cached"}
            if kind == "personal":
                known = run.ledger.acked_users() or list(users)
                body["user_id"] = rng.choice(known)
            outcome, _ = run.request(client, kind, "/search", body)
            if not outcome.ok:
                run.stop.wait(run.retry_delay_s)


def new_events(
    run: Run, user: str, products: Sequence[str], rng: random.Random, count: int | None = None
) -> list[dict]:
    """``count`` new events of ``user`` (None: one to three)."""
    return [
        {
            "event_id": run.event_id(),
            "user_id": user,
            "type": rng.choice(EVENT_TYPES),
            "product_id": rng.choice(products),
        }
        for _ in range(rng.randint(1, 3) if count is None else count)
    ]


def batch_size(
    elapsed_s: float, sent: int, rate: float, max_batch: int, rng: random.Random
) -> tuple[int, float]:
    """A paced client's next batch after ``elapsed_s`` seconds with ``sent`` events sent at
    ``rate`` events a second: (its size, seconds to wait before sending it). One to three
    events when on time; when behind, the events owed, up to ``max_batch``."""
    size = rng.randint(1, 3)
    due = sent / rate
    if due > elapsed_s:
        return size, due - elapsed_s
    owed = math.floor(elapsed_s * rate) - sent
    return max(size, min(owed, max_batch)), 0.0


def event_client(
    run: Run,
    users: Sequence[str],
    products: Sequence[str],
    seed: int,
    rate: float = 0.0,
    max_batch: int = 20,
) -> None:
    """Batches of new events, round-robin over ``users``, paced to ``rate`` events a second
    (0: unpaced; see `batch_size`); a failed batch is sent again (same ids) until acknowledged
    or stopped (then the drain sends it)."""
    rng = random.Random(seed)  # noqa: S311 - reproducible load, not security
    with run.client() as client:
        turn = seed
        began, sent = run.now(), 0
        while not run.stop.is_set() and run.take():
            turn += 1
            count = None
            if rate > 0:
                count, wait = batch_size(run.now() - began, sent, rate, max_batch, rng)
                if wait > 0 and run.stop.wait(wait):
                    return
            events = new_events(run, users[turn % len(users)], products, rng, count)
            sent += len(events)
            batch = run.ledger.add(events, at=run.now())
            while not run.post_batch(client, batch):
                if run.stop.wait(run.retry_delay_s) or not run.take():
                    return


def duplicate_client(
    run: Run, user: str, ids: Sequence[str], products: Sequence[str], seed: int
) -> None:
    """Every id of ``ids`` for ``user``, in an order of its own, in batches of one to five that
    sometimes repeat an id; a failed batch is sent again."""
    rng = random.Random(seed)  # noqa: S311 - reproducible load, not security
    order = list(ids)
    rng.shuffle(order)
    with run.client() as client:
        start = 0
        while start < len(order) and not run.stop.is_set() and run.take():
            chunk = order[start : start + rng.randint(1, 5)]
            start += len(chunk)
            if rng.random() < 0.2:
                chunk.append(rng.choice(chunk))  # the same id twice in one batch
            events = [
                {
                    "event_id": event_id,
                    "user_id": user,
                    "type": "view",
                    "product_id": products[int(event_id.rsplit("-", 1)[1]) % len(products)],
                }
                for event_id in chunk
            ]
            batch = run.ledger.add(events)
            while not run.post_batch(client, batch):
                if run.stop.wait(run.retry_delay_s) or not run.take():
                    return


def probe(
    run: Run,
    kinds: Sequence[str],
    since: float,
    query: str,
    products: Sequence[str],
    probe_user: str,
) -> None:
    """After a restart: every 100 ms, the request of each kind not yet seen working since
    ``since``, until all are or the run stops."""
    rng = random.Random(7)  # noqa: S311 - reproducible load, not security
    batch: Batch | None = None
    with run.client() as client:
        while not run.stop.is_set():
            missing = [k for k, v in recoveries(run.outcomes, since, kinds).items() if v is None]
            if not missing:
                return
            for kind in missing:
                if kind == "events":
                    if batch is None or batch.acked:
                        events = new_events(run, probe_user, products, rng)
                        batch = run.ledger.add(events, at=run.now(), source="probe")
                    run.post_batch(client, batch, phase="probe")
                elif kind == "cache":
                    run.request(client, "cached", "/search", {"query": query}, phase="probe")
                elif kind == "profiles":
                    users = run.ledger.acked_users()
                    if users:
                        body = {"query": query, "cache": False, "user_id": users[0]}
                        run.request(client, "personal", "/search", body, phase="probe")
                else:
                    body = {"query": query, "cache": False}
                    run.request(client, "search", "/search", body, phase="probe")
            run.stop.wait(0.1)


def spool_queued(client: httpx.Client) -> int | None:
    """The events waiting in the API's spool, by ``/health`` (None: no answer)."""
    try:
        response = client.get("/health")
        data = response.json()
    except (httpx.HTTPError, ValueError):
        return None
    spool = data.get("event_spool") if isinstance(data, dict) else None
    return int(spool.get("queued", 0)) if isinstance(spool, dict) else None


def watch_spool(run: Run, since: float, seen: dict[str, Any]) -> None:
    """After a restart at ``since``: read ``/health`` every 200 ms until the event spool is
    empty or the run stops; ``seen`` gets the most events seen queued and, once empty,
    ``empty_s``: seconds from ``since``."""
    with run.client() as client:
        while not run.stop.is_set():
            queued = spool_queued(client)
            if queued is not None:
                seen["max_queued"] = max(seen.get("max_queued", 0), queued)
                if queued == 0:
                    seen["empty_s"] = round(run.now() - since, 3)
                    return
            run.stop.wait(0.2)


def wait_for_spool(run: Run, timeout_s: float) -> dict[str, Any]:
    """Wait until ``/health`` reports the API's event spool empty (at most ``timeout_s``):
    the events queued at the first look, the seconds waited, and what was left (None: no
    answer)."""
    started = time.monotonic()
    first: int | None = None
    queued: int | None = None
    with run.client() as client:
        while True:
            queued = spool_queued(client)
            if first is None:
                first = queued
            if queued == 0 or time.monotonic() - started > timeout_s:
                break
            time.sleep(0.25)
    return {
        "queued_at_end_of_load": first,
        "waited_s": round(time.monotonic() - started, 2),
        "left": queued,
    }


def drain(run: Run, timeout_s: float) -> None:
    """Send every unacknowledged batch again until acknowledged (at most ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    with run.client() as client:
        for batch in run.ledger.pending():
            while not run.post_batch(client, batch, phase="drain"):
                if time.monotonic() > deadline:
                    return
                time.sleep(0.2)


# -- the stack -----------------------------------------------------------------------------


class Stack:
    """Elasticsearch (own node, or a proxy to ``--es-url``), an own Redis, the catalog indexed,
    and the API server on them."""

    def __init__(self, args: argparse.Namespace, folder: Path) -> None:
        self.args = args
        self.folder = folder
        self.alias = f"bench-faults-{os.getpid()}"
        self.redis = OwnRedis(self._dir("redis"), persistent=True)
        self.own_es: OwnElasticsearch | None = None
        self.proxy: TcpProxy | None = None
        self.server: Server | None = None
        self.es_start_s: float | None = None
        self.index_s: float | None = None
        self.products: list[str] = []
        self.queries: list[str] = []
        self._store: Any = None
        self._embedder: Any = None

    def _dir(self, name: str) -> Path:
        path = self.folder / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def es_direct_url(self) -> str:
        """Where this process reaches Elasticsearch (the indexer, the clean-up)."""
        if self.own_es is not None:
            return self.own_es.url
        return str(self.args.es_url)

    @property
    def es_server_url(self) -> str:
        """Where the API reaches Elasticsearch (through the proxy with ``--es-url``)."""
        if self.proxy is not None:
            return self.proxy.url
        return self.es_direct_url

    def describe(self) -> dict[str, Any]:
        return {
            "elasticsearch": (
                f"own node {ES_VERSION} on {self.es_direct_url}, killed with "
                f"SIG{self.args.es_signal.upper()} and restarted on the same data; frozen "
                "with SIGSTOP, resumed with SIGCONT"
                if self.own_es is not None
                else f"{self.args.es_url} behind a TCP proxy; 'killed' = the proxy cut "
                "(connections closed, new ones refused), 'restarted' = restored; 'frozen' = "
                "the proxy held (connections accepted, nothing forwarded), 'resumed' = released"
            ),
            "elasticsearch_start_s": self.es_start_s,
            "redis": f"own redis-server on {self.redis.url}, append-only file, fsync always; "
            "SIGKILL, restarted on the same files",
            "alias": self.alias,
            "catalog": str(self.args.catalog),
            "products": len(self.products),
            "queries": len(self.queries),
            "index_s": self.index_s,
            "server": "python -m app.cli serve (one uvicorn worker), store elasticsearch, "
            "cache redis, profiles redis, rate limits off, generator not loaded",
            "server_startup_s": self.server.startup_s if self.server else None,
        }

    def __enter__(self) -> Stack:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> None:
        args = self.args
        if args.es_url:
            parts = urlsplit(args.es_url)
            self.proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 9200)
            self.proxy.start()
        else:
            self.own_es = OwnElasticsearch(self._dir("es"))
            sys.stderr.write(f"starting Elasticsearch {ES_VERSION} on {self.own_es.url}\n")
            self.es_start_s = round(self.own_es.start(timeout_s=args.startup_timeout), 1)
        self.redis.start()
        sys.stderr.write(f"Redis on {self.redis.url}\n")
        self._index()
        self._serve()

    def _index(self) -> None:
        from app.services import build_embedder, build_store, configure_threads
        from app.settings import Settings
        from indexer.reader import Row, read_catalog

        settings = Settings(
            data_dir=self._dir("data"),
            store="elasticsearch",
            elasticsearch_url=self.es_direct_url,
            elasticsearch_alias=self.alias,
            embedder=self.args.embedder,
            _env_file=None,
        )
        configure_threads(settings)
        self._embedder = build_embedder(settings)
        self._store = build_store(settings)
        rows = [row for row in read_catalog(self.args.catalog) if isinstance(row, Row)]
        self.products = [row.product.id for row in rows]
        titles = [row.product.title for row in rows]
        self.queries = list(dict.fromkeys(" ".join(t.split()[:3]) for t in titles[:100]))
        sys.stderr.write(f"indexing {self.args.catalog} with {self.args.embedder}\n")
        started = time.perf_counter()
        report = self.reindex()
        self.index_s = round(time.perf_counter() - started, 1)
        if not report["ok"]:
            msg = f"indexing failed: {report['errors']}"
            raise RuntimeError(msg)

    def reindex(self) -> dict[str, Any]:
        """Index the whole catalog again: a new index, then the alias swapped to it."""
        from indexer.indexer import index_catalog
        from indexer.reader import read_catalog

        started = time.perf_counter()
        report = index_catalog(
            read_catalog(self.args.catalog), self._store, self._embedder, prune=True, progress=False
        )
        return {
            "ok": report.ok,
            "seconds": round(time.perf_counter() - started, 2),
            "products": report.indexed,
            "version": report.version,
            "errors": [str(e) for e in report.errors[:3]],
        }

    def _serve(self) -> None:
        env = {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "SHOPGUIDE_HOST": "127.0.0.1",
            "SHOPGUIDE_PORT": str(free_port()),
            "SHOPGUIDE_DATA_DIR": str(self._dir("server")),
            "SHOPGUIDE_STORE": "elasticsearch",
            "SHOPGUIDE_ELASTICSEARCH_URL": self.es_server_url,
            "SHOPGUIDE_ELASTICSEARCH_ALIAS": self.alias,
            "SHOPGUIDE_CACHE": "redis",
            "SHOPGUIDE_REDIS_URL": self.redis.url,
            "SHOPGUIDE_PROFILES": "redis",
            "SHOPGUIDE_PROFILES_REDIS_URL": self.redis.url,
            "SHOPGUIDE_PROFILE_MAX_EVENTS": str(MAX_EVENTS_KEPT),
            "SHOPGUIDE_EMBEDDER": self.args.embedder,
            "SHOPGUIDE_RERANKER": "none",
            "SHOPGUIDE_LLM_BACKEND": "openai",
            "SHOPGUIDE_LLM_BASE_URL": _UNUSED_LLM_URL,
            "SHOPGUIDE_LLM_PRIME": "false",
            "SHOPGUIDE_RATE_LIMIT_SEARCH_PER_MINUTE": "0",  # the faults, not the limits
            "SHOPGUIDE_RATE_LIMIT_ANSWERS_PER_MINUTE": "0",
            "SHOPGUIDE_LOG_LEVEL": "WARNING",
            "SHOPGUIDE_LOG_JSON": "true",
            "SHOPGUIDE_API_KEYS": json.dumps([key_entry(KEY, ["search", "events", "profiles"])]),
        }
        sys.stderr.write(f"starting the API on port {env['SHOPGUIDE_PORT']}\n")
        self.server = start_server(env, self.folder / "server.log", self.args.startup_timeout)

    @property
    def server_log(self) -> Path:
        return self.folder / "server.log"

    def kill(self, target: str) -> None:
        if target == "redis":
            self.redis.kill()
        elif target == "elasticsearch-stall":
            if self.own_es is not None:
                self.own_es.pause()
            else:
                assert self.proxy is not None
                self.proxy.hold()
        elif self.own_es is not None:
            sig = signal.SIGKILL if self.args.es_signal == "kill" else signal.SIGTERM
            self.own_es.kill(sig)
        else:
            assert self.proxy is not None
            self.proxy.cut()

    def restart(self, target: str) -> None:
        if target == "redis":
            self.redis.start(timeout_s=self.args.recovery_timeout)
        elif target == "elasticsearch-stall":
            if self.own_es is not None:
                self.own_es.resume(timeout_s=self.args.recovery_timeout)
            else:
                assert self.proxy is not None
                self.proxy.release()
                deadline = time.monotonic() + self.args.recovery_timeout
                if not wait_es_ready(self.proxy.url, deadline):
                    msg = "Elasticsearch did not serve through the released proxy"
                    raise RuntimeError(msg)
        elif self.own_es is not None:
            self.own_es.start(timeout_s=self.args.recovery_timeout)
        else:
            assert self.proxy is not None
            self.proxy.restore()

    def stored(self, users: Sequence[str]) -> dict[str, tuple[int, list[str]]]:
        """Per shopper, the events their profile counted and the ids of the events kept."""
        from personalization.stores.redis import RedisProfileStore

        store = RedisProfileStore(self.redis.url, max_events=MAX_EVENTS_KEPT, socket_timeout_s=10)
        try:
            found: dict[str, tuple[int, list[str]]] = {}
            for user in users:
                profile = store.profile(user)
                ids = [e.event_id for e in store.events(user, MAX_EVENTS_KEPT)]
                found[user] = (profile.events if profile is not None else 0, ids)
            return found
        finally:
            store.close()

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
        if self._store is not None:
            with contextlib.suppress(Exception):
                self._store.drop()
            self._store.close()
        if self.own_es is not None:
            self.own_es.stop()  # resumes a frozen node first
        if self.proxy is not None:
            self.proxy.cut()
        self.redis.stop()


def server_errors(log: Path, offset: int) -> tuple[int, list[str], dict[str, str]]:
    """Error lines the server logged after ``offset``: how many, the distinct messages, and
    the end of the first traceback logged with each of the five commonest."""
    count, messages = 0, Counter[str]()
    traces: dict[str, str] = {}
    with contextlib.suppress(OSError), log.open("rb") as f:
        f.seek(offset)
        for line in f:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict) and entry.get("level") in ("error", "critical"):
                count += 1
                message = str(entry.get("msg", ""))[:200]
                messages[message] += 1
                if entry.get("exc") and message not in traces:
                    traces[message] = str(entry["exc"])[-1500:]
    common = messages.most_common(5)
    return (
        count,
        [f"{n} x {msg}" for msg, n in common],
        {msg: traces[msg] for msg, _ in common if msg in traces},
    )


# -- the scenarios -------------------------------------------------------------------------


def run_scenario(name: str, stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    """One scenario, its figures and its problems."""
    assert stack.server is not None
    sys.stderr.write(f"scenario {name}: {TITLES[name]}\n")
    log_offset = stack.server_log.stat().st_size if stack.server_log.exists() else 0
    run = Run(name, stack.server.url, args.max_requests, args.retry_delay)
    users = [f"faults-{run.tag}-u{i}" for i in range(args.users)]
    threads: list[threading.Thread] = []

    def spawn(work: Callable[[], None], label: str) -> threading.Thread:
        thread = threading.Thread(target=run.guard(work), name=f"{name}-{label}", daemon=True)
        thread.start()
        return thread

    if name == "duplicates":
        user = f"faults-{run.tag}-dup"
        ids = [f"{run.tag}-dup-{i}" for i in range(args.duplicate_ids)]
        for i in range(args.duplicate_clients):
            work = partial(duplicate_client, run, user, ids, stack.products, args.seed + i)
            threads.append(spawn(work, f"dup{i}"))
    else:
        for i in range(args.search_clients):
            work = partial(search_client, run, stack.queries, users, args.seed + i)
            threads.append(spawn(work, f"search{i}"))
        for i in range(args.event_clients):
            work = partial(
                event_client,
                run,
                users,
                stack.products,
                args.seed + 100 + i,
                args.event_rate / args.event_clients,
                args.max_batch,
            )
            threads.append(spawn(work, f"events{i}"))

    fault: dict[str, Any] | None = None
    reindexes: list[dict[str, Any]] = []
    controller: threading.Thread | None = None
    restarted = threading.Event()
    kinds = RECOVERY_KINDS.get(name, ())
    spool: dict[str, Any] = {}

    if name in RECOVERY_KINDS:
        fault = {"target": name}

        def inject() -> None:
            assert fault is not None
            if run.stop.wait(args.before):
                return
            fault["killed_at_s"] = round(run.now(), 3)
            stack.kill(name)
            sys.stderr.write(f"  {name} down at {fault['killed_at_s']} s\n")
            run.stop.wait(args.outage)
            fault["restart_at_s"] = round(run.now(), 3)
            try:
                stack.restart(name)
            except Exception as exc:
                fault["error"] = f"restart failed: {exc}"
                raise
            fault["down_s"] = round(fault["restart_at_s"] - fault["killed_at_s"], 3)
            fault["ready_s"] = round(run.now() - fault["restart_at_s"], 3)
            sys.stderr.write(f"  {name} restarted, serving after {fault['ready_s']} s\n")
            restarted.set()
            watcher = partial(watch_spool, run, fault["restart_at_s"], spool)
            threads.append(spawn(watcher, "spool"))
            probe(
                run,
                kinds,
                fault["restart_at_s"],
                stack.queries[0],
                stack.products,
                f"faults-{run.tag}-probe",
            )

        controller = spawn(inject, "fault")
    elif name == "reindex":

        def reindex() -> None:
            while not run.stop.is_set():
                entry = {"at_s": round(run.now(), 3), **stack.reindex()}
                reindexes.append(entry)
                if not entry["ok"]:
                    run.errors.append(f"re-index failed: {entry['errors']}")
                run.stop.wait(0.5)

        controller = spawn(reindex, "reindex")

    # The window: --seconds of load; after a fault, until everything recovered + --after.
    while not run.stop.is_set():
        time.sleep(0.1)
        now = run.now()
        if name == "duplicates":
            if all(not t.is_alive() for t in threads) or now >= args.seconds:
                break
            continue
        if fault is None:
            if now >= args.seconds:
                break
            continue
        if "error" in fault:
            break
        if not restarted.is_set():
            continue
        back = recoveries(run.outcomes, fault["restart_at_s"], kinds)
        end = args.seconds
        if all(v is not None for v in back.values()):
            last = fault["restart_at_s"] + max(v for v in back.values() if v is not None)
            end = max(end, last + args.after)
        elif now >= fault["restart_at_s"] + args.recovery_timeout:
            break
        else:
            end = max(end, now + 1)
        if now >= end:
            break
    run.stop.set()
    for thread in threads:
        thread.join(timeout=120)
    if controller is not None:
        controller.join(timeout=args.recovery_timeout + 60)
    load_s = run.now()
    drain(run, args.drain_timeout)
    spool["end"] = wait_for_spool(run, args.spool_timeout)
    try:
        stored = stack.stored(run.ledger.users())
    except Exception as exc:  # noqa: BLE001 - reported: the profiles could not be read
        run.errors.append(f"reading the profiles back failed: {exc}")
        stored = {}
    errors_logged, error_messages, error_traces = server_errors(stack.server_log, log_offset)
    result: dict[str, Any] = {
        "scenario": name,
        "title": TITLES[name],
        "load_s": round(load_s, 2),
        "wall_s": round(run.now(), 2),
        "requests": summarize_requests(run.outcomes),
        "events": run.ledger.figures(stored),
        "fault": fault,
        "recovery_s": (
            recoveries(run.outcomes, fault["restart_at_s"], kinds)
            if fault is not None and "restart_at_s" in fault
            else {k: None for k in kinds}
        ),
        "spool": spool,
        "windows": windows(run, fault, load_s),
        "server_errors_logged": errors_logged,
        "server_error_messages": error_messages,
        "server_error_traces": error_traces,
        "errors": run.errors,
    }
    if fault is not None:
        times = [v for v in result["recovery_s"].values() if v is not None]
        fault["back_s"] = max(times) if times and len(times) == len(kinds) else None
        fault["spool_empty_s"] = spool.get("empty_s")
    if name == "reindex":
        result["reindexes"] = reindexes
    if name == "duplicates":
        result["duplicate_ids"] = args.duplicate_ids
        result["duplicate_clients"] = args.duplicate_clients
    result["problems"] = problems(result)
    _progress(result)
    return result


def windows(run: Run, fault: Mapping[str, Any] | None, load_s: float) -> dict[str, Any]:
    """`window_figures` and `event_rate` of the outage (kill to restart), before it and after
    the restart; of the whole load ("outage" included) when there is no fault."""
    spans: dict[str, tuple[float, float]] = {"load": (0.0, load_s)}
    if fault is not None and "killed_at_s" in fault:
        killed = fault["killed_at_s"]
        restart = fault.get("restart_at_s", load_s)
        spans.update(before=(0.0, killed), outage=(killed, restart), after=(restart, load_s))
    batches = run.ledger.all()
    return {
        label: {**window_figures(run.outcomes, a, b), "events_sent": event_rate(batches, a, b)}
        for label, (a, b) in spans.items()
    }


def _progress(result: Mapping[str, Any]) -> None:
    requests, events = result["requests"], result["events"]
    sys.stderr.write(
        f"  {result['title']}: {requests['sent']} requests, {requests['failed']} failed "
        f"({requests['status_503']} 503, {requests['status_5xx_other']} other 5xx); events "
        f"{events['sent']} sent, {events['counted']} counted, {events['lost']} lost, "
        f"{events['twice']} twice; {result['wall_s']} s\n"
    )
    sys.stderr.flush()


# -- the command ---------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the scenarios; 1 when one of them has a problem (see the module)."""
    from app.logs import configure_logging

    args = parse_args(argv)
    configure_logging("WARNING", json_lines=False)
    started = time.perf_counter()
    result: dict[str, Any] = {
        "benchmark": "faults",
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine(),
        "settings": {
            key: str(value) if isinstance(value, Path) else value
            for key, value in vars(args).items()
        },
        "scenarios": [],
    }
    with tempfile.TemporaryDirectory(prefix="bench-faults-") as tmp:
        folder = Path(tmp)
        folder.chmod(0o755)  # Elasticsearch runs as nobody when this is root
        with Stack(args, folder) as stack:
            result["stack"] = stack.describe()
            for name in args.scenarios:
                result["scenarios"].append(run_scenario(name, stack, args))
    result["problems"] = {
        s["scenario"]: s["problems"] for s in result["scenarios"] if s["problems"]
    }
    result["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    result["wall_s"] = round(time.perf_counter() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    sys.stdout.write(render(result))
    sys.stdout.write(f"\nwritten to {args.out}\n")
    return 1 if result["problems"] else 0


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _n(value: int | None) -> str:
    return "-" if value is None else str(value)


def render_windows(scenarios: Sequence[Mapping[str, Any]]) -> list[str]:
    """One row per scenario: the requests that started during the outage (the whole load
    when there was none, marked *), their latency, the answers a second, the events a second
    sent, and when the event spool was empty again."""
    lines = [
        f"{'during the outage':<22} {'s':>5} {'requests':>8} {'p50 s':>6} {'p99 s':>6} "
        f"{'max s':>6} {'>1.5s':>5} {'answ/s':>7} {'2xx/s':>7} {'ev/s':>6} {'queued':>6} "
        f"{'spool s':>7}"
    ]
    for s in scenarios:
        windows = s.get("windows") or {}
        w = windows.get("outage")
        title = s["title"]
        if w is None:
            w, title = windows.get("load"), f"{title} *"
        if w is None:
            continue
        latency, fault = w["latency_s"], s.get("fault") or {}
        lines.append(
            f"{title:<22} {w['end_s'] - w['start_s']:>5.1f} {w['requests']:>8} "
            f"{_s(latency['p50']):>6} {_s(latency['p99']):>6} {_s(latency['max']):>6} "
            f"{w['over_1_5_s']:>5} {w['answered_per_s']:>7.1f} {w['ok_per_s']:>7.1f} "
            f"{w['events_sent']['per_s']:>6.1f} {s['events'].get('queued', 0):>6} "
            f"{_s(fault.get('spool_empty_s')):>7}"
        )
    return lines


def render(result: Mapping[str, Any]) -> str:
    """The printed report: the stack, one row per scenario, then the details."""
    lines: list[str] = []
    stack, settings = result["stack"], result["settings"]
    lines.append(
        f"catalog {stack['catalog']} ({stack['products']} products, {stack['queries']} "
        f"queries), embedder {settings['embedder']}; {settings['search_clients']} search + "
        f"{settings['event_clients']} event clients"
        + (f" pacing {settings['event_rate']:g} events/s" if settings.get("event_rate") else "")
        + f", {settings['seconds']:g} s a scenario "
        f"(at most {settings['max_requests']} requests), fault after {settings['before']:g} s, "
        f"down {settings['outage']:g} s"
    )
    lines.append(f"Elasticsearch: {stack['elasticsearch']}")
    lines.append(f"Redis: {stack['redis']}")
    lines.append(f"API: {stack['server']}")
    lines.append("")
    lines.append(
        f"{'scenario':<21} {'wall s':>6} {'requests':>8} {'ok':>6} {'failed':>6} {'503':>5} "
        f"{'5xx':>4} {'500':>4} {'empty':>5} {'events':>6} {'counted':>7} {'lost':>4} "
        f"{'twice':>5} {'down s':>6} {'ready s':>7} {'back s':>6}"
    )
    for s in result["scenarios"]:
        r, e, f = s["requests"], s["events"], s["fault"] or {}
        lines.append(
            f"{s['title']:<21} {s['wall_s']:>6.1f} {r['sent']:>8} {r['ok']:>6} {r['failed']:>6} "
            f"{r['status_503']:>5} {r['status_5xx_other']:>4} {r['status_500']:>4} "
            f"{r['empty_results']:>5} {e['sent']:>6} {e['counted']:>7} {e['lost']:>4} "
            f"{e['twice']:>5} {_s(f.get('down_s')):>6} {_s(f.get('ready_s')):>7} "
            f"{_s(f.get('back_s')):>6}"
        )
    lines.append("")
    lines.extend(render_windows(result["scenarios"]))
    lines.append("")
    for s in result["scenarios"]:
        r, e = s["requests"], s["events"]
        failures = ", ".join(f"{label} x{n}" for label, n in r["failures"].items()) or "none"
        kinds = ", ".join(f"{k} {v['ok']}/{v['sent']}" for k, v in sorted(r["by_kind"].items()))
        lines.append(f"{s['title']}: ok by kind {kinds}; failures {failures}")
        if s["fault"] is not None:
            back = ", ".join(f"{k} {_s(v)} s" for k, v in s["recovery_s"].items())
            lines.append(f"  working again after the restart: {back}")
        if s.get("reindexes"):
            times = [x["seconds"] for x in s["reindexes"]]
            lines.append(
                f"  {len(times)} re-indexes with alias swap, {statistics.median(times):.2f} s "
                f"median, {max(times):.2f} s max"
            )
        lines.append(
            f"  events: {e['posted']} posted (retries and repeats included), {e['sent']} "
            f"distinct ids, {e['acknowledged']} acknowledged, API answered {e['accepted']} "
            f"accepted + {e.get('queued', 0)} queued + {e['duplicates_reported']} duplicates; "
            f"profiles counted {e['counted']}, kept {e['kept']}; lost {e['lost']}, twice "
            f"{e['twice']}"
        )
        end = (s.get("spool") or {}).get("end")
        if end is not None:
            lines.append(
                f"  event spool: {_n(end['queued_at_end_of_load'])} queued when the load "
                f"ended, {_n(end['left'])} left after {end['waited_s']:.2f} s"
            )
        for label in ("before", "outage", "after"):
            w = (s.get("windows") or {}).get(label)
            if w is None:
                continue
            kinds = ", ".join(
                f"{k} {v['ok']}/{v['requests']} p99 {_s(v['latency_s']['p99'])}"
                for k, v in w["by_kind"].items()
            )
            lines.append(
                f"  {label} ({w['start_s']:.1f}-{w['end_s']:.1f} s): {w['requests']} requests, "
                f"p50 {_s(w['latency_s']['p50'])} p99 {_s(w['latency_s']['p99'])} max "
                f"{_s(w['latency_s']['max'])} s, {w['over_1_5_s']} over 1.5 s; {kinds}"
            )
        if s["server_errors_logged"]:
            lines.append(
                f"  server logged {s['server_errors_logged']} errors: "
                + "; ".join(s["server_error_messages"])
            )
        for problem in s["problems"]:
            lines.append(f"  PROBLEM: {problem}")
    verdict = "none" if not result["problems"] else f"in {', '.join(result['problems'])}"
    lines.append("")
    lines.append(
        f"problems: {verdict}; wall time {result['wall_s']} s; load average at start/end "
        f"{result['machine']['load_average_at_start'][0]}/"
        f"{result['machine']['load_average_at_end'][0]}"
    )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
