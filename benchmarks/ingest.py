"""Events ingested per second through the product's own path, into the file store and Redis, for
one shopper and for many, with one worker process and with several.

    python -m benchmarks.ingest [--stores file,redis] [--shoppers 1,10000] [--workers 1,2]
        [--events 60000] [--batch 1000] [--products 5000 | --catalog data/sample_catalog.jsonl]
        [--days 7] [--redis-fsync everysec|always|no|off] [--profile] [--seed 0] [--quick]
        [--out bench-results/ingest.json]

The catalog. By default ``--products`` synthetic products (ids ``g000001``..., one of 300
brands and 60 categories each, prices 5 to 500: enough variety that profiles fill their brand
and category keys as a real catalog's do); ``--catalog`` indexes a catalog file instead (the
sample catalog has only 44 products, so every profile stays small). Either is indexed once by
the project's indexer with the hashing embedder (`retrieval.embedders.hashing.HashingEmbedder`,
384 dimensions: the size of the default all-MiniLM-L6-v2's vectors, so each profile's taste
vector weighs what it does in production) into an `EmbeddedStore` in a temporary folder, which
every worker opens, as the API's workers do.

The stores. ``file``: a `FileProfileStore` in a fresh temporary folder per run (one JSON file
per shopper, each write fsync'd and renamed, a folder-wide flock around every read-modify-write).
``redis``: a `RedisProfileStore` on a redis-server that the command starts itself on a free
loopback port (`benchmarks.servers.OwnRedis`), emptied (FLUSHALL) before each run; it persists
to an append-only file, ``appendfsync everysec`` by default (``--redis-fsync``: ``always``
syncs before each reply, ``no`` leaves it to the kernel, ``off`` turns the append-only file off).
Both are built by the app's own `app.services.build_profiles` with the default settings (the
profile half-life, time to live, 1,000 events kept per shopper).

A run is one cell of the matrix ``--stores`` x ``--shoppers`` x ``--workers``: ``--events``
events in all, each worker process (multiprocessing ``spawn``) posting its share (the same
number each, the remainder to the first ones). A worker builds what the API builds for
``POST /events``: `Personalization` over that profile store and the embedded catalog, with the
app's event window (clock skew, retention) and its event spool (in the run's folder; it only
acts while a store is down), and makes its events before the start: views, clicks, carts and
purchases (in the proportions 3:2:1:1) of random catalog products, by shoppers drawn uniformly
from ``shopper-00000``... (``--shoppers`` of them), with fresh event ids, at random times in the
last ``--days`` days (within the retention). When every worker is ready the command gives one
start signal; each worker then calls `Personalization.record` on consecutive batches of
``--batch`` events, one after the other (what one API worker does with requests that each
carry a batch), and notes when it finished. The aggregate events/s is the events sent over the
wall time from the common start until the last worker finished (a monotonic clock shared by
the processes). Per batch: its time (median and p95), and how that time splits between the
catalog (``get_products`` and ``product_vectors`` on the document store), the profile store
(``add_events``), and the rest of `record` (the window check, grouping). A batch that raises
is counted as failed, with its error, and the worker goes on.

Verified after each run: every shopper's profile read back through the store's own
``profile`` (``shopper-00000`` to the last), and the sum of ``profile.events`` compared with the
events sent, and with the events the store reported accepted: a run that lost or doubled an
event says so ("LOST" or "DOUBLED") and the command exits 1. On Redis also the server's
command counts over the run (``INFO commandstats``; a script's own commands count too):
commands per event, and the WATCHes: one per attempt of a shopper that took the store's
careful transaction (written by another worker between the batch's read and its
compare-and-set). CPU per event: the workers' own process time over their batches, and on
Redis the server's (``INFO cpu``, user and system) over the run: what bounds events/s when
the cores are busy (``cpu us/ev``, workers+redis).

``--profile`` runs worker 0 of each run under cProfile and keeps its 25 costliest functions
(own time) in the JSON and the printout. ``--quick``: CI-size runs (2,000 events per run,
shoppers 1 and 200, batches of 100, 500 products), unless those options are given.

Prints a table and writes JSON (``--out``) with the settings, the machine, the git state and
one row per run. The goal of issue 22: at least 10,000 events/s on Redis over 10,000 shoppers.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import logging
import multiprocessing
import os
import pstats
import queue
import random
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from benchmarks.metrics import latency_summary
from benchmarks.relevance import git_state, machine, positive_int

logger = logging.getLogger("benchmarks.ingest")

GOAL_EVENTS_PER_S = 10_000.0  # issue 22: Redis, 10,000 shoppers
GOAL_SHOPPERS = 10_000
EMBEDDER_DIM = 384  # as all-MiniLM-L6-v2
EVENT_TYPES = ("view", "view", "view", "click", "click", "cart", "purchase")
BRANDS = 300
CATEGORIES = 60
NOUNS = (
    "headphones", "kettle", "running shoes", "backpack", "desk lamp", "blender", "jacket",
    "phone case", "frying pan", "water bottle", "keyboard", "tent", "sunglasses", "watch",
)  # fmt: skip
READY_TIMEOUT_S = 300.0
DEFAULTS = {"events": 60_000, "shoppers": [1, GOAL_SHOPPERS], "batch": 1000, "products": 5000}
QUICK = {"events": 2000, "shoppers": [1, 200], "batch": 100, "products": 500}
LOG_EVERY_S = 10.0
PROFILE_LINES = 25


def _int_list(value: str) -> list[int]:
    try:
        numbers = sorted({int(part) for part in value.split(",") if part.strip()})
    except ValueError:
        numbers = []
    if not numbers or numbers[0] < 1:
        msg = f"expected positive whole numbers such as 1,2, got '{value}'"
        raise argparse.ArgumentTypeError(msg)
    return numbers


def _stores(value: str) -> list[str]:
    names = list(dict.fromkeys(part.strip() for part in value.split(",") if part.strip()))
    if not names or any(name not in ("file", "redis") for name in names):
        msg = f"expected stores among file,redis, got '{value}'"
        raise argparse.ArgumentTypeError(msg)
    return names


# -- the catalog -----------------------------------------------------------------------------


def synthetic_products(count: int, seed: int) -> list[dict[str, Any]]:
    """``count`` catalog rows: one of `BRANDS` brands and `CATEGORIES` categories each."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible catalog, not security
    rows = []
    for n in range(count):
        brand = f"Brand{rng.randrange(BRANDS):03d}"
        noun = rng.choice(NOUNS)
        rows.append(
            {
                "id": f"g{n:06d}",
                "title": f"{brand} {noun} model {n}",
                "description": f"A {noun} by {brand}, item {n}.",
                "brand": brand,
                "category": f"Department {rng.randrange(CATEGORIES) % 8} > "
                f"Category {rng.randrange(CATEGORIES):02d}",
                "price": round(rng.uniform(5.0, 500.0), 2),
            }
        )
    return rows


