"""Throughput and latency of ``POST /search`` over HTTP under concurrent load.

    python -m benchmarks.load [--store embedded,elasticsearch] [--cache memory,redis]
        [--embedder packaged:all-minilm-l6-v2] [--reranker nanoranker] [--duration 10]
        [--concurrency 1,4,16] [--workers 1,2] [--own-redis] [--catalog FILE] [--queries FILE]
        [--embedding-cache bench-results/embedding-cache|none] [--out bench-results/load.json]

The catalog (default: the CrowdFlower catalog of `benchmarks.crowdflower_catalog`, whose 261
distinct queries are the query set; ``--catalog`` takes a CrowdFlower-format CSV or a project
JSONL/CSV catalog, whose queries come from ``--queries``, one a line, or else from the first
three words of up to 100 titles) is indexed beforehand into a temporary folder (and, for
Elasticsearch, behind the alias ``bench-load-<pid>``, deleted afterwards) with `index_catalog`
and the configured embedder. Each distinct text is embedded once, and a second store gets the
same vectors, so both stores hold the same index.

For every store, cache backend and worker count (``--workers``, `SHOPGUIDE_WORKERS`: more
than one needs the redis cache, which ``--own-redis`` provides with a private redis-server) the
API runs as its own process, ``python -m app.cli serve`` on a free port, configured through
``SHOPGUIDE_*`` variables: the store, cache, embedder and re-ranker asked for; the generator
backend set to an OpenAI-compatible URL that is never called (``/search`` does not generate;
this spares loading the local LLM); the search cache TTL raised so that entries outlive the
run. This process drives it with `httpx.AsyncClient`: for each mode (``"cache": false``, then
``"cache": true`` after one warm-up pass over every query) and re-ranking off and on
(``"rerank"``), N clients (1, 4, 16) each send one request after another, cycling through
the queries, for ``--duration`` seconds (or ``--requests`` in all). Reported: requests/s,
latency p50/p95/p99 (nearest rank, ms, measured by the client), failed requests (any non-2xx
or transport error), responses served from the cache, the median of the server's own
``timings_ms`` per pipeline stage (computed responses only), and the CPU seconds of the server,
of Elasticsearch and of this client during the run (the client shares the machine's cores);
the server's CPU is that of its process and its worker processes, and each server's entry
holds the resident and proportional memory (RSS, PSS: shared pages divided among the
processes mapping them) of each worker after its runs. With several workers, "server_cache"
(read from /health) is left out: /health answers from one worker.

Note: ``"cache": false`` skips the result cache only; the server's query-embedding cache
(`CachedEmbedder`) is read either way. By default (``--query-embedding-cache off``) its
entries live 1 ms, so uncached requests embed every query; ``on`` keeps the server's
setting and warms it up with one uncached pass first.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import gc
import json
import logging
import math
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from app.auth.keys import key_entry, new_key
from benchmarks import crowdflower_catalog as cf
from benchmarks.embedders import MemoEmbedder, add_embedding_cache
from benchmarks.servers import OwnRedis, free_port

DEFAULT_EMBEDDER = "packaged:all-minilm-l6-v2"
_UNUSED_LLM_URL = "http://127.0.0.1:9/v1"  # /search never calls the generator
# The run's own search key: the servers it starts accept it, and only it.
KEY = new_key("bench-load")
AUTH = {"Authorization": f"Bearer {KEY}"}
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# -- catalog and queries -------------------------------------------------------------------


def _list(text: str, allowed: Sequence[str] | None = None) -> list[str]:
    items = [part.strip() for part in text.split(",") if part.strip()]
    if not items or (allowed is not None and set(items) - set(allowed)):
        msg = f"expected a comma-separated list of {', '.join(allowed or ['values'])}: {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return items


def _ints(text: str) -> list[int]:
    try:
        values = [int(part) for part in _list(text)]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if any(v <= 0 for v in values):
        msg = "expected positive integers"
        raise argparse.ArgumentTypeError(msg)
    return values


def _is_crowdflower(path: Path) -> bool:
    if path.suffix.lower() != ".csv":
        return False
    with path.open(encoding="utf-8", newline="") as f:
        return "product_title" in next(csv.reader(f), [])


def catalog_and_queries(
    catalog: Path, queries_file: Path | None, folder: Path
) -> tuple[Path, list[str], int]:
    """The catalog file to index, the query set and the number of products."""
    if _is_crowdflower(catalog):
        data = cf.load(catalog)
        path = folder / "catalog.jsonl"
        count = cf.write_jsonl(data.products, path)
        queries = data.queries
    else:
        from indexer.reader import Row, read_catalog

        path = catalog
        titles = [row.product.title for row in read_catalog(catalog) if isinstance(row, Row)]
        count = len(titles)
        queries = list(dict.fromkeys(" ".join(t.split()[:3]) for t in titles[:100]))
    if queries_file is not None:
        lines = queries_file.read_text(encoding="utf-8").splitlines()
        queries = list(dict.fromkeys(q.strip() for q in lines if q.strip()))
    if not queries:
        msg = "no queries"
        raise ValueError(msg)
    return path, queries, count


# -- building the index --------------------------------------------------------------------


def build_indexes(
    catalog: Path,
    stores: Sequence[str],
    embedder_spec: str,
    data_dir: Path,
    es_url: str,
    alias: str,
    embedding_cache: Path | None = None,
) -> list[dict[str, Any]]:
    """Index the catalog into each store, embedding once (texts found in ``embedding_cache``
    not at all); what each build took."""
    from app.services import build_embedder, build_store, configure_threads
    from app.settings import Settings
    from indexer.indexer import index_catalog
    from indexer.reader import read_catalog

    settings = Settings(
        data_dir=data_dir,
        embedder=embedder_spec,
        elasticsearch_url=es_url,
        elasticsearch_alias=alias,
    )
    configure_threads(settings)
    embedder = MemoEmbedder(build_embedder(settings), log_every_s=10, cache_dir=embedding_cache)
    start = time.perf_counter()
    embedder.warm_up()
    builds: list[dict[str, Any]] = [{"model_load_s": round(time.perf_counter() - start, 2)}]
    for name in stores:
        store = build_store(settings.model_copy(update={"store": name}))
        sys.stderr.write(f"indexing {catalog} into the {name} store with {embedder.name}\n")
        before = embedder.embedded
        report = index_catalog(
            read_catalog(catalog), store, embedder, prune=True, progress=sys.stderr.isatty()
        )
        store.close()
        if not report.ok:
            msg = f"indexing into {name} failed: {report.errors[:3]}"
            raise RuntimeError(msg)
        builds.append(
            {
                "store": name,
                "products": report.indexed,
                "skipped": report.skipped,
                "units": report.units,
                "texts_embedded": embedder.embedded - before,
                "seconds": round(report.seconds, 1),
                "version": report.version,
            }
        )
        sys.stderr.write(f"  {builds[-1]}\n")
    embedder.flush()
    del embedder
    gc.collect()
    return builds


# -- the server ----------------------------------------------------------------------------


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
    except (OSError, IndexError, ValueError):
        return float("nan")


def child_pids(pid: int) -> list[int]:
    """The live child processes of ``pid`` (uvicorn's workers, and multiprocessing's resource
    tracker), from /proc."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid and fields[0] not in ("Z", "X"):
            children.append(int(entry.name))
    return sorted(children)


