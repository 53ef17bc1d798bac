"""Cross-lingual product search: Chinese queries over English products and back (issue 18).

    python -m benchmarks.crosslingual [--weights 0,0.5,1,2,4]

One embedded index holds both judged catalogs: CrowdFlower (English titles and descriptions)
and Multi-CPR (Chinese titles), written by the project's indexer with the configured embedder
and the cross-lingual embedder (``CROSS_EMBEDDER``). The queries are the data sets' own and
their hand translations in ``benchmarks/judgements`` (CrowdFlower's into Chinese, Multi-CPR's
into English), judged by the data sets' own labels. Each query set is searched by the product's
`HybridSearch` three ways:

- over its own catalog only (a shop in one language: a product-id filter keeps the other
  catalog out), where the cross-lingual list only holds products of the other script;
- over both catalogs (a bilingual shop), where the other catalog's products compete.

For each fixed cross-lingual weight (0 is the search without the cross-lingual list; the
weak-match rule off) and for the product's settings (``default``: its weight and its rule) it
prints nDCG@10 (CrowdFlower) or MRR@10 (Multi-CPR) per split and writes JSON with each query's
scores and coverage. From those it simulates every weak-match rule (`WeakMatch`: a coverage
threshold and a factor) and prints the best on dev. Settings are chosen on dev; the queries'
split is that of their source text (`benchmarks.datasets.split`), so a translated query sits in
the split of its original.
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
LANGUAGES = {"crowdflower": "en", "multicpr": "zh"}  # each catalog's language
DEFAULT_WEIGHTS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)
DEFAULT = "default"  # the product's configuration: its weight and its weak-match rule


@dataclass(frozen=True)
class QuerySet:
    """Judged queries of one data set in one language, searched over ``catalog``."""

    name: str
    data: ProductSearchSet
    queries: list[JudgedQuery]
    splits: list[str]  # each query's split (that of its source text)
    catalog: str  # "own" or "both"
    language: str  # the queries' language, "en" or "zh"

    @property
    def same_language(self) -> bool:
        """Whether the queries are in their catalog's own language."""
        return self.language == LANGUAGES[self.data.name]


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
    """Every query at every fixed cross-lingual weight (the weak-match rule off), then with the
    product's configuration (``default``: its weight and its weak-match rule)."""
    name, score = main_metric(query_set.data)
    filters = Filters(product_ids=own_ids) if query_set.catalog == "own" else Filters()
    base = search.config
    configs = {
        str(w): replace(base, weights={**base.weights, "crosslingual": w}, weak_match=None)
        for w in weights
    }
    configs[DEFAULT] = base
    out: dict[str, Any] = {"metric": name, "by_weight": {}, "queries": []}
    per_query: list[dict[str, Any]] = [{"split": part, "scores": {}} for part in query_set.splits]
    for label, config in configs.items():
        # the fusion settings are read per query: the pipeline stays as it is
        search.config = config
        per_split: dict[str, list[float]] = {"dev": [], "test": []}
        latencies = []
        stages: dict[str, list[float]] = {"cross_embedder": [], "crosslingual": []}
        for query, row in zip(query_set.queries, per_query, strict=True):
            started = time.perf_counter()
            result = search.search(query.text, filters=filters, size=10, rerank=False)
            latencies.append((time.perf_counter() - started) * 1000)
            value = score([h.product.id for h in result.hits], query)
            per_split[row["split"]].append(value)
            row["scores"][label] = value
            if label == DEFAULT and result.fusion is not None:
                used = result.fusion.weights
                row["coverage"] = result.fusion.lexical_coverage
                row["weight"] = used.get("crosslingual")
                row["own"] = used.get("lexical", 1.0) + used.get("semantic", 1.0)
            for stage, values in stages.items():
                values.append(result.timings_ms.get(stage, 0.0))
        out["by_weight"][label] = {
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
    out["queries"] = per_query
    return out


def choose_weak_match(
    results: dict[str, dict[str, Any]],
    query_sets: Sequence[QuerySet],
    weights: Sequence[float],
    base_weight: float,
    *,
    factors: Sequence[float] = (0.5, 1.0, 2.0),
    tolerance: float = 0.005,
) -> dict[str, Any]:
    """The weak-match rule (`WeakMatch`: a coverage threshold and a factor) chosen on dev
    queries, simulated from each query's scores at the fixed weights: the best dev mean over all
    query sets whose same-language sets (queries in their catalog's language) stay within
    ``tolerance`` of no cross-lingual list (w = 0). A rule whose weight for some query was not
    swept is left out."""
    swept = {str(float(w)) for w in weights}
    runs = [(query_set, results[_key(query_set)]) for query_set in query_sets]
    rows = [row for _, run in runs for row in run["queries"]]
    if str(0.0) not in swept or any("coverage" not in row for row in rows):
        return {}  # w = 0 was not swept, or the rule was off: no coverage recorded
    floor = {_key(q): _mean(_scores(run, str(0.0), "dev")) or 0.0 for q, run in runs}
    candidates: list[dict[str, Any]] = []
    for threshold in [round(0.1 * i, 1) for i in range(1, 10)]:
        for factor in factors:
            rule = _simulate(runs, threshold, factor, base_weight, swept)
            if rule is None:
                continue
            worst = min(rule[_key(q)]["dev"] - floor[_key(q)] for q, _ in runs if q.same_language)
            if worst < -tolerance:
                continue
            candidates.append(
                {
                    "coverage": threshold,
                    "factor": factor,
                    "dev": sum(v["dev"] for v in rule.values()) / len(rule),
                    "test": sum(v["test"] for v in rule.values()) / len(rule),
                    "sets": rule,
                }
            )
    candidates.sort(key=lambda c: (-round(c["dev"], 6), c["coverage"], c["factor"]))
    return {"best": candidates[0] if candidates else None, "runner_up": candidates[1:5]}


def _key(query_set: QuerySet) -> str:
    return f"{query_set.name} over {query_set.catalog} catalog"


def _scores(run: dict[str, Any], label: str, part: str) -> list[float]:
    return [row["scores"][label] for row in run["queries"] if row["split"] == part]


def _simulate(
    runs: Sequence[tuple[QuerySet, dict[str, Any]]],
    threshold: float,
    factor: float,
    base: float,
    swept: set[str],
) -> dict[str, dict[str, float]] | None:
    """Each query set's dev and test means had the rule been (threshold, factor); None where
    a query's weight was not swept."""
    out = {}
    for query_set, run in runs:
        by_part: dict[str, list[float]] = {"dev": [], "test": []}
        for row in run["queries"]:
            weight = base
            if row["coverage"] is not None and row["coverage"] < threshold:
                weight = max(base, factor * row["own"])
            if str(float(weight)) not in swept:
                return None
            by_part[row["split"]].append(row["scores"][str(float(weight))])
        out[_key(query_set)] = {part: _mean(v) or 0.0 for part, v in by_part.items()}
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
        language = LANGUAGES[data.name]
        foreign = "zh" if language == "en" else "en"
        for catalog in ("own", "both"):
            query_sets.append(
                QuerySet(
                    f"{data.name} {language}", data, data.queries, own_splits, catalog, language
                )
            )
            query_sets.append(
                QuerySet(f"{data.name} {foreign}", data, other, other_splits, catalog, foreign)
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
            key = _key(query_set)
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
            "base_weight": settings.crosslingual_weight,
            "cross_min_similarity": settings.crosslingual_min_similarity,
            "weak_match": {
                "coverage": settings.crosslingual_weak_coverage,
                "factor": settings.crosslingual_weak_factor,
            },
        },
        "index": index,
        "results": results,
        "weak_match_on_dev": choose_weak_match(
            results, query_sets, args.weights, settings.crosslingual_weight
        ),
        "wall_s": round(time.perf_counter() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    _print(result)
    return 0


def _print(result: dict[str, Any]) -> None:
    labels = [str(w) for w in result["settings"]["weights"]] + [DEFAULT]
    head = "".join(
        f" {label if label == DEFAULT else 'w=' + format(float(label), 'g'):>9}" for label in labels
    )
    lines = [f"{'query set':<40} {'metric':<8} split{head}"]
    for key, run in result["results"].items():
        for part in ("dev", "test"):
            cells = "".join(f" {run['by_weight'][label][part] or 0:>9.3f}" for label in labels)
            lines.append(f"{key:<40} {run['metric']:<8} {part:<5}{cells}")
    rule = result["settings"]["weak_match"]
    lines.append(
        f"default: w={result['settings']['base_weight']:g}; below coverage {rule['coverage']:g}, "
        f"{rule['factor']:g} x the query's lexical + semantic weights"
    )
    choice = result["weak_match_on_dev"]
    ranked = ([choice["best"]] if choice.get("best") else []) + choice.get("runner_up", [])
    for rank, c in enumerate(ranked):
        lines.append(
            f"{'chosen on dev' if rank == 0 else '         then'}: coverage < {c['coverage']:g}, "
            f"factor {c['factor']:g}: dev {c['dev']:.3f}, test {c['test']:.3f} (mean of all sets)"
        )
    lines.append(f"index: {result['index']['products']} products in {result['index']['seconds']} s")
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
