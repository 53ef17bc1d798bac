"""Recommendations without a query, on simulated shoppers with their last interaction held out.

    python -m benchmarks.recommendations [--data ../shared/datasets]
        [--embedder packaged:all-minilm-l6-v2] [--history 3] [--per-query 3] [--shoppers 400]
        [--seed 0] [--embedding-cache bench-results/embedding-cache|none] [--no-progress]
        [--out bench-results/recommendations.json]

The catalog and judgments are CrowdFlower's (read from ``--data``, never copied), indexed by the
project's indexer into an `EmbeddedStore` in a temporary folder (vectors from
``--embedding-cache``). A simulated shopper wants what one query's shoppers want: for a query
with at least ``--history`` + 1 products judged relevant (gain >= 2), a seeded sample of
``--history`` + 1 of them, in a seeded order; ``--per-query`` shoppers per query (different
samples), ``--shoppers`` at most in all. Each views and then buys the first ``--history``
products (over the last 30 days, in order); the last one is held out: what a recommender
should find. Every shopper's events go through the product's own path, as ``POST /events``
takes them (`Personalization.record` into a file profile store, then `Trending.record` and
`Complements.record` with the applied events), so every count comes from the product's code.

Then, per shopper, four recommenders list 10 products, none of which the shopper has bought:

1. ``for_you``: the product's `ForYou` (``GET /users/{id}/recommendations``), with the profile
   and events the API reads (`Personalization.shopper`);
2. ``popular``: the most-popular baseline, the product's trending list (`Trending.page`), which
   is also what a new shopper gets;
3. ``co-occurrence``: the item-to-item baseline, the products bought together with the
   shopper's purchases (the product's pair counts), summed over their purchases;
4. ``taste only``: the products nearest the profile's preference vector, without the personal
   scoring and diversity (what those two add).

Measured: hit rate@10 (the held-out product in the list), nDCG@10 (one relevant product: 1 /
log2(rank + 1)), catalog coverage (distinct products recommended over the catalog), intra-list
diversity (mean pairwise 1 - cosine of the listed products' vectors), novelty (mean of -log2 of
each listed product's share of the bought events; a product never bought counts as bought
once), and latency p50/p95 of each recommender's call. Prints one table; writes JSON with the
settings, the machine and the figures.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app.logs import configure_logging
from app.services import build_embedder, configure_threads, personal_config
from app.settings import Settings
from benchmarks import metrics
from benchmarks.datasets import load_crowdflower
from benchmarks.embedders import MemoEmbedder, add_embedding_cache
from benchmarks.relevance import DEFAULT_DATA, as_product, git_state, index_products, machine
from personalization.events import Event
from personalization.service import Personalization
from personalization.stores.file import FileProfileStore
from recommendation.complements import Complements, product_key
from recommendation.for_you import ForYou
from recommendation.stores.base import DAY_S, TrendingConfig
from recommendation.stores.memory import MemoryPairCounts, MemoryTrendingStore
from recommendation.trending import Trending
from retrieval.stores.embedded import EmbeddedStore

logger = logging.getLogger("benchmarks.recommendations")
K = 10
SYSTEMS = ("for_you", "popular", "co-occurrence", "taste only")


@dataclass(frozen=True)
class Shopper:
    """A simulated shopper: what they bought, in order, and the product held out."""

    user_id: str
    query: str
    history: tuple[str, ...]
    held_out: str


def build_shoppers(
    queries: Sequence[tuple[str, Sequence[str]]],
    *,
    history: int,
    per_query: int,
    limit: int,
    seed: int,
) -> list[Shopper]:
    """Seeded shoppers from (query, relevant product ids) pairs; see the module docstring."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible sample, not security
    shoppers: list[Shopper] = []
    for query, relevant in queries:
        pool = sorted(set(relevant))
        if len(pool) < history + 1:
            continue
        for _ in range(per_query):
            picked = rng.sample(pool, history + 1)
            user = f"shopper-{len(shoppers)}"
            shoppers.append(Shopper(user, query, tuple(picked[:history]), picked[history]))
    rng.shuffle(shoppers)
    return shoppers[:limit]


def history_events(shopper: Shopper, now: float) -> list[Event]:
    """A view then a purchase of each history product, a day apart, ending a day ago."""
    events: list[Event] = []
    for i, product_id in enumerate(shopper.history):
        at = now - (len(shopper.history) - i) * DAY_S
        for kind, offset in (("view", -600.0), ("purchase", 0.0)):
            events.append(
                Event(
                    event_id=f"{shopper.user_id}-{i}-{kind}",
                    user_id=shopper.user_id,
                    type=kind,  # type: ignore[arg-type]
                    at=at + offset,
                    product_id=product_id,
                )
            )
    return events