def build_catalog(folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Index the catalog into an embedded store under ``folder``; what was indexed."""
    from indexer.indexer import index_catalog
    from indexer.reader import Row, read_catalog
    from retrieval.embedders.hashing import HashingEmbedder
    from retrieval.stores.embedded import EmbeddedStore

    folder.mkdir(parents=True, exist_ok=True)
    if args.catalog is not None:
        source = Path(args.catalog)
        description = str(source)
    else:
        source = folder / "catalog.jsonl"
        rows = synthetic_products(args.products, args.seed)
        source.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        description = (
            f"synthetic: {args.products} products, {BRANDS} brands, {CATEGORIES} categories"
        )
    ids = [row.product.id for row in read_catalog(source) if isinstance(row, Row)]
    started = time.perf_counter()
    store = EmbeddedStore(folder / "index")
    report = index_catalog(
        read_catalog(source), store, HashingEmbedder(EMBEDDER_DIM), progress=False
    )
    if not report.ok or not ids:
        msg = f"indexing the catalog failed: {report.errors[:3]}"
        raise RuntimeError(msg)
    return {
        "source": description,
        "products": len(ids),
        "embedder": f"hashing-{EMBEDDER_DIM}",
        "index_s": round(time.perf_counter() - started, 2),
        "dir": str(folder / "index"),
        "ids": ids,
    }


# -- one worker process ----------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """What one worker process does in one run."""

    worker: int
    store: str  # file | redis
    data_dir: str  # the run's folder: file profiles and event spools
    redis_url: str | None
    index_dir: str
    product_ids: tuple[str, ...]
    shoppers: int
    events: int  # this worker's share
    batch: int
    days: float
    seed: int
    tag: str  # makes event ids fresh per run
    profile: bool


def shopper_id(n: int) -> str:
    return f"shopper-{n:05d}"


def make_events(job: Job, now: float) -> list[Any]:
    """The worker's events: fresh ids, random shoppers, products and recent times."""
    from personalization.events import Event

    rng = random.Random(job.seed * 1_000_003 + job.worker)  # noqa: S311 - reproducible
    span = job.days * 86_400.0
    return [
        Event(
            event_id=f"ev-{job.tag}-w{job.worker}-{n}",
            user_id=shopper_id(rng.randrange(job.shoppers)),
            type=cast(Any, rng.choice(EVENT_TYPES)),
            at=now - rng.uniform(0.0, span),
            product_id=rng.choice(job.product_ids),
        )
        for n in range(job.events)
    ]


class Timed:
    """``target`` with the time spent in ``methods`` added up per method (seconds)."""

    def __init__(self, target: Any, methods: Sequence[str]) -> None:
        self._target = target
        self.spent: dict[str, float] = dict.fromkeys(methods, 0.0)

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._target, name)
        if name not in self.spent:
            return attribute

        def timed(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return attribute(*args, **kwargs)
            finally:
                self.spent[name] += time.perf_counter() - began

        return timed


def worker_settings(job: Job) -> Any:
    from app.settings import Settings

    update: dict[str, Any] = {"data_dir": Path(job.data_dir), "profiles": job.store}
    if job.redis_url is not None:
        update["profiles_redis_url"] = job.redis_url
    return Settings(_env_file=None, **update)  # type: ignore[call-arg]


def run_worker(job: Job, ready: Any, start: Any, results: Any) -> None:
    """A worker process: build the API's ingestion path, make the events, wait for the start,
    record them batch by batch; put what happened on ``results``."""
    try:
        _run_worker(job, ready, start, results)
    except BaseException:
        results.put({"worker": job.worker, "crashed": traceback.format_exc()})
        raise


def _run_worker(job: Job, ready: Any, start: Any, results: Any) -> None:
    from app.services import build_personalization, build_profiles
    from retrieval.stores.embedded import EmbeddedStore

    settings = worker_settings(job)
    profiles = build_profiles(settings)
    assert profiles is not None
    catalog = Timed(EmbeddedStore(Path(job.index_dir)), ["get_products", "product_vectors"])
    timed_profiles = Timed(profiles, ["add_events"])
    personalization = build_personalization(settings, cast(Any, catalog), cast(Any, timed_profiles))
    events = make_events(job, time.time())
    catalog.get_products(list(job.product_ids[:1]))  # the snapshot loaded before the start
    catalog.spent = dict.fromkeys(catalog.spent, 0.0)
    ready.put(job.worker)
    if not start.wait(READY_TIMEOUT_S):
        msg = "no start signal"
        raise RuntimeError(msg)
    began = time.monotonic()
    cpu_began = time.process_time()
    batch_ms: list[float] = []
    counts = {"accepted": 0, "duplicates": 0, "rejected": 0, "queued": 0, "user_groups": 0}
    failed: list[str] = []
    failed_events = 0
    profiler = cProfile.Profile() if job.profile and job.worker == 0 else None
    if profiler is not None:
        profiler.enable()
    for offset in range(0, len(events), job.batch):
        part = events[offset : offset + job.batch]
        counts["user_groups"] += len({e.user_id for e in part})
        t = time.perf_counter()
        try:
            recorded = personalization.record(part)
        except Exception as exc:  # noqa: BLE001 - counted, reported: none goes unsaid
            failed.append(f"{type(exc).__name__}: {exc}")
            failed_events += len(part)
        else:
            counts["accepted"] += recorded.report.accepted
            counts["duplicates"] += recorded.report.duplicates
            counts["rejected"] += len(recorded.rejected)
            counts["queued"] += recorded.queued
        batch_ms.append((time.perf_counter() - t) * 1000)
    if profiler is not None:
        profiler.disable()
    finished = time.monotonic()
    cpu_s = time.process_time() - cpu_began
    results.put(
        {
            "worker": job.worker,
            "events": len(events),
            "began": began,
            "finished": finished,
            "cpu_s": cpu_s,
            "batch_ms": batch_ms,
            "catalog_s": sum(catalog.spent.values()),
            "profile_store_s": timed_profiles.spent["add_events"],
            **counts,
            "failed_batches": len(failed),
            "failed_events": failed_events,
            "errors": sorted(set(failed))[:5],
            "profile": _profile_text(profiler) if profiler is not None else None,
        }
    )
    personalization.close()


def _profile_text(profiler: cProfile.Profile) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(PROFILE_LINES)
    return out.getvalue()


# -- one run ---------------------------------------------------------------------------------


def shares(total: int, workers: int) -> list[int]:
    """``total`` split into ``workers`` near-equal parts, the remainder to the first ones."""
    return [total // workers + (1 if k < total % workers else 0) for k in range(workers)]


def run_once(
    store: str,
    shoppers: int,
    workers: int,
    args: argparse.Namespace,
    catalog: dict[str, Any],
    folder: Path,
    redis_url: str | None,
    tag: str,
) -> dict[str, Any]:
    """One cell of the matrix: spawn the workers, start them together, gather and verify."""
    ctx = multiprocessing.get_context("spawn")
    ready, results = ctx.Queue(), ctx.Queue()
    start = ctx.Event()
    commands_before = _command_stats(redis_url) if redis_url is not None else None
    redis_cpu_before = _redis_cpu_s(redis_url) if redis_url is not None else None
    jobs = [
        Job(
            worker=k,
            store=store,
            data_dir=str(folder),
            redis_url=redis_url,
            index_dir=catalog["dir"],
            product_ids=tuple(catalog["ids"]),
            shoppers=shoppers,
            events=share,
            batch=args.batch,
            days=args.days,
            seed=args.seed,
            tag=tag,
            profile=args.profile,
        )
        for k, share in enumerate(shares(args.events, workers))
    ]
    processes = [ctx.Process(target=run_worker, args=(job, ready, start, results)) for job in jobs]
    for process in processes:
        process.start()
    rows: list[dict[str, Any]] = []
    try:
        for _ in jobs:
            _get(ready, results, rows, processes)
        began = time.monotonic()
        start.set()
        deadline = time.monotonic() + LOG_EVERY_S
        while len(rows) < len(jobs):
            try:
                rows.append(results.get(timeout=1.0))
            except queue.Empty:
                if not any(p.is_alive() for p in processes):
                    msg = "a worker ended without a result"
                    raise RuntimeError(msg) from None
                if time.monotonic() > deadline:
                    logger.info("  ... %.0f s, %d of %d workers done", time.monotonic() - began,
                                len(rows), len(jobs))  # fmt: skip
                    deadline += LOG_EVERY_S
            crashed = [r["crashed"] for r in rows if "crashed" in r]
            if crashed:
                raise RuntimeError(crashed[0])
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
    rows.sort(key=lambda r: r["worker"])
    wall_s = max(r["finished"] for r in rows) - began
    sent = sum(r["events"] for r in rows)
    batch_ms = [ms for r in rows for ms in r["batch_ms"]]
    batch_s = sum(batch_ms) / 1000
    catalog_s = sum(r["catalog_s"] for r in rows)
    store_s = sum(r["profile_store_s"] for r in rows)
    result: dict[str, Any] = {
        "store": store,
        "shoppers": shoppers,
        "workers": workers,
        "batch": args.batch,
        "events": sent,
        "wall_s": round(wall_s, 3),
        "events_per_s": round(sent / wall_s, 1) if wall_s > 0 else None,
        "start_lag_ms": round(max(r["began"] for r in rows) * 1000 - began * 1000, 1),
        "batch_ms": latency_summary(batch_ms),
        "time_share": {
            "catalog": _share(catalog_s, batch_s),
            "profile_store": _share(store_s, batch_s),
            "rest_of_record": _share(batch_s - catalog_s - store_s, batch_s),
        },
        "per_worker": [
            {
                "worker": r["worker"],
                "events": r["events"],
                "seconds": round(r["finished"] - r["began"], 3),
                "events_per_s": round(r["events"] / (r["finished"] - r["began"]), 1)
                if r["finished"] > r["began"]
                else None,
            }
            for r in rows
        ],
    }
    keys = ("accepted", "duplicates", "rejected", "queued", "user_groups")
    for key in (*keys, "failed_batches", "failed_events"):
        result[key] = sum(r[key] for r in rows)
    result["errors"] = sorted({e for r in rows for e in r["errors"]})[:5]
    cpu_us = {"workers": round(sum(r["cpu_s"] for r in rows) / sent * 1e6, 1) if sent else None}
    if commands_before is not None and redis_url is not None:  # before verify's reads
        result["redis_commands"] = _command_delta(commands_before, _command_stats(redis_url), sent)
        if redis_cpu_before is not None and sent:
            cpu_us["redis"] = round((_redis_cpu_s(redis_url) - redis_cpu_before) / sent * 1e6, 1)
    result["cpu_us_per_event"] = cpu_us
    result["verify"] = verify(store, folder, redis_url, shoppers, sent, result["accepted"])
    profiles = [r["profile"] for r in rows if r.get("profile")]
    if profiles:
        result["cprofile_worker0"] = profiles[0]
    return result


def _get(ready: Any, results: Any, rows: list[dict[str, Any]], processes: list[Any]) -> None:
    """Wait for one worker to be ready; a worker that crashed first raises here."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        try:
            ready.get(timeout=0.5)
            return
        except queue.Empty:
            with contextlib.suppress(queue.Empty):
                rows.append(results.get_nowait())
            crashed = [r["crashed"] for r in rows if "crashed" in r]
            if crashed:
                raise RuntimeError(crashed[0]) from None
            if time.monotonic() > deadline or not all(p.is_alive() for p in processes):
                msg = "a worker did not get ready"
                raise RuntimeError(msg) from None


def _share(part: float, whole: float) -> float | None:
    return round(part / whole, 3) if whole > 0 else None


def verify(
    store: str, folder: Path, redis_url: str | None, shoppers: int, sent: int, accepted: int
) -> dict[str, Any]:
    """Every shopper's profile read back through the store: the events it counts against the
    events sent and those the store reported accepted."""
    from app.services import build_profiles

    update: dict[str, Any] = {"data_dir": folder, "profiles": store}
    if redis_url is not None:
        update["profiles_redis_url"] = redis_url
    from app.settings import Settings

    profiles = build_profiles(Settings(_env_file=None, **update))  # type: ignore[call-arg]
    assert profiles is not None
    counted = with_profile = 0
    try:
        for n in range(shoppers):
            profile = profiles.profile(shopper_id(n))
            if profile is not None:
                counted += profile.events
                with_profile += 1
    finally:
        profiles.close()
    if counted == sent:
        verdict = "ok"
    elif counted < sent:
        verdict = f"LOST {sent - counted}"
    else:
        verdict = f"DOUBLED {counted - sent}"
    return {
        "counted": counted,
        "sent": sent,
        "accepted": accepted,
        "shoppers_with_profile": with_profile,
        "ok": counted == sent == accepted,
        "verdict": verdict,
    }


# -- Redis -----------------------------------------------------------------------------------


def _command_stats(url: str) -> dict[str, int]:
    import redis

    client = redis.Redis.from_url(url)
    try:
        stats = client.info("commandstats")
    finally:
        client.close()
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}


def _redis_cpu_s(url: str) -> float:
    """The CPU seconds the Redis server has used (INFO cpu: user and system)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        cpu = client.info("cpu")
    finally:
        client.close()
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


def _command_delta(before: dict[str, int], after: dict[str, int], events: int) -> dict[str, Any]:
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    delta = {k: v for k, v in sorted(delta.items()) if v > 0 and k not in ("info",)}
    total = sum(delta.values())
    return {
        "calls": delta,
        "total": total,
        "per_event": round(total / events, 2) if events else None,
        "watch": delta.get("watch", 0),
        "exec": delta.get("exec", 0),
    }


@contextlib.contextmanager
def own_redis(folder: Path, fsync: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """A redis-server of this command on a free port, persisting as ``fsync`` says."""
    import redis

    from benchmarks.servers import OwnRedis

    server = OwnRedis(folder)
    server.start()
    client = redis.Redis.from_url(server.url)
    try:
        if fsync != "off":
            client.config_set("appendfsync", fsync)
            client.config_set("appendonly", "yes")  # a background rewrite starts the file
            deadline = time.monotonic() + 30
            while client.info("persistence").get("aof_rewrite_in_progress"):
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)
        info = client.info("server")
        persistence = client.info("persistence")
        described = {
            "url": server.url,
            "version": info.get("redis_version"),
            "appendonly": bool(persistence.get("aof_enabled")),
            "appendfsync": fsync if fsync != "off" else None,
            "rdb_save": "off",
        }
        yield server.url, described
    finally:
        client.close()
        server.stop()


def flush(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushall()
    finally:
        client.close()


# -- the command -----------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.ingest",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--stores", type=_stores, default=["file", "redis"])
    parser.add_argument("--shoppers", type=_int_list, default=None, help="default 1,10000")
    parser.add_argument("--workers", type=_int_list, default=[1, 2])
    parser.add_argument("--events", type=positive_int, default=None, help="per run (60000)")
    parser.add_argument("--batch", type=positive_int, default=None, help="events a batch (1000)")
    parser.add_argument("--products", type=positive_int, default=None, help="synthetic (5000)")
    parser.add_argument("--catalog", type=Path, default=None, help="index this file instead")
    parser.add_argument("--days", type=float, default=7.0, help="event times: the last N days")
    parser.add_argument(
        "--redis-fsync", choices=["everysec", "always", "no", "off"], default="everysec"
    )
    parser.add_argument("--profile", action="store_true", help="cProfile worker 0 of each run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="CI-size runs")
    parser.add_argument("--out", type=Path, default=Path("bench-results/ingest.json"))
    return parser


def _resolve(args: argparse.Namespace) -> None:
    """Options left out take the full defaults, or the quick ones with ``--quick``."""
    defaults = QUICK if args.quick else DEFAULTS
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)


def cpu_model() -> str | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return None


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; 0 when every run's counts verify, 1 otherwise."""
    parser = _parser()
    args = parser.parse_args(argv)
    _resolve(args)
    if not 0 < args.days <= 180:
        parser.error("--days must be in (0, 180] (the profile retention)")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("indexer").setLevel(logging.WARNING)
    started = time.perf_counter()
    info = machine()
    info["cpu_model"] = cpu_model()
    result: dict[str, Any] = {
        "benchmark": "ingest",
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": info,
        "git": git_state(),
        "settings": {
            "stores": args.stores,
            "shoppers": args.shoppers,
            "workers": args.workers,
            "events_per_run": args.events,
            "batch": args.batch,
            "days": args.days,
            "redis_fsync": args.redis_fsync,
            "seed": args.seed,
            "quick": args.quick,
            "path": "Personalization.record (event window, catalog lookup, add_events), "
            "the app's build_profiles and event spool, one process per worker (spawn)",
            "event_types": "view:click:cart:purchase = 3:2:1:1",
        },
        "goal": {"store": "redis", "shoppers": GOAL_SHOPPERS, "events_per_s": GOAL_EVENTS_PER_S},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    runs: list[dict[str, Any]] = []
    with (
        tempfile.TemporaryDirectory(prefix="bench-ingest-") as name,
        contextlib.ExitStack() as stack,
    ):
        folder = Path(name)
        catalog = build_catalog(folder / "catalog", args)
        result["catalog"] = {k: v for k, v in catalog.items() if k not in ("ids", "dir")}
        logger.info("catalog: %s, indexed in %.1f s", catalog["source"], catalog["index_s"])
        redis_url = None
        if "redis" in args.stores:
            (folder / "redis").mkdir()
            redis_url, result["redis"] = stack.enter_context(
                own_redis(folder / "redis", args.redis_fsync)
            )
            logger.info("redis %s on %s", result["redis"]["version"], redis_url)
        cells = [(s, n, w) for s in args.stores for n in args.shoppers for w in args.workers]
        for i, (store, shoppers, workers) in enumerate(cells, start=1):
            run_dir = folder / f"run-{i}"
            run_dir.mkdir()
            if store == "redis":
                assert redis_url is not None
                flush(redis_url)
            logger.info(
                "run %d/%d: %s, %d shoppers, %d workers, %d events in batches of %d",
                i, len(cells), store, shoppers, workers, args.events, args.batch,
            )  # fmt: skip
            run = run_once(
                store,
                shoppers,
                workers,
                args,
                catalog,
                run_dir,
                redis_url if store == "redis" else None,
                tag=f"{os.getpid()}-{i}",
            )
            logger.info("  %s events/s, counts %s", run["events_per_s"], run["verify"]["verdict"])
            runs.append(run)
            result["runs"] = runs
            _write(result, started, args.out)
    result["goal"]["met"] = goal_met(runs)
    _write(result, started, args.out)
    _print(result)
    sys.stdout.write(f"\nwritten to {args.out}\n")
    return 0 if all(r["verify"]["ok"] and not r["failed_batches"] for r in runs) else 1


def goal_met(runs: Sequence[dict[str, Any]]) -> bool | None:
    """Whether a Redis run over the goal's shoppers reached the goal (None: none ran)."""
    measured = [
        r["events_per_s"] or 0.0
        for r in runs
        if r["store"] == "redis" and r["shoppers"] >= GOAL_SHOPPERS
    ]
    return max(measured) >= GOAL_EVENTS_PER_S if measured else None


def _write(result: dict[str, Any], started: float, path: Path) -> None:
    result["wall_s"] = round(time.perf_counter() - started, 2)
    if hasattr(os, "getloadavg"):
        result["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    path.write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")


def _pct(value: float | None) -> str:
    return "  n/a" if value is None else f"{value * 100:4.0f}%"


def _print(result: dict[str, Any], write: Callable[[str], object] | None = None) -> None:
    out = write or sys.stdout.write
    s = result["settings"]
    out(
        f"\nevents ingested through Personalization.record, batches of {s['batch']}, "
        f"{s['events_per_run']} events a run; catalog: {result['catalog']['source']}\n"
    )
    if "redis" in result:
        r = result["redis"]
        fsync = f"appendfsync {r['appendfsync']}" if r["appendonly"] else "no persistence"
        out(f"redis {r['version']} (own server, {fsync})\n")
    out(
        f"{'store':<6} {'shoppers':>8} {'workers':>7} {'events/s':>9} {'wall s':>7} "
        f"{'batch ms p50/p95':>17} {'catalog':>7} {'store':>6} {'cmds/ev':>7} "
        f"{'cpu us/ev':>13} {'counts':>10}\n"
    )
    for run in result.get("runs", []):
        b = run["batch_ms"]
        shares_ = run["time_share"]
        commands = run.get("redis_commands", {}).get("per_event")
        cpu = run.get("cpu_us_per_event", {})
        cpu_text = f"{cpu.get('workers') or 0:.0f}"
        if cpu.get("redis") is not None:
            cpu_text += f"+{cpu['redis']:.0f}"
        verdict = run["verify"]["verdict"]
        if run["failed_batches"]:
            verdict += f", {run['failed_batches']} batches failed"
        out(
            f"{run['store']:<6} {run['shoppers']:>8} {run['workers']:>7} "
            f"{run['events_per_s'] or 0:>9.0f} {run['wall_s']:>7.1f} "
            f"{b.get('median', 0):>8.1f}/{b.get('p95', 0):<8.1f} "
            f"{_pct(shares_['catalog']):>7} {_pct(shares_['profile_store']):>6} "
            f"{'-' if commands is None else f'{commands:.2f}':>7} {cpu_text:>13} {verdict:>10}\n"
        )
        for error in run["errors"]:
            out(f"    error: {error}\n")
    met = result["goal"].get("met")
    if met is not None:
        out(
            f"\ngoal (redis, {GOAL_SHOPPERS} shoppers, >= {GOAL_EVENTS_PER_S:.0f} events/s): "
            f"{'met' if met else 'NOT met'}\n"
        )
    for run in result.get("runs", []):
        if run.get("cprofile_worker0"):
            out(
                f"\ncProfile, worker 0 of {run['store']} / {run['shoppers']} shoppers / "
                f"{run['workers']} workers:\n{run['cprofile_worker0']}\n"
            )
    machine_info = result["machine"]
    out(
        f"\nwall time {result['wall_s']} s on {machine_info['cpu_count']} CPUs "
        f"({machine_info.get('cpu_model')}); load average "
        f"{machine_info.get('load_average_at_start', ['?'])[0]} at start, "
        f"{machine_info.get('load_average_at_end', ['?'])[0]} at end\n"
    )


if __name__ == "__main__":
    sys.exit(main())