def worker_pids(pid: int, workers: int) -> list[int]:
    """The processes that serve: ``pid`` itself with one worker, else its children that run
    the app (multiprocessing's resource tracker left out)."""
    if workers == 1:
        return [pid]
    found = []
    for child in child_pids(pid):
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"resource_tracker" not in command:
            found.append(child)
    return found


def memory_mb(pid: int) -> dict[str, float]:
    """RSS and PSS of a process in MB, from /proc/PID/smaps_rollup."""
    values = {}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text(encoding="ascii").splitlines():
            name, _, rest = line.partition(":")
            if name in ("Rss", "Pss", "Pss_Anon", "Pss_File", "Shared_Clean"):
                values[name.casefold()] = round(int(rest.split()[0]) / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    return values


@dataclass
class Server:
    """The API in its own process."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path
    startup_s: float = 0.0
    health: dict[str, Any] = field(default_factory=dict)
    workers: int = 1

    def cpu_seconds(self) -> float:
        """CPU seconds of the server and its live worker processes."""
        pids = [self.process.pid, *child_pids(self.process.pid)]
        return sum(_cpu_seconds(pid) for pid in pids)

    def memory(self) -> list[dict[str, Any]]:
        """RSS and PSS (MB) of each process that serves."""
        return [
            {"pid": pid, **memory_mb(pid)} for pid in worker_pids(self.process.pid, self.workers)
        ]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_server(env: dict[str, str], log: Path, timeout_s: float) -> Server:
    """Start ``python -m app.cli serve`` and wait until /health answers "ok"."""
    port = int(env["SHOPGUIDE_PORT"])
    url = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    with log.open("wb") as out:
        process = subprocess.Popen(  # the project's own CLI, same interpreter
            [sys.executable, "-m", "app.cli", "serve"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(process, url, log, workers=int(env.get("SHOPGUIDE_WORKERS", "1")))
    deadline = started + timeout_s
    with httpx.Client(timeout=5) as client:
        while True:
            if process.poll() is not None:
                tail = log.read_text(encoding="utf-8", errors="replace")[-3000:]
                msg = f"the server exited with status {process.returncode}:\n{tail}"
                raise RuntimeError(msg)
            with contextlib.suppress(httpx.HTTPError):
                response = client.get(f"{url}/health")
                ready = len(worker_pids(process.pid, server.workers)) >= server.workers
                if response.status_code == 200 and response.json().get("status") == "ok":
                    server.health = response.json()
                    if ready and _workers_ready(log, server.workers):
                        break
            if time.perf_counter() > deadline:
                server.stop()
                msg = f"the server did not become ready in {timeout_s:.0f} s (log: {log})"
                raise RuntimeError(msg)
            time.sleep(0.25)
    server.startup_s = round(time.perf_counter() - started, 1)
    return server


def _workers_ready(log: Path, workers: int) -> bool:
    """Whether the log shows ``workers`` distinct workers ready (one: /health answering)."""
    if workers == 1:
        return True
    text = log.read_text(encoding="utf-8", errors="replace")
    pids = {
        entry.get("pid")
        for entry in (_json_line(line) for line in text.splitlines())
        if entry.get("msg") == "worker ready"
    }
    return len(pids) >= workers


def _json_line(line: str) -> dict[str, Any]:
    try:
        entry = json.loads(line)
    except ValueError:
        return {}
    return entry if isinstance(entry, dict) else {}


def _cache_counts(url: str) -> tuple[int, int]:
    response = httpx.get(f"{url}/health", timeout=30)
    cache = response.json().get("cache", {})
    return int(cache.get("hits", 0)), int(cache.get("misses", 0))


def _es_cpu_seconds(es_url: str | None) -> float | None:
    if es_url is None:
        return None
    try:
        nodes = httpx.get(f"{es_url}/_nodes/stats/process", timeout=10).json()["nodes"]
        return sum(n["process"]["cpu"]["total_in_millis"] for n in nodes.values()) / 1000
    except (httpx.HTTPError, KeyError, ValueError):
        return None


# -- the load ------------------------------------------------------------------------------


@dataclass
class _Tally:
    latencies_ms: list[float] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)
    cached: int = 0
    reranked: int = 0
    empty: int = 0
    stages_ms: dict[str, list[float]] = field(default_factory=dict)  # computed responses


async def _drive(
    url: str,
    queries: Sequence[str],
    *,
    concurrency: int,
    cache: bool,
    rerank: bool,
    size: int,
    duration_s: float | None,
    requests: int | None,
) -> tuple[_Tally, float]:
    """``concurrency`` clients, each one request at a time; the tally and the elapsed time."""
    tally = _Tally()
    issued = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits, headers=AUTH) as client:
        start = time.perf_counter()
        deadline = start + duration_s if duration_s is not None else math.inf

        async def worker() -> None:
            nonlocal issued
            while time.perf_counter() < deadline and (requests is None or issued < requests):
                query = queries[issued % len(queries)]
                issued += 1
                body = {"query": query, "cache": cache, "rerank": rerank, "size": size}
                sent = time.perf_counter()
                try:
                    response = await client.post("/search", json=body)
                    payload = response.content
                except httpx.HTTPError as exc:
                    tally.latencies_ms.append((time.perf_counter() - sent) * 1000)
                    tally.failures[type(exc).__name__] += 1
                    continue
                tally.latencies_ms.append((time.perf_counter() - sent) * 1000)
                if not 200 <= response.status_code < 300:
                    tally.failures[f"HTTP {response.status_code}"] += 1
                    continue
                data = json.loads(payload)
                tally.cached += bool(data.get("cached"))
                tally.reranked += bool(data.get("reranked"))
                tally.empty += not data.get("results")
                if not data.get("cached"):  # a cached response repeats the original's
                    for stage, ms in data.get("timings_ms", {}).items():
                        tally.stages_ms.setdefault(stage, []).append(float(ms))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return tally, elapsed


def _percentile(ordered: Sequence[float], q: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def run_load(
    server: Server,
    queries: Sequence[str],
    *,
    concurrency: int,
    cache: bool,
    rerank: bool,
    size: int,
    duration_s: float | None,
    requests: int | None,
    es_url: str | None,
) -> dict[str, Any]:
    """One measured run and its figures."""
    hits, misses = _cache_counts(server.url)  # one worker's, with several
    server_cpu, es_cpu, client_cpu = server.cpu_seconds(), _es_cpu_seconds(es_url), os.times()
    tally, elapsed = asyncio.run(
        _drive(
            server.url,
            queries,
            concurrency=concurrency,
            cache=cache,
            rerank=rerank,
            size=size,
            duration_s=duration_s,
            requests=requests,
        )
    )
    client_after = os.times()
    server_cpu = server.cpu_seconds() - server_cpu
    es_after = _es_cpu_seconds(es_url)
    hits_after, misses_after = _cache_counts(server.url)
    ordered = sorted(tally.latencies_ms)
    done = len(ordered)
    failed = sum(tally.failures.values())
    return {
        "mode": "cached" if cache else "uncached",
        "rerank": rerank,
        "concurrency": concurrency,
        "requests": done,
        "ok": done - failed,
        "failed": failed,
        "failures": dict(tally.failures),
        "seconds": round(elapsed, 3),
        "requests_per_s": round(done / elapsed, 2) if elapsed else 0.0,
        "latency_ms": {
            "p50": round(_percentile(ordered, 0.50), 2),
            "p95": round(_percentile(ordered, 0.95), 2),
            "p99": round(_percentile(ordered, 0.99), 2),
            "mean": round(sum(ordered) / done, 2) if done else float("nan"),
            "max": round(ordered[-1], 2) if ordered else float("nan"),
        },
        "server_stage_ms_p50": {
            stage: round(_percentile(sorted(values), 0.50), 2)
            for stage, values in tally.stages_ms.items()
        },
        "cached_responses": tally.cached,
        "reranked_responses": tally.reranked,
        "empty_results": tally.empty,
        "server_cache": {"hits": hits_after - hits, "misses": misses_after - misses}
        if server.workers == 1
        else None,
        "cpu_s": {
            "server": round(server_cpu, 2),
            "elasticsearch": round(es_after - es_cpu, 2)
            if es_after is not None and es_cpu is not None
            else None,
            "client": round(
                client_after.user + client_after.system - client_cpu.user - client_cpu.system, 2
            ),
        },
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }


def _warm(
    server: Server, queries: Sequence[str], *, cache: bool, rerank: bool, size: int
) -> dict[str, Any]:
    """One pass over ``queries`` (4 clients), not measured as load."""
    start = time.perf_counter()
    tally, _ = asyncio.run(
        _drive(
            server.url,
            queries,
            concurrency=min(4, len(queries)),
            cache=cache,
            rerank=rerank,
            size=size,
            duration_s=None,
            requests=len(queries),
        )
    )
    return {
        "cache": cache,
        "rerank": rerank,
        "requests": len(tally.latencies_ms),
        "failed": sum(tally.failures.values()),
        "failures": dict(tally.failures),
        "seconds": round(time.perf_counter() - start, 1),
    }


# -- the command ---------------------------------------------------------------------------


def _server_env(
    args: argparse.Namespace, store: str, cache: str, data_dir: Path, alias: str, workers: int = 1
) -> dict[str, str]:
    ttl = max(300.0, 10 * (args.duration or 60) * len(args.concurrency) + 600)
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "SHOPGUIDE_HOST": "127.0.0.1",
        "SHOPGUIDE_PORT": str(free_port()),
        "SHOPGUIDE_DATA_DIR": str(data_dir),
        "SHOPGUIDE_STORE": store,
        "SHOPGUIDE_ELASTICSEARCH_URL": args.es_url,
        "SHOPGUIDE_ELASTICSEARCH_ALIAS": alias,
        "SHOPGUIDE_CACHE": cache,
        "SHOPGUIDE_REDIS_URL": args.redis_url,
        "SHOPGUIDE_EMBEDDER": args.embedder,
        "SHOPGUIDE_RERANKER": args.reranker,
        "SHOPGUIDE_LLM_BACKEND": "openai",
        "SHOPGUIDE_LLM_BASE_URL": _UNUSED_LLM_URL,
        "SHOPGUIDE_LLM_PRIME": "false",
        "SHOPGUIDE_CACHE_SEARCH_TTL_S": str(ttl),
        "SHOPGUIDE_RATE_LIMIT_SEARCH_PER_MINUTE": "0",  # measure the server, not its limits
        "SHOPGUIDE_LOG_LEVEL": args.server_log_level,
        "SHOPGUIDE_API_KEYS": json.dumps([key_entry(KEY, ["search"])]),
        "SHOPGUIDE_WORKERS": str(workers),
        "SHOPGUIDE_LOG_JSON": "true",  # the workers' "worker ready" lines are read
    }
    if args.query_embedding_cache == "off":
        env["SHOPGUIDE_CACHE_EMBEDDING_TTL_S"] = "0.001"
    return env


def _serve_and_load(
    args: argparse.Namespace,
    store: str,
    cache: str,
    queries: list[str],
    folder: Path,
    alias: str,
    workers: int = 1,
) -> dict[str, Any]:
    env = _server_env(args, store, cache, folder / "data", alias, workers)
    sys.stderr.write(
        f"starting the API: store={store} cache={cache} workers={workers} "
        f"port {env['SHOPGUIDE_PORT']}\n"
    )
    log = folder / f"server-{store}-{cache}-{workers}w.log"
    server = start_server(env, log, args.startup_timeout)
    es_url = args.es_url if store == "elasticsearch" else None
    entry: dict[str, Any] = {
        "store": store,
        "cache": cache,
        "workers": workers,
        "startup_s": server.startup_s,
        "health": server.health,
        "warm_ups": [],
        "runs": [],
    }
    try:
        for mode in args.modes:
            cached = mode == "cached"
            for rerank in (value == "on" for value in args.rerank):
                if cached or args.query_embedding_cache == "on":
                    warm = queries  # fills the result (or query-embedding) cache
                else:
                    warm = queries[: min(len(queries), 8)]  # code paths only
                entry["warm_ups"].append(
                    _warm(server, warm, cache=cached, rerank=rerank, size=args.size)
                )
                for concurrency in args.concurrency:
                    run = run_load(
                        server,
                        queries,
                        concurrency=concurrency,
                        cache=cached,
                        rerank=rerank,
                        size=args.size,
                        duration_s=None if args.requests else args.duration,
                        requests=args.requests,
                        es_url=es_url,
                    )
                    entry["runs"].append(run)
                    _progress_line(store, cache, workers, run)
    finally:
        entry["server_cpu_s_total"] = round(server.cpu_seconds(), 1)
        entry["memory_mb"] = server.memory()
        server.stop()
    return entry


def _progress_line(store: str, cache: str, workers: int, run: dict[str, Any]) -> None:
    sys.stderr.write(
        f"  {store}/{cache} workers={workers} {run['mode']} "
        f"rerank={'on' if run['rerank'] else 'off'} "
        f"c={run['concurrency']}: {run['requests_per_s']} req/s, "
        f"p50 {run['latency_ms']['p50']} ms, failed {run['failed']}\n"
    )
    sys.stderr.flush()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the load test."""
    from app.logs import configure_logging
    from app.settings import Settings

    configure_logging("WARNING", json_lines=False)
    logging.getLogger("benchmarks").setLevel(logging.INFO)  # index-build progress
    settings = Settings()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", type=Path, default=cf.DEFAULT_TRAIN_CSV)
    parser.add_argument("--queries", type=Path, help="one query a line")
    parser.add_argument(
        "--store",
        type=lambda t: _list(t, ["embedded", "elasticsearch"]),
        default=["embedded", "elasticsearch"],
    )
    parser.add_argument(
        "--cache", type=lambda t: _list(t, ["memory", "redis"]), default=["memory", "redis"]
    )
    parser.add_argument("--embedder", default=DEFAULT_EMBEDDER)
    parser.add_argument("--reranker", default="nanoranker", help="the server's re-ranker")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per run")
    parser.add_argument("--requests", type=int, help="requests per run instead of --duration")
    parser.add_argument("--concurrency", type=_ints, default=[1, 4, 16])
    parser.add_argument(
        "--workers",
        type=_ints,
        default=[1],
        help="API worker processes, one server per count (more than 1 needs --cache redis)",
    )
    parser.add_argument(
        "--own-redis",
        action="store_true",
        help="run a private redis-server for the redis cache (instead of --redis-url)",
    )
    parser.add_argument(
        "--modes",
        type=lambda t: _list(t, ["uncached", "cached"]),
        default=["uncached", "cached"],
    )
    parser.add_argument("--rerank", type=lambda t: _list(t, ["off", "on"]), default=["off", "on"])
    parser.add_argument("--size", type=int, default=10, help="results per page")
    parser.add_argument(
        "--query-embedding-cache", choices=["off", "on"], default="off", help="see the module"
    )
    parser.add_argument("--es-url", default=settings.elasticsearch_url)
    parser.add_argument("--redis-url", default=settings.redis_url)
    parser.add_argument("--server-log-level", default="INFO")
    parser.add_argument("--startup-timeout", type=float, default=600.0)
    add_embedding_cache(parser)
    parser.add_argument("--out", type=Path, default=Path("bench-results/load.json"))
    args = parser.parse_args(argv)
    if max(args.workers) > 1 and "memory" in args.cache:
        parser.error(
            "several workers need the redis cache (conversations and erasure must reach every "
            "worker; see README.md): use --cache redis (with --own-redis or --redis-url)"
        )

    started = time.perf_counter()
    alias = f"bench-load-{os.getpid()}"
    result: dict[str, Any] = {
        "benchmark": "load",
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        },
        "settings": {
            "stores": args.store,
            "caches": args.cache,
            "embedder": args.embedder,
            "reranker": args.reranker,
            "duration_s": None if args.requests else args.duration,
            "requests": args.requests,
            "concurrency": args.concurrency,
            "workers": args.workers,
            "size": args.size,
            "query_embedding_cache": args.query_embedding_cache,
            "server": "python -m app.cli serve (SHOPGUIDE_WORKERS uvicorn workers), generator "
            "not loaded",
            "server_log_level": args.server_log_level,
            "elasticsearch_url": args.es_url if "elasticsearch" in args.store else None,
            "redis_url": ("own redis-server" if args.own_redis else args.redis_url)
            if "redis" in args.cache
            else None,
        },
        "servers": [],
    }
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        folder = Path(tmp)
        own_redis = OwnRedis(folder) if args.own_redis and "redis" in args.cache else None
        try:
            if own_redis is not None:
                own_redis.start()
                args.redis_url = own_redis.url
            catalog, queries, products = catalog_and_queries(args.catalog, args.queries, folder)
            result["catalog"] = {
                "source": str(args.catalog),
                "products": products,
                "queries": len(queries),
            }
            result["index_builds"] = build_indexes(
                catalog,
                args.store,
                args.embedder,
                folder / "data",
                args.es_url,
                alias,
                embedding_cache=args.embedding_cache,
            )
            for store in args.store:
                for cache in args.cache:
                    for workers in args.workers:
                        result["servers"].append(
                            _serve_and_load(args, store, cache, queries, folder, alias, workers)
                        )
        finally:
            if own_redis is not None:
                own_redis.stop()
            if "elasticsearch" in args.store:
                from benchmarks.indexing import drop_es_indices

                with contextlib.suppress(Exception):
                    result["elasticsearch_indices_deleted"] = drop_es_indices(args.es_url, alias)
    runs = [run for server in result["servers"] for run in server["runs"]]
    warm_ups = [warm for server in result["servers"] for warm in server["warm_ups"]]
    result["failed_requests"] = sum(r["failed"] for r in runs) + sum(w["failed"] for w in warm_ups)
    result["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    result["wall_s"] = round(time.perf_counter() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    _print(result)
    sys.stdout.write(f"\nwritten to {args.out}\n")
    return 0 if result["failed_requests"] == 0 else 1


def _print(result: dict[str, Any]) -> None:
    out = sys.stdout.write
    settings = result["settings"]
    catalog = result["catalog"]
    out(
        f"catalog {catalog['source']}: {catalog['products']} products, "
        f"{catalog['queries']} queries; embedder {settings['embedder']}, "
        f"re-ranker {settings['reranker']}, "
        f"query-embedding cache {settings['query_embedding_cache']}\n"
    )
    for build in result["index_builds"][1:]:
        out(
            f"index build ({build['store']}): {build['products']} products, {build['units']} "
            f"units, {build['texts_embedded']} texts embedded, {build['seconds']} s\n"
        )
    out(
        f"\n{'store':<13} {'cache':<6} {'wrk':>3} {'mode':<8} {'rerank':<6} {'conc':>4} "
        f"{'req/s':>8} "
        f"{'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'n':>6} {'failed':>6} {'cached':>6} "
        f"{'CPU s srv/ES/cli':>17}\n"
    )
    for server in result["servers"]:
        for run in server["runs"]:
            latency, cpu = run["latency_ms"], run["cpu_s"]
            es_cpu = "-" if cpu["elasticsearch"] is None else f"{cpu['elasticsearch']:.1f}"
            share = run["cached_responses"] / run["requests"] if run["requests"] else 0.0
            out(
                f"{server['store']:<13} {server['cache']:<6} {server.get('workers', 1):>3} "
                f"{run['mode']:<8} "
                f"{'on' if run['rerank'] else 'off':<6} {run['concurrency']:>4} "
                f"{run['requests_per_s']:>8.1f} {latency['p50']:>8.1f} {latency['p95']:>8.1f} "
                f"{latency['p99']:>8.1f} {run['requests']:>6} {run['failed']:>6} "
                f"{share:>6.0%} {cpu['server']:>6.1f}/{es_cpu}/{cpu['client']:.1f}\n"
            )
    for server in result["servers"]:
        memory = ", ".join(
            f"{m.get('rss', 0):.0f}/{m.get('pss', 0):.0f}" for m in server.get("memory_mb", [])
        )
        out(
            f"\n{server['store']}/{server['cache']}, {server.get('workers', 1)} worker(s): "
            f"RSS/PSS MB per worker {memory}"
        )
    out(
        f"\n\nfailed requests: {result['failed_requests']}; wall time {result['wall_s']} s; "
        f"load average at start/end {result['machine']['loadavg_at_start'][0]}/"
        f"{result['machine']['loadavg_at_end'][0]}\n"
    )


if __name__ == "__main__":
    sys.exit(main())