def hit_and_ndcg(listed: Sequence[str], held_out: str) -> tuple[float, float]:
    """Hit@K and nDCG@K of one held-out product."""
    if held_out not in listed[:K]:
        return 0.0, 0.0
    rank = listed.index(held_out) + 1
    return 1.0, 1.0 / math.log2(rank + 1)


def intra_list_diversity(listed: Sequence[str], vectors: dict[str, np.ndarray]) -> float | None:
    """Mean pairwise 1 - cosine of the listed products' vectors (None: fewer than two)."""
    rows = [vectors[p] / np.linalg.norm(vectors[p]) for p in listed[:K] if p in vectors]
    if len(rows) < 2:
        return None
    matrix = np.vstack(rows)
    cosines = matrix @ matrix.T
    n = len(rows)
    return float((n * n - cosines.sum()) / (n * (n - 1)))


def novelty(listed: Sequence[str], bought: Counter[str], total: int) -> float | None:
    """Mean -log2 of each listed product's share of the purchases."""
    if not listed:
        return None
    return float(np.mean([-math.log2(max(bought[p], 1) / total) for p in listed[:K]]))


class Recommenders:
    """The four recommenders over one catalog and one population."""

    def __init__(
        self,
        store: EmbeddedStore,
        personalization: Personalization,
        trending: Trending,
        complements: Complements,
        for_you: ForYou,
    ) -> None:
        self.store = store
        self.personalization = personalization
        self.trending = trending
        self.complements = complements
        self.for_you = for_you

    def systems(self) -> dict[str, Callable[[Shopper], list[str]]]:
        return {
            "for_you": self._for_you,
            "popular": self._popular,
            "co-occurrence": self._co_occurrence,
            "taste only": self._taste,
        }

    def _for_you(self, shopper: Shopper) -> list[str]:
        profile, history = self.personalization.shopper(shopper.user_id)
        page = self.for_you.page(shopper.user_id, profile, history, size=K)
        return [r.product.id for r in page.items]

    def _popular(self, shopper: Shopper) -> list[str]:
        page = self.trending.page(size=K + len(shopper.history))
        return [i.product.id for i in page.items if i.product.id not in shopper.history][:K]

    def _co_occurrence(self, shopper: Shopper) -> list[str]:
        scores: dict[str, float] = {}
        for product_id in shopper.history:
            for key, count in self.complements.pairs.partners(product_key(product_id), 100):
                other = key.removeprefix("p:")
                scores[other] = scores.get(other, 0.0) + count
        ranked = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
        return [p for p, _ in ranked if p not in shopper.history][:K]

    def _taste(self, shopper: Shopper) -> list[str]:
        profile, _ = self.personalization.shopper(shopper.user_id)
        preference = profile.preference() if profile is not None else None
        if preference is None:
            return []
        hits = self.store.semantic(
            preference, kinds=("product",), filters=None, top_k=K + len(shopper.history)
        )
        return [h.unit.product_id for h in hits if h.unit.product_id not in shopper.history][:K]


