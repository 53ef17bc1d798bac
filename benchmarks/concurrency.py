"""Answers under load: N shoppers asking at once through one `AnswerService`.

Each level starts ``askers`` threads together (a barrier); each asks its questions one after
another through the same service, as the API's worker threads would, and the service's
admission control (`generation.admission`: ``SHOPGUIDE_LLM_CONCURRENCY`` answers at once,
``SHOPGUIDE_LLM_QUEUE`` waiting) decides who runs, who waits and who is refused at once with
`GeneratorBusy`. A refused asker does not retry: it moves on to its next question, and the
refusal is recorded with its ``retry_after_s`` and how long it took to come (it must be
immediate: retrieval only, no wait for the generator).

Every request is timed from the asker's side: the first streamed piece of the answer (a checked
claim, or the "cannot answer" text) and the final answer, both from the start of the request
(retrieval, the wait in line and generation included).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from benchmarks import metrics
from generation.admission import GeneratorBusy
from generation.answers import AnswerService, FinalEvent, QueuedEvent, TokenEvent
from generation.llm.base import GenerationError, GenerationTimeout

logger = logging.getLogger("benchmarks.concurrency")

DEFAULT_LEVELS = (1, 4, 8)
DEFAULT_PER_ASKER = 3
STATUSES = ("answered", "busy", "timeout", "error")


@dataclass(frozen=True)
class Ask:
    """One question about one product."""

    id: str
    product_id: str
    text: str


def levels(value: str) -> tuple[int, ...]:
    """``"1,4,8"`` as (1, 4, 8): distinct whole numbers of at least 1, in the order given."""
    try:
        numbers = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        numbers = []
    if not numbers or min(numbers) < 1:
        msg = f"expected comma-separated numbers of askers (at least 1), got '{value}'"
        raise ValueError(msg)
    return tuple(dict.fromkeys(numbers))


def ask_once(service: AnswerService, ask: Ask, asker: int, level_start: float) -> dict[str, Any]:
    """One request, streamed as the API streams it, and what became of it."""
    started = time.perf_counter()
    record: dict[str, Any] = {
        "asker": asker,
        "id": ask.id,
        "start_s": round(started - level_start, 3),
    }
    first: float | None = None
    place = 0
    try:
        for event in service.stream_ask(ask.product_id, ask.text):
            if isinstance(event, QueuedEvent):
                place = max(place, event.place)
            elif isinstance(event, TokenEvent):
                first = first or time.perf_counter()
            elif isinstance(event, FinalEvent):
                done = time.perf_counter()
                answer = event.answer
                record.update(
                    status="answered",
                    abstained=answer.abstained,
                    abstain_reason=answer.abstain_reason,
                    claims=len(answer.claims),
                    queued_place=place or None,
                    first_token_ms=round(((first or done) - started) * 1000, 1),
                    total_ms=round((done - started) * 1000, 1),
                    service_first_token_ms=answer.timings_ms.get("first_token"),
                )
                return record
        record.update(status="error", error="the answer stream ended without a final event")
    except GeneratorBusy as exc:
        record.update(
            status="busy",
            retry_after_s=exc.retry_after_s,
            refusal_ms=round((time.perf_counter() - started) * 1000, 1),
        )
    except GenerationTimeout as exc:
        record.update(
            status="timeout",
            queued_place=place or None,
            error=str(exc),
            total_ms=round((time.perf_counter() - started) * 1000, 1),
        )
    except GenerationError as exc:
        record.update(status="error", error=str(exc))
    except Exception as exc:  # one asker's failure is a row, not a hung run
        logger.exception("asker %d: %s failed", asker, ask.id)
        record.update(status="error", error=f"{type(exc).__name__}: {exc}")
    return record


def run_level(
    service: AnswerService, pool: Sequence[Ask], askers: int, per_asker: int
) -> tuple[list[dict[str, Any]], float]:
    """``askers`` threads started together, each asking ``per_asker`` questions of ``pool``
    in turn (asker i takes the i-th run of ``per_asker``, cycling when the pool is short); the
    requests, in the order they finished, and the level's wall time in seconds."""
    if not pool:
        msg = "no questions to ask"
        raise ValueError(msg)
    records: list[dict[str, Any]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(askers + 1)

    def asker(number: int) -> None:
        barrier.wait()
        for j in range(per_asker):
            ask = pool[(number * per_asker + j) % len(pool)]
            record = ask_once(service, ask, number, start)
            with lock:
                records.append(record)

    threads = [
        threading.Thread(target=asker, args=(i,), name=f"asker-{i}", daemon=True)
        for i in range(askers)
    ]
    for thread in threads:
        thread.start()
    start = time.perf_counter()
    barrier.wait()  # every asker is ready: they start together
    for thread in threads:
        thread.join()
    return records, time.perf_counter() - start


def _seconds(values_ms: Sequence[float]) -> dict[str, float]:
    summary = metrics.latency_summary(values_ms)
    if not summary.get("n"):
        return {"n": 0}
    return {
        "p50": round(summary["median"] / 1000, 3),
        "p95": round(summary["p95"] / 1000, 3),
        "max": round(summary["max"] / 1000, 3),
        "n": summary["n"],
    }


def level_scores(records: Sequence[dict[str, Any]], askers: int, wall_s: float) -> dict[str, Any]:
    """One level's counts, latencies (seconds) of the answered requests, and throughput."""
    by_status = {s: [r for r in records if r["status"] == s] for s in STATUSES}
    answered, busy = by_status["answered"], by_status["busy"]
    return {
        "askers": askers,
        "requests": len(records),
        "answered": len(answered),
        "abstained": sum(1 for r in answered if r["abstained"]),
        "queued": sum(1 for r in answered if r["queued_place"]),
        "refused_busy": len(busy),
        "retry_after_s": sorted(r["retry_after_s"] for r in busy),
        "refusal_s": _seconds([r["refusal_ms"] for r in busy]),
        "timeouts": len(by_status["timeout"]),
        "errors": len(by_status["error"]),
        "first_token_s": _seconds([r["first_token_ms"] for r in answered]),
        "total_s": _seconds([r["total_ms"] for r in answered]),
        "throughput_per_min": round(len(answered) / wall_s * 60, 2) if wall_s > 0 else None,
        "wall_s": round(wall_s, 3),
    }


def run_levels(
    service: AnswerService,
    pool: Sequence[Ask],
    askers: Sequence[int],
    per_asker: int,
    *,
    report: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Each level in turn (the previous one finished): its scores and its requests."""
    out = []
    for count in askers:
        records, wall = run_level(service, pool, count, per_asker)
        scores = level_scores(records, count, wall)
        if report is not None:
            report(scores)
        out.append({**scores, "requests_detail": records})
    return out
