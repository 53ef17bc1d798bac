"""Cross-lingual product search: Chinese queries over English products and back (issue 18).

    python -m benchmarks.crosslingual [--split dev|test|all] [--weights 0,0.25,0.5,1,2]

One embedded index holds both judged catalogs: CrowdFlower (English titles and descriptions)
and Multi-CPR (Chinese titles), written by the project's indexer with the configured embedder
and the cross-lingual embedder (``CROSS_EMBEDDER``). The queries are the data sets' own and
their hand translations in ``benchmarks/judgements`` (CrowdFlower's into Chinese, Multi-CPR's
into English), judged by the data sets' own labels. Each query set is searched by the product's
`HybridSearch` three ways:

- over its own catalog only (a shop in one language: a product-id filter keeps the other
  catalog out), where the cross-lingual list only holds products of the other script;
- over both catalogs (a bilingual shop), where the other catalog's products compete.

For each cross-lingual weight (0 is the search without the cross-lingual list) it prints
nDCG@10 (CrowdFlower) or MRR@10 (Multi-CPR) per split and writes JSON. The weight is chosen on
dev; the queries' split is that of their source text (`benchmarks.datasets.split`), so a
translated query sits in the split of its original.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from app.services import build_cross_embedder, build_embedder, search_config
from app.settings import Settings
from benchmarks import metrics
from benchmarks.datasets import (
    JudgedQuery,
    ProductSearchSet,
    load_crowdflower,
    load_multicpr,
    split,
)
from benchmarks.embedders import MemoEmbedder
from benchmarks.relevance import as_product, git_state, machine
from indexer.indexer import index_catalog
from indexer.reader import Row
from retrieval.schema import Filters
from retrieval.search import HybridSearch
from retrieval.stores.embedded import EmbeddedStore

logger = logging.getLogger(__name__)

JUDGEMENTS = Path(__file__).parent / "judgements"
TRANSLATIONS = {
    "crowdflower": (JUDGEMENTS / "crowdflower_queries_zh.jsonl", "zh"),
    "multicpr": (JUDGEMENTS / "multicpr_queries_en.jsonl", "en"),
}
DEFAULT_WEIGHTS = (0.0, 0.25, 0.5, 1.0, 2.0)


@dataclass(frozen=True)
class QuerySet:
    """Judged queries of one data set in one language, searched over ``catalog``."""

    name: str
    data: ProductSearchSet
    queries: list[JudgedQuery]
    splits: list[str]  # each query's split (that of its source text)
    catalog: str  # "own" or "both"


def translated(data: ProductSearchSet) -> tuple[list[JudgedQuery], list[str]]:
    """The data set's queries in the other language, with their originals' splits."""
    path, field = TRANSLATIONS[data.name]
    by_source = {}
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                by_source[row["query"]] = row[field]
    queries, splits = [], []
    for query in data.queries:
        if query.text in by_source:
            queries.append(replace(query, text=by_source[query.text]))
            splits.append(split(query.text))
    return queries, splits


def main_metric(data: ProductSearchSet) -> tuple[str, Callable[[list[str], JudgedQuery], float]]:
    """The data set's headline metric over ranked product ids."""
    if data.name == "crowdflower":
        return "nDCG@10", lambda ids, q: metrics.ndcg_at_k(ids, q.gains, 10) or 0.0
    return (
        "MRR@10",
        lambda ids, q: metrics.reciprocal_rank_at_k(ids, q.relevant(data.relevant_gain), 10) or 0.0,
    )


def _index(
    sets: Sequence[ProductSearchSet], store: EmbeddedStore, settings: Settings, cache: Path | None
) -> dict[str, Any]:
    embedder = MemoEmbedder(build_embedder(settings), cache_dir=cache, log_every_s=30)
    cross = build_cross_embedder(settings)
    if cross is None:
        msg = "CROSS_EMBEDDER is 'none' or the EMBEDDER itself: nothing to measure"
        raise SystemExit(msg)
    products = [as_product(item) for data in sets for item in data.items]
    rows = (Row("catalog", i, p) for i, p in enumerate(products, start=1))
    report = index_catalog(
        rows, store, embedder, cross_embedder=cross, progress=sys.stderr.isatty()
    )
    embedder.flush()
    return {
        "products": report.indexed,
        "units": report.units,
        "seconds": round(report.seconds, 1),
        "stage_seconds": report.stage_seconds,
    }


