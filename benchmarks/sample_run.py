"""Figures for one run on the sample catalog: indexing, search latency, answer speed.

    python -m benchmarks.sample_run [--catalog data/sample_catalog.jsonl] [--out FILE.json]

Indexes the catalog into a fresh folder with the configured embedder, times every query of a
fixed English + Chinese set (after one warm-up pass) without re-ranking and with each offline
re-ranker, then times shopping advice with the configured generator. Prints a table and writes
the JSON result.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from app.logs import configure_logging
from app.services import build_embedder, build_llm, generation_options, search_config
from app.settings import Settings
from benchmarks.metrics import latency_summary
from generation.answers import AnswerService
from indexer.indexer import index_catalog
from indexer.reader import read_catalog
from retrieval.rankers.base import Reranker
from retrieval.rankers.cross_encoder import CrossEncoderReranker
from retrieval.rankers.nanoranker import NanoReranker
from retrieval.search import HybridSearch
from retrieval.stores.embedded import EmbeddedStore

QUERIES = [
    "noise cancelling headphones",
    "wireless earbuds for running under $100",
    "espresso machine",
    "lightweight running shoes",
    "tent for two people",
    "laptop for programming",
    "cast iron pan",
    "phone with a good camera",
    "gift for a child who likes building",
    "moisturizer for dry skin",
    "降噪耳机",
    "跑步鞋",
    "电饭煲",
    "保温杯",
    "绿茶",
    "200元以下的蓝牙耳机",
]
ADVICE = [
    "wireless headphones under $100 for the gym",
    "which coffee maker is best for a small kitchen?",
    "推荐一款降噪耳机",
]


def _latency(search: HybridSearch, rerank: bool, rounds: int) -> dict[str, float]:
    for query in QUERIES:  # warm-up
        search.search(query, rerank=rerank)
    samples = []
    for _ in range(rounds):
        for query in QUERIES:
            start = time.perf_counter()
            search.search(query, rerank=rerank)
            samples.append((time.perf_counter() - start) * 1000)
    return latency_summary(samples)


def main(argv: list[str] | None = None) -> int:
    """Run the measurements."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", type=Path, default=Path("data/sample_catalog.jsonl"))
    parser.add_argument("--out", type=Path, default=Path("bench-results/sample_run.json"))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-llm", action="store_true", help="skip the generator")
    args = parser.parse_args(argv)
    settings = Settings()
    configure_logging("WARNING", json_lines=False)
    result: dict[str, Any] = {"catalog": str(args.catalog), "embedder": settings.embedder}

    embedder = build_embedder(settings)
    start = time.perf_counter()
    embedder.warm_up()
    result["embedder_load_s"] = round(time.perf_counter() - start, 2)
    with tempfile.TemporaryDirectory() as folder:
        store = EmbeddedStore(Path(folder) / "index")
        report = index_catalog(read_catalog(args.catalog), store, embedder, progress=False)
        result["index"] = {
            "products": report.indexed,
            "units": report.units,
            "seconds": round(report.seconds, 2),
            "products_per_s": round(report.indexed / report.seconds, 1),
        }
        rerankers: dict[str, Reranker | None] = {
            "none": None,
            "nanoranker": NanoReranker(),
            "cross-encoder (MiniLM-L6, untrained head)": CrossEncoderReranker(
                "packaged:all-minilm-l6-v2"
            ),
        }
        result["search_ms"] = {}
        config = search_config(settings)
        for name, reranker in rerankers.items():
            search = HybridSearch(store, embedder, reranker, config)
            search.warm_up()
            result["search_ms"][name] = _latency(search, reranker is not None, args.rounds)
        if not args.no_llm:
            llm = build_llm(settings)
            start = time.perf_counter()
            llm.warm_up()
            result["llm_load_s"] = round(time.perf_counter() - start, 2)
            answers = AnswerService(
                HybridSearch(store, embedder, None, config),
                llm,
                options=generation_options(settings),
            )
            answers.warm_up(prime=True)  # as the service does at start-up
            runs: list[dict[str, Any]] = []
            for question in ADVICE:
                answer = answers.advise(question)
                t = answer.timings_ms
                decode_s = max(t.get("generation", 0) - (t["first_token"] - t["retrieval"]), 1)
                runs.append(
                    {
                        "question": question,
                        "abstained": answer.abstained,
                        "cited": [s.product_id for s in answer.cited],
                        "first_token_ms": t["first_token"],
                        "total_ms": t["total"],
                        "tokens": t.get("pieces", 0),
                        "tokens_per_s": round(t.get("pieces", 0) / (decode_s / 1000), 1),
                    }
                )
            result["advice"] = {
                "model": llm.name,
                "runs": runs,
                "first_token_ms": latency_summary([r["first_token_ms"] for r in runs]),
                "tokens_per_s_median": statistics.median(r["tokens_per_s"] for r in runs),
            }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    _print(result)
    sys.stdout.write(f"\nwritten to {args.out}\n")
    return 0


def _print(result: dict[str, Any]) -> None:
    out = sys.stdout.write
    index = result["index"]
    out(f"embedder {result['embedder']} (load {result['embedder_load_s']} s)\n")
    out(
        f"index: {index['products']} products, {index['units']} units in {index['seconds']} s "
        f"({index['products_per_s']} products/s)\n\n"
    )
    out(f"{'search, re-ranker':<45} {'median ms':>10} {'p95 ms':>8} {'n':>5}\n")
    for name, stats in result["search_ms"].items():
        out(f"{name:<45} {stats['median']:>10} {stats['p95']:>8} {stats['n']:>5}\n")
    if "advice" in result:
        advice = result["advice"]
        out(f"\nadvice with {advice['model']} (load {result['llm_load_s']} s)\n")
        out(f"{'question':<48} {'TTFT ms':>9} {'total ms':>9} {'tok/s':>6} cited\n")
        for run in advice["runs"]:
            out(
                f"{run['question'][:48]:<48} {run['first_token_ms']:>9.0f} {run['total_ms']:>9.0f} "
                f"{run['tokens_per_s']:>6} {','.join(run['cited']) or '(abstained)'}\n"
            )


if __name__ == "__main__":
    sys.exit(main())