def measure(
    recommenders: Recommenders,
    shoppers: Sequence[Shopper],
    vectors: dict[str, np.ndarray],
    catalog_size: int,
    progress: bool,
) -> dict[str, dict[str, Any]]:
    """Every recommender's figures over the shoppers."""
    bought = Counter(p for s in shoppers for p in s.history)
    total = max(sum(bought.values()), 1)
    results: dict[str, dict[str, Any]] = {}
    for name, recommend in recommenders.systems().items():
        for shopper in shoppers[:3]:
            recommend(shopper)  # warm up, untimed
        hits, ndcgs, ilds, novelties, times, lists = [], [], [], [], [], []
        for n, shopper in enumerate(shoppers, start=1):
            start = time.perf_counter()
            listed = recommend(shopper)
            times.append((time.perf_counter() - start) * 1000)
            hit, ndcg = hit_and_ndcg(listed, shopper.held_out)
            hits.append(hit)
            ndcgs.append(ndcg)
            ilds.append(intra_list_diversity(listed, vectors))
            novelties.append(novelty(listed, bought, total))
            lists.append(listed)
            if progress and n % 100 == 0:
                sys.stderr.write(f"  {name}: {n}/{len(shoppers)} shoppers\n")
        results[name] = {
            "hit_rate@10": round(float(np.mean(hits)), 4),
            "ndcg@10": round(float(np.mean(ndcgs)), 4),
            "coverage@10": round(metrics.coverage(lists, catalog_size, K), 4),
            "diversity@10": _round(metrics.mean(ilds)),
            "novelty@10": _round(metrics.mean(novelties)),
            "empty_lists": sum(1 for listed in lists if not listed),
            "latency_ms": metrics.latency_summary(times),
        }
        logger.info("%s: %s", name, results[name])
    return results


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.recommendations",
        description=(__doc__ or "").splitlines()[0],
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--embedder", default="packaged:all-minilm-l6-v2")
    parser.add_argument("--history", type=int, default=3, help="products bought per shopper")
    parser.add_argument("--per-query", type=int, default=3, help="shoppers per query")
    parser.add_argument("--shoppers", type=int, default=400, help="shoppers at most")
    parser.add_argument("--seed", type=int, default=0)
    add_embedding_cache(parser)
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("bench-results/recommendations.json"))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; 0 on success."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.history < 1 or args.per_query < 1 or args.shoppers < 1:
        parser.error("--history, --per-query and --shoppers must be at least 1")
    configure_logging("INFO", json_lines=False)
    started = time.perf_counter()
    progress = not args.no_progress
    data = load_crowdflower(args.data)
    with tempfile.TemporaryDirectory(prefix="shopguide-recommendations-") as tmp:
        folder = Path(tmp)
        settings = Settings(embedder=args.embedder, data_dir=folder, _env_file=None)  # type: ignore[call-arg]
        embedder = build_embedder(settings)
        memo = MemoEmbedder(embedder, cache_dir=args.embedding_cache)
        store = EmbeddedStore(folder / "index")
        products = [as_product(item) for item in data.items]
        index_products(data.name, products, store, memo, progress)
        memo.flush()
        configure_threads(settings, serving=True)
        queries = [(q.text, sorted(q.relevant(data.relevant_gain))) for q in data.queries]
        shoppers = build_shoppers(
            queries,
            history=args.history,
            per_query=args.per_query,
            limit=args.shoppers,
            seed=args.seed,
        )
        config = personal_config(settings)
        personalization = Personalization(
            FileProfileStore(folder / "profiles", half_life_s=config.half_life_s),
            store,
            config,
        )
        trending = Trending(MemoryTrendingStore(TrendingConfig()), store)
        complements = Complements(MemoryPairCounts(), store)
        now = time.time()
        record_start = time.perf_counter()
        for shopper in shoppers:  # as POST /events does, a shopper's events in one batch
            recorded = personalization.record(history_events(shopper, now))
            trending.record(recorded.report.applied, recorded.products, now=now)
            complements.record(recorded.report.applied, personalization.history)
        record_s = time.perf_counter() - record_start
        recommenders = Recommenders(
            store, personalization, trending, complements, ForYou(store, trending, config)
        )
        vectors = store.product_vectors([p.id for p in products])
        results = measure(recommenders, shoppers, vectors, len(products), progress)
    result = {
        "benchmark": "recommendations",
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "git": git_state(),
        "settings": {
            "data": str(args.data),
            "embedder": embedder.name,
            "history": args.history,
            "per_query": args.per_query,
            "shoppers": len(shoppers),
            "seed": args.seed,
            "personal": {"weight": config.weight, "half_life_days": config.half_life_days},
        },
        "catalog": {
            "products": len(products),
            "queries_with_shoppers": len({s.query for s in shoppers}),
        },
        "record_s": round(record_s, 2),
        "systems": results,
        "wall_s": round(time.perf_counter() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    _print(result)
    sys.stdout.write(f"\nwritten to {args.out}\n")
    return 0


def _print(result: dict[str, Any]) -> None:
    out = sys.stdout.write
    s = result["settings"]
    out(
        f"embedder {s['embedder']}; {s['shoppers']} shoppers over "
        f"{result['catalog']['queries_with_shoppers']} queries, {s['history']} purchases each, "
        f"the next one held out; catalog {result['catalog']['products']} products\n\n"
    )
    out(
        f"{'system':<15}{'hit@10':>8}{'nDCG@10':>9}{'coverage':>10}{'diversity':>11}"
        f"{'novelty':>9}{'empty':>7}{'p50 ms':>8}{'p95 ms':>8}\n"
    )
    for name, row in result["systems"].items():
        latency = row["latency_ms"]
        out(
            f"{name:<15}{row['hit_rate@10']:>8.3f}{row['ndcg@10']:>9.3f}"
            f"{row['coverage@10']:>10.3f}{_cell(row['diversity@10'], 11)}"
            f"{_cell(row['novelty@10'], 9)}{row['empty_lists']:>7}"
            f"{latency.get('median', 0):>8.1f}{latency.get('p95', 0):>8.1f}\n"
        )
    out(f"\nwall time {result['wall_s']} s\n")


def _cell(value: float | None, width: int) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.3f}"


if __name__ == "__main__":
    raise SystemExit(main())