def _run(
    search: HybridSearch, query_set: QuerySet, own_ids: list[str], weights: Sequence[float]
) -> dict[str, Any]:
    name, score = main_metric(query_set.data)
    filters = Filters(product_ids=own_ids) if query_set.catalog == "own" else Filters()
    base = search.config
    out: dict[str, Any] = {"metric": name, "by_weight": {}}
    for weight in weights:
        # the fusion weights are read per query: the pipeline stays as it is
        search.config = replace(base, weights={**base.weights, "crosslingual": weight})
        per_split: dict[str, list[float]] = {"dev": [], "test": []}
        latencies = []
        stages: dict[str, list[float]] = {"cross_embedder": [], "crosslingual": []}
        for query, part in zip(query_set.queries, query_set.splits, strict=True):
            started = time.perf_counter()
            result = search.search(query.text, filters=filters, size=10, rerank=False)
            latencies.append((time.perf_counter() - started) * 1000)
            per_split[part].append(score([h.product.id for h in result.hits], query))
            for stage, values in stages.items():
                values.append(result.timings_ms.get(stage, 0.0))
        out["by_weight"][str(weight)] = {
            **{part: _mean(values) for part, values in per_split.items()},
            "queries": {part: len(values) for part, values in per_split.items()},
            "p50_ms": round(metrics.percentile(latencies, 0.5), 2),
            "p95_ms": round(metrics.percentile(latencies, 0.95), 2),
            **{
                f"{stage}_p50_ms": round(metrics.percentile(values, 0.5), 2)
                for stage, values in stages.items()
            },
        }
    search.config = base
    return out


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.crosslingual", description=__doc__)
    parser.add_argument("--data", type=Path, default=Path("../shared/datasets"))
    parser.add_argument(
        "--weights",
        type=lambda v: [float(w) for w in v.split(",")],
        default=list(DEFAULT_WEIGHTS),
        help="cross-lingual RRF weights to compare (0: without the cross-lingual list)",
    )
    parser.add_argument(
        "--embedding-cache",
        type=Path,
        default=Path("bench-results/embedding-cache"),
        help="where document vectors of the EMBEDDER persist between runs ('none': nowhere)",
    )
    parser.add_argument("--out", type=Path, default=Path("bench-results/crosslingual.json"))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Index both catalogs once, search every query set at every weight, print and write."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    args = _parser().parse_args(argv)
    started = time.perf_counter()
    settings = Settings()
    cache = None if str(args.embedding_cache).casefold() == "none" else args.embedding_cache
    sets = [load_crowdflower(args.data), load_multicpr(args.data)]
    ids = {data.name: [item.id for item in data.items] for data in sets}
    query_sets = []
    for data in sets:
        own_splits = [split(q.text) for q in data.queries]
        other, other_splits = translated(data)
        language = "en" if data.name == "crowdflower" else "zh"
        foreign = "zh" if language == "en" else "en"
        for catalog in ("own", "both"):
            query_sets.append(
                QuerySet(f"{data.name} {language}", data, data.queries, own_splits, catalog)
            )
            query_sets.append(
                QuerySet(f"{data.name} {foreign}", data, other, other_splits, catalog)
            )
    with tempfile.TemporaryDirectory(prefix="crosslingual-") as folder:
        store = EmbeddedStore(folder)
        index = _index(sets, store, settings, cache)
        search = HybridSearch(
            store,
            build_embedder(settings, serving=True),
            None,
            search_config(settings),
            cross_embedder=build_cross_embedder(settings, serving=True),
        )
        search.warm_up()
        results = {}
        for query_set in query_sets:
            key = f"{query_set.name} over {query_set.catalog} catalog"
            logger.info("searching: %s (%d queries)", key, len(query_set.queries))
            results[key] = _run(search, query_set, ids[query_set.data.name], args.weights)
    result = {
        "benchmark": "crosslingual",
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "git": git_state(),
        "settings": {
            "embedder": settings.embedder,
            "cross_embedder": settings.cross_embedder,
            "weights": args.weights,
            "cross_min_similarity": settings.crosslingual_min_similarity,
        },
        "index": index,
        "results": results,
        "wall_s": round(time.perf_counter() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    _print(result)
    return 0


def _print(result: dict[str, Any]) -> None:
    weights = result["settings"]["weights"]
    head = "".join(f" {'w=' + format(w, 'g'):>11}" for w in weights)
    lines = [f"{'query set':<40} {'metric':<8} split{head}"]
    for key, run in result["results"].items():
        for part in ("dev", "test"):
            cells = "".join(f" {run['by_weight'][str(w)][part] or 0:>11.3f}" for w in weights)
            lines.append(f"{key:<40} {run['metric']:<8} {part:<5}{cells}")
    lines.append(f"index: {result['index']['products']} products in {result['index']['seconds']} s")
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
