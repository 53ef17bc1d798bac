"""The embedded default against the real stack, on one catalog: indexing and search latency.

    python -m benchmarks.stack --es-url http://127.0.0.1:9200 --redis-url redis://127.0.0.1:6379/0
        [--catalog data/sample_catalog.jsonl] [--rounds 5] [--out bench-results/stack.json]

For each store (embedded, Elasticsearch) the catalog is indexed afresh with the configured
embedder and timed. Every query of the sample set (English and Chinese) then goes through the
API's search function (`app.api.routes.search.run_search`: constraint parsing, hybrid retrieval,
no re-ranker, no HTTP) with no cache at all (the query embedded every time), then through the
cache after one warm pass: in-process for the embedded store, Redis for Elasticsearch. Prints a
table and writes the JSON result. Leaves no index behind.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from app.api.routes.search import run_search
from app.api.schemas import SearchRequest
from app.logs import configure_logging
from app.services import Services, build_services
from app.settings import Settings
from benchmarks.metrics import latency_summary
from benchmarks.sample_run import QUERIES
from generation.llm.fake import RecordingLLM
from indexer.indexer import index_catalog
from indexer.reader import read_catalog
from retrieval.caches.redis import RedisCache
from retrieval.stores.elasticsearch import ElasticsearchStore


def _latency(services: Services, *, cache: bool, rounds: int) -> dict[str, float]:
    for query in QUERIES:  # warm-up (and, cached, fills the cache)
        run_search(services, SearchRequest(query=query, cache=cache))
    samples = []
    for _ in range(rounds):
        for query in QUERIES:
            start = time.perf_counter()
            response = run_search(services, SearchRequest(query=query, cache=cache))
            samples.append((time.perf_counter() - start) * 1000)
            if response.cached != cache:
                msg = f"expected cached={cache} for {query!r}"
                raise RuntimeError(msg)
    return latency_summary(samples)


def _measure(settings: Settings, catalog: Path, rounds: int) -> dict[str, Any]:
    """Index with no cache, time searches with no cache at all (the query is embedded every
    time), then again through the configured cache."""
    plain = build_services(settings.model_copy(update={"cache": "none"}), llm=RecordingLLM())
    cached = build_services(settings, llm=RecordingLLM())
    try:
        report = index_catalog(
            read_catalog(catalog), plain.store, plain.embedder, prune=True, progress=False
        )
        return {
            "index": {
                "products": report.indexed,
                "units": report.units,
                "seconds": round(report.seconds, 2),
                "products_per_s": round(report.indexed / report.seconds, 1),
                "units_per_s": round(report.units / report.seconds, 1),
            },
            "search_ms": {
                "uncached": _latency(plain, cache=False, rounds=rounds),
                f"cached ({settings.cache})": _latency(cached, cache=True, rounds=rounds),
            },
        }
    finally:
        if isinstance(plain.store, ElasticsearchStore):
            plain.store.drop()
        if isinstance(cached.cache, RedisCache):
            cached.cache.delete_prefix("shopguide:")
        plain.close()
        cached.close()


def main(argv: list[str] | None = None) -> int:
    """Run the measurements."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", type=Path, default=Path("data/sample_catalog.jsonl"))
    parser.add_argument("--es-url", required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("bench-results/stack.json"))
    args = parser.parse_args(argv)
    configure_logging("WARNING", json_lines=False)
    base = Settings()
    result: dict[str, Any] = {
        "catalog": str(args.catalog),
        "embedder": base.embedder,
        "queries": len(QUERIES),
        "rounds": args.rounds,
        "machine": {"cpus": len(os.sched_getaffinity(0)), "platform": platform.platform()},
        "runs": {},
    }
    with tempfile.TemporaryDirectory() as folder:
        runs = {
            "embedded + memory cache": {"store": "embedded", "cache": "memory"},
            "elasticsearch + redis": {
                "store": "elasticsearch",
                "cache": "redis",
                "elasticsearch_url": args.es_url,
                "elasticsearch_alias": "bench-stack",
                "redis_url": args.redis_url,
            },
        }
        for name, overrides in runs.items():
            settings = base.model_copy(
                update={**overrides, "data_dir": Path(folder) / overrides["store"]}
            )
            sys.stderr.write(f"measuring {name}\n")
            result["runs"][name] = _measure(settings, args.catalog, args.rounds)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    _print(result)
    sys.stdout.write(f"\nwritten to {args.out}\n")
    return 0


def _print(result: dict[str, Any]) -> None:
    out = sys.stdout.write
    out(f"catalog {result['catalog']}, embedder {result['embedder']}, ")
    out(f"{result['queries']} queries x {result['rounds']} rounds\n\n")
    out(f"{'backend':<26} {'products':>8} {'units':>6} {'index s':>8} {'products/s':>11}\n")
    for name, run in result["runs"].items():
        index = run["index"]
        out(
            f"{name:<26} {index['products']:>8} {index['units']:>6} {index['seconds']:>8} "
            f"{index['products_per_s']:>11}\n"
        )
    out(f"\n{'backend':<26} {'search':<16} {'median ms':>10} {'p95 ms':>8} {'n':>5}\n")
    for name, run in result["runs"].items():
        for kind, stats in run["search_ms"].items():
            out(f"{name:<26} {kind:<16} {stats['median']:>10} {stats['p95']:>8} {stats['n']:>5}\n")


if __name__ == "__main__":
    sys.exit(main())
