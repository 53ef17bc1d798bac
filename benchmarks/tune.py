"""Tuning the hybrid's fusion on human-judged data: dev queries choose, test queries report.

    python -m benchmarks.tune [--data ../shared/datasets]
        [--datasets crowdflower,multicpr,epqa] [--embedder packaged:all-minilm-l6-v2]
        [--embedding-cache bench-results/embedding-cache|none] [--limit-queries N]
        [--out bench-results/tune.json] [--no-progress]

The tasks are the ones ``benchmarks.relevance`` scores, built by its functions (same catalog, same
scopes, same metrics): CrowdFlower and Multi-CPR product search over the whole catalog, and ePQA
passage ranking per product (as ``HybridSearch.passages``) and pooled. Each data set is indexed
once into an `EmbeddedStore` (vectors from ``--embedding-cache`` where it has them); then every
query runs once through ``store.hybrid``, the call the product's retriever makes, with the
product's depth and field boosts, and both candidate lists are kept with their scores.

Every fusion setting is then evaluated offline over those lists, exactly as the product's
pipeline would fuse them (`fuse`): the similarity floor drops vector hits where the scope
applies it, a list whose weight is 0 is left out, and `retrieval.fusion.reciprocal_rank_fusion`
fuses the rest. Grid: RRF weights lexical:semantic (1:w for the ``SEMANTIC`` values, and 0:1),
RRF k, and the similarity floor (only where the task applies it), plus the app's defaults.

Queries are split into a dev and a test half by the SHA-1 of their text (even: dev), which does
not depend on order, seed or ``--limit-queries``. The best setting of each task is chosen on dev
by its main metric (then its second metric, then closeness to the default) and reported on test
next to the default, BM25 alone and vectors alone. The chosen settings for the app: product
search from CrowdFlower dev (English), the Chinese-query vector weight from Multi-CPR dev (the app
shares k and the floor across languages: this is chosen with CrowdFlower's k and floor), and
passage search from ePQA per-product dev. Without a re-ranker: the product re-ranks the top of
the fused list afterwards. Prints the tables and writes JSON with the machine and the settings.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from app.logs import configure_logging
from app.services import build_embedder, configure_threads, search_config
from app.settings import Settings
from benchmarks import metrics
from benchmarks.datasets import (
    SPLITS,
    PageQASet,
    ProductSearchSet,
    load_crowdflower,
    load_epqa,
    load_multicpr,
    split,
)
from benchmarks.embedders import MemoEmbedder, add_embedding_cache
from benchmarks.relevance import (
    EPQA_TASKS,
    MetricFn,
    Scope,
    add_data_options,
    as_product,
    epqa_catalog,
    epqa_metrics,
    epqa_scopes,
    git_state,
    index_products,
    machine,
    product_metrics,
    product_scope,
)
from retrieval import text as text_analysis
from retrieval.embedders.base import Embedder
from retrieval.fusion import reciprocal_rank_fusion
from retrieval.schema import Filters, Product
from retrieval.search import SearchConfig
from retrieval.stores.embedded import EmbeddedStore

logger = logging.getLogger("benchmarks.tune")

SEMANTIC = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0)  # with lexical 1
RRF_K = (5.0, 10.0, 20.0, 40.0, 60.0, 100.0)
FLOORS: tuple[float | None, ...] = (None, 0.2, 0.25, 0.3, 0.35, 0.4)
MAIN_METRIC = {
    "crowdflower/product_search": "nDCG@10",
    "multicpr/product_search": "MRR@10",
    "epqa/per_product": "nDCG@10",
    "epqa/pooled": "nDCG@10",
}


# -- settings ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    """One fusion setting; ``semantic_cjk`` is the vector weight of Chinese, Japanese or Korean
    queries where it differs from ``semantic`` (the app's rule for an English-only model)."""

    lexical: float
    semantic: float
    rrf_k: float
    min_similarity: float | None
    semantic_cjk: float | None = None

    @classmethod
    def from_config(cls, config: SearchConfig) -> Setting:
        """The fusion part of a `SearchConfig`."""
        cjk = dict(config.cjk_weights or {})
        if set(cjk) - {"semantic"}:
            msg = f"only a semantic weight for CJK queries can be tuned, got {cjk}"
            raise ValueError(msg)
        semantic = config.weights.get("semantic", 1.0)
        semantic_cjk = cjk.get("semantic", semantic)
        return cls(
            lexical=config.weights.get("lexical", 1.0),
            semantic=semantic,
            rrf_k=config.rrf_k,
            min_similarity=config.min_similarity,
            semantic_cjk=None if semantic_cjk == semantic else semantic_cjk,
        )

    def config(self, base: SearchConfig) -> SearchConfig:
        """``base`` with this setting's fusion."""
        return dataclasses.replace(
            base,
            rrf_k=self.rrf_k,
            weights={"lexical": self.lexical, "semantic": self.semantic},
            min_similarity=self.min_similarity,
            cjk_weights=None if self.semantic_cjk is None else {"semantic": self.semantic_cjk},
        )

    def for_queries(self, queries: Iterable[str]) -> Setting:
        """The same fusion without ``semantic_cjk`` where every query is CJK or none is."""
        if self.semantic_cjk is None:
            return self
        cjk = {text_analysis.has_cjk(q) for q in queries}
        if cjk == {True}:
            return dataclasses.replace(self, semantic=self.semantic_cjk, semantic_cjk=None)
        if cjk == {False}:
            return dataclasses.replace(self, semantic_cjk=None)
        return self

    def effective(self, floor_applies: bool) -> tuple[Any, ...]:
        """What decides the ranking: settings with the same key rank every query alike (one
        list alone keeps its order whatever k; the floor only counts where it applies)."""
        floor = self.min_similarity if floor_applies else None
        if self.semantic_cjk is not None:
            return (self.lexical, self.semantic, self.rrf_k, floor, self.semantic_cjk)
        if self.semantic == 0:
            return (1.0, 0.0, None, None)
        if self.lexical == 0:
            return (0.0, 1.0, None, floor)
        return (self.lexical, self.semantic, self.rrf_k, floor)

    def label(self, floor_applies: bool = True) -> str:
        """A short description; parameters that cannot matter are left out."""
        if self.semantic_cjk is None and self.semantic == 0:
            return "lexical only"
        floor = (
            f"floor {self.min_similarity if self.min_similarity is not None else 'none'}"
            if floor_applies
            else ""
        )
        if self.semantic_cjk is None and self.lexical == 0:
            return " ".join(["semantic only", floor]).strip()
        weights = f"lex {_num(self.lexical)} : sem {_num(self.semantic)}"
        if self.semantic_cjk is not None:
            weights += f" (CJK sem {_num(self.semantic_cjk)})"
        return ", ".join(p for p in (weights, f"k {_num(self.rrf_k)}", floor) if p)

    def to_json(self) -> dict[str, Any]:
        """The setting as JSON, with the app's setting names."""
        out: dict[str, Any] = {
            "lexical_weight": self.lexical,
            "semantic_weight": self.semantic,
            "rrf_k": self.rrf_k,
            "semantic_min_similarity": self.min_similarity,
        }
        if self.semantic_cjk is not None:
            out["semantic_weight_cjk"] = self.semantic_cjk
        return out


def _num(value: float) -> str:
    return f"{value:g}"


def grid(default: Setting) -> list[Setting]:
    """Every setting to evaluate: weights x k x floor, the default's values included."""
    semantic = sorted({*SEMANTIC, default.semantic, *_present(default.semantic_cjk)})
    weights = [(1.0, s) for s in semantic] + [(0.0, 1.0)]
    if (default.lexical, default.semantic) not in weights:
        weights.append((default.lexical, default.semantic))
    ks = sorted({*RRF_K, default.rrf_k})
    floors = [None, *sorted({f for f in (*FLOORS, default.min_similarity) if f is not None})]
    return [Setting(lex, sem, k, floor) for lex, sem in weights for k in ks for floor in floors]


def _present(value: float | None) -> tuple[float, ...]:
    return () if value is None else (value,)


# -- candidates and offline fusion -----------------------------------------------------------


@dataclass(frozen=True)
class Candidates:
    """One query's two candidate lists as the product's retriever returns them, best first."""

    query: str
    top_k: int  # the retrievers' depth and the fused list's length
    size: int  # how many of the fused list the task shows
    similarity_floor: bool
    lexical: list[str]
    semantic: list[tuple[str, float]]


def fetch(
    store: EmbeddedStore,
    embedder: Embedder,
    query: str,
    scope: Scope,
    config: SearchConfig,
) -> Candidates:
    """Both lists for ``query`` in ``scope``, as `HybridSearch` asks the store for them (product
    search: the window of `HybridSearch.search` with a page of ``scope.top_k``)."""
    top_k = max(config.candidates, scope.top_k) if scope.product_search else scope.top_k
    filters = scope.filters or Filters() if scope.product_search else scope.filters
    lexical, semantic = store.hybrid(
        query,
        embedder.embed_query(query),
        kinds=scope.kinds,
        filters=filters,
        top_k=top_k,
        boosts=config.boosts,
    )
    return Candidates(
        query=query,
        top_k=top_k,
        size=scope.top_k,
        similarity_floor=scope.similarity_floor,
        lexical=[h.unit.id for h in lexical],
        semantic=[(h.unit.id, h.score) for h in semantic],
    )


def fuse(candidates: Candidates, config: SearchConfig) -> list[str]:
    """The unit ids the product's pipeline (no re-ranker) returns for these candidates under
    ``config``: `StoreHybridRetriever`'s floor, then `RRFJoiner`'s fusion and cut."""
    weights = config.weights_for(candidates.query)
    semantic = candidates.semantic
    if config.min_similarity is not None and candidates.similarity_floor:
        semantic = [(i, s) for i, s in semantic if s >= config.min_similarity]
    lists = {
        name: ids
        for name, ids in (("lexical", candidates.lexical), ("semantic", [i for i, _ in semantic]))
        if weights.get(name, 1.0) != 0
    }
    fused = reciprocal_rank_fusion(lists, k=config.rrf_k, weights=weights)
    return [i for i, _ in fused[: candidates.top_k]][: candidates.size]


# -- tasks -------------------------------------------------------------------------------------


@dataclass
class Task:
    """One task's queries with their candidates, and how a ranking is scored."""

    name: str
    main: str
    metrics: dict[str, MetricFn]
    candidates: list[Candidates]
    halves: list[str]
    translate: Callable[[list[str]], list[str]] = lambda ids: ids
    fetch_s: float = 0.0

    @property
    def floor_applies(self) -> bool:
        """Whether the similarity floor acts in this task."""
        return any(c.similarity_floor for c in self.candidates)

    @property
    def texts(self) -> list[str]:
        """The query texts."""
        return [c.query for c in self.candidates]

    def evaluate(self, config: SearchConfig) -> dict[str, dict[str, float | None]]:
        """Mean of each metric over the dev and the test queries."""
        values: dict[str, list[list[float | None]]] = {s: [] for s in SPLITS}
        for i, (candidates, half) in enumerate(zip(self.candidates, self.halves, strict=True)):
            ranked = self.translate(fuse(candidates, config))
            values[half].append([fn(ranked, i) for fn in self.metrics.values()])
        return {
            half: {
                metric: _round(metrics.mean(row[m] for row in rows))
                for m, metric in enumerate(self.metrics)
            }
            for half, rows in values.items()
        }

    def scored(self, config: SearchConfig) -> dict[str, dict[str, int]]:
        """Per half, how many queries each metric's mean is over under ``config``."""
        rows: dict[str, dict[str, int]] = {s: dict.fromkeys(self.metrics, 0) for s in SPLITS}
        for i, (candidates, half) in enumerate(zip(self.candidates, self.halves, strict=True)):
            ranked = self.translate(fuse(candidates, config))
            for metric, fn in self.metrics.items():
                rows[half][metric] += fn(ranked, i) is not None
        return rows


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def _fetch_all(
    label: str,
    store: EmbeddedStore,
    embedder: Embedder,
    queries: Sequence[tuple[str, Scope]],
    config: SearchConfig,
    progress: bool,
) -> tuple[list[Candidates], float]:
    started = time.perf_counter()
    bar = tqdm(
        queries,
        desc=label,
        unit=" queries",
        disable=not progress,
        mininterval=0.5 if sys.stderr.isatty() else 15.0,
    )
    found = [fetch(store, embedder, query, scope, config) for query, scope in bar]
    bar.close()
    seconds = time.perf_counter() - started
    logger.info("%s: candidates of %d queries in %.1f s", label, len(queries), seconds)
    return found, seconds


@dataclass
class Indexed:
    """A data set's index and the tasks over it."""

    tasks: list[Task] = field(default_factory=list)
    catalog: dict[str, Any] = field(default_factory=dict)


def _index(
    name: str,
    products: list[Product],
    folder: Path,
    embedder: MemoEmbedder,
    progress: bool,
) -> tuple[EmbeddedStore, dict[str, Any]]:
    before = embedder.embedded
    store = EmbeddedStore(folder / name)
    report = index_products(name, products, store, embedder, progress)
    embedder.flush()
    return store, {
        "products": report.indexed,
        "units": report.units,
        "embedded": report.embedded,
        "computed": embedder.embedded - before,
        "seconds": round(report.seconds, 2),
    }


def product_tasks(
    data: ProductSearchSet,
    embedder: MemoEmbedder,
    config: SearchConfig,
    folder: Path,
    *,
    limit_queries: int | None = None,
    progress: bool = False,
) -> Indexed:
    """Product search over the whole catalog, as ``benchmarks.relevance`` runs it."""
    store, index = _index(
        data.name, [as_product(i) for i in data.items], folder, embedder, progress
    )
    queries = data.queries[: limit_queries or None]
    scope = product_scope(data.name, config)
    name = f"{data.name}/product_search"
    found, seconds = _fetch_all(
        name, store, embedder, [(q.text, scope) for q in queries], config, progress
    )
    embedder.flush()
    store.close()
    task = Task(
        name=name,
        main=MAIN_METRIC[name],
        metrics=product_metrics(data, queries),
        candidates=found,
        halves=[split(q.text) for q in queries],
        fetch_s=seconds,
    )
    return Indexed([task], {"products": len(data.items), "index": index})


def epqa_tasks(
    data: PageQASet,
    embedder: MemoEmbedder,
    config: SearchConfig,
    folder: Path,
    *,
    limit_queries: int | None = None,
    progress: bool = False,
) -> Indexed:
    """ePQA passage ranking, per product and pooled, as ``benchmarks.relevance`` runs it."""
    catalog = epqa_catalog(data)
    store, index = _index(data.name, catalog.products, folder, embedder, progress)
    questions = data.questions[: limit_queries or None]
    scopes = [epqa_scopes(q, config) for q in questions]
    per_query = epqa_metrics(questions)
    indexed = Indexed(
        catalog={
            "products": len(catalog.products),
            "passages": len(catalog.unit_text),
            "index": index,
        }
    )
    for task in EPQA_TASKS:
        name = f"{data.name}/{task}"
        queries = [(q.text, s[task]) for q, s in zip(questions, scopes, strict=True)]
        found, seconds = _fetch_all(name, store, embedder, queries, config, progress)
        indexed.tasks.append(
            Task(
                name=name,
                main=MAIN_METRIC[name],
                metrics=per_query,
                candidates=found,
                halves=[split(q.text) for q in questions],
                translate=catalog.to_texts,
                fetch_s=seconds,
            )
        )
    embedder.flush()
    store.close()
    return indexed


# -- choosing ----------------------------------------------------------------------------------


@dataclass
class Scores:
    """One setting's dev and test means on one task."""

    setting: Setting
    values: dict[str, dict[str, float | None]]

    def get(self, half: str, metric: str) -> float:
        """The mean, -1 where undefined (so it never wins)."""
        value = self.values[half].get(metric)
        return -1.0 if value is None else value

    def to_json(self, task: Task) -> dict[str, Any]:
        """The setting, its label and its means."""
        return {
            "setting": self.setting.to_json(),
            "label": self.setting.label(task.floor_applies),
            **self.values,
        }


def evaluate_grid(
    task: Task,
    settings: Sequence[Setting],
    base: SearchConfig,
    *,
    progress: bool = False,
) -> list[Scores]:
    """Each setting's means; settings that rank alike are evaluated once."""
    by_key: dict[tuple[Any, ...], dict[str, dict[str, float | None]]] = {}
    keys = [s.effective(task.floor_applies) for s in settings]
    distinct = {k: s for k, s in zip(keys, settings, strict=True)}
    started = time.perf_counter()
    bar = tqdm(
        distinct.items(),
        desc=f"{task.name} grid",
        unit=" settings",
        disable=not progress,
        mininterval=0.5 if sys.stderr.isatty() else 15.0,
    )
    for key, setting in bar:
        by_key[key] = task.evaluate(setting.config(base))
    bar.close()
    logger.info(
        "%s: %d settings (%d distinct) in %.1f s",
        task.name,
        len(settings),
        len(distinct),
        time.perf_counter() - started,
    )
    return [Scores(s, by_key[k]) for s, k in zip(settings, keys, strict=True)]


def best(task: Task, scores: Sequence[Scores], default: Setting) -> Scores:
    """The best on dev (see `ranking`)."""
    return ranking(task, scores, default)[0]


def ranking(task: Task, scores: Sequence[Scores], default: Setting) -> list[Scores]:
    """Best on dev first: by the main metric, then the second, then closeness to ``default``
    (fewest parameters that differ where they matter), then grid order."""
    second = next((m for m in task.metrics if m != task.main), task.main)

    def distance(a: tuple[Any, ...], b: tuple[Any, ...]) -> int:
        return sum(x != y for x, y in zip(a, b, strict=False)) + abs(len(a) - len(b))

    near = default.effective(task.floor_applies)
    plain = (default.lexical, default.semantic, default.rrf_k, default.min_similarity)
    order = sorted(
        range(len(scores)),
        key=lambda i: (
            -scores[i].get("dev", task.main),
            -scores[i].get("dev", second),
            distance(scores[i].setting.effective(task.floor_applies), near),
            # among settings that rank alike, the one nearest the default as written
            distance(
                (
                    scores[i].setting.lexical,
                    scores[i].setting.semantic,
                    scores[i].setting.rrf_k,
                    scores[i].setting.min_similarity,
                ),
                plain,
            ),
            i,
        ),
    )
    return [scores[i] for i in order]


@dataclass
class TaskReport:
    """A task's grid results and the rows the table shows."""

    task: Task
    default: Scores
    scored: dict[str, dict[str, int]]
    grid: list[Scores]
    ranked: list[Scores]
    lexical_only: Scores
    semantic_only: Scores

    @property
    def best(self) -> Scores:
        """The setting chosen on dev."""
        return self.ranked[0]

    def to_json(self) -> dict[str, Any]:
        """The task's summary, its ten best distinct settings on dev and the whole grid."""
        task = self.task
        top: dict[tuple[Any, ...], Scores] = {}
        for scores in self.ranked:
            top.setdefault(scores.setting.effective(task.floor_applies), scores)
        return {
            "queries": {half: sum(h == half for h in task.halves) for half in SPLITS},
            "scored_queries": self.scored,
            "main_metric": task.main,
            "similarity_floor_applies": task.floor_applies,
            "depth": task.candidates[0].top_k if task.candidates else None,
            "fetch_s": round(task.fetch_s, 2),
            "default": {
                **self.default.to_json(task),
                # what the default does on these queries (Chinese ones: the CJK weight)
                "label": self.default.setting.for_queries(task.texts).label(task.floor_applies),
            },
            "best": self.best.to_json(task),
            "lexical_only": self.lexical_only.to_json(task),
            "semantic_only": self.semantic_only.to_json(task),
            "top_on_dev": [s.to_json(task) for s in list(top.values())[:10]],
            "grid": [
                [s.setting.label(task.floor_applies), s.values["dev"], s.values["test"]]
                for s in self.grid
            ],
        }


def report_task(
    task: Task, default: Setting, base: SearchConfig, *, progress: bool = False
) -> TaskReport:
    """Evaluate the grid and the reference settings on one task."""
    settings = grid(default)
    scores = evaluate_grid(task, settings, base, progress=progress)
    plain = default.for_queries(task.texts)
    lexical = Setting(1.0, 0.0, default.rrf_k, None)
    semantic = Setting(0.0, 1.0, default.rrf_k, default.min_similarity)
    return TaskReport(
        task=task,
        default=Scores(default, task.evaluate(default.config(base))),
        scored=task.scored(default.config(base)),
        grid=scores,
        ranked=ranking(task, scores, plain),
        lexical_only=Scores(lexical, task.evaluate(lexical.config(base))),
        semantic_only=Scores(semantic, task.evaluate(semantic.config(base))),
    )


def choose(reports: Mapping[str, TaskReport], default: Setting) -> dict[str, Setting]:
    """The settings to propose: per use, and one app setting that combines them."""
    chosen: dict[str, Setting] = {}
    english = reports.get("crowdflower/product_search")
    chinese = reports.get("multicpr/product_search")
    passages = reports.get("epqa/per_product")
    if english is not None:
        chosen["product search (CrowdFlower dev)"] = english.best.setting
    if chinese is not None:
        chosen["CJK product search (Multi-CPR dev)"] = chinese.best.setting
    if passages is not None:
        chosen["passage search (ePQA per-product dev)"] = passages.best.setting
    if english is not None:
        app = english.best.setting
        semantic_cjk = default.semantic_cjk
        if chinese is not None:
            same = [
                s
                for s in chinese.grid
                if (s.setting.lexical, s.setting.rrf_k, s.setting.min_similarity)
                == (app.lexical, app.rrf_k, app.min_similarity)
            ]
            if same:
                semantic_cjk = best(chinese.task, same, chinese.best.setting).setting.semantic
        if semantic_cjk == app.semantic:
            semantic_cjk = None
        chosen["app: English setting + CJK vector weight"] = dataclasses.replace(
            app, semantic_cjk=semantic_cjk
        )
    return chosen


# -- the command -----------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.tune",
        description=(__doc__ or "").splitlines()[0],
    )
    add_data_options(parser)
    add_embedding_cache(parser)
    parser.add_argument(
        "--limit-queries", type=int, default=None, help="only the first N queries of each task"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the ePQA shuffle")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("bench-results/tune.json"))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the tuning; 0 on success."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings(
            embedder=args.embedder,
            **({"embedder_runtime": args.embedder_runtime} if args.embedder_runtime else {}),
        )
    except ValueError as exc:
        parser.error(str(exc))
    configure_logging("INFO", json_lines=False)
    started = time.perf_counter()
    progress = not args.no_progress
    base = search_config(settings)
    default = Setting.from_config(base)
    configure_threads(settings)
    model = build_embedder(settings)
    load_start = time.perf_counter()
    model.warm_up()
    text_analysis.warm_up()
    embedder = MemoEmbedder(model, cache_dir=args.embedding_cache, memo_queries=True)
    result: dict[str, Any] = {
        "benchmark": "tune",
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "git": git_state(),
        "settings": {
            "data": str(args.data),
            "datasets": args.datasets,
            "embedder": model.name,
            "embedding_dim": model.dim,
            "embedding_cache": str(args.embedding_cache) if args.embedding_cache else None,
            "reranker": None,
            "default": default.to_json(),
            "candidates": base.candidates,
            "passage_candidates": base.passage_candidates,
            "boosts": dict(base.boosts),
            "grid": {
                "weights": "lexical 1 : semantic "
                + ", ".join(_num(s) for s in SEMANTIC)
                + "; lexical 0 : semantic 1",
                "rrf_k": list(RRF_K),
                "min_similarity": list(FLOORS),
                "settings": len(grid(default)),
            },
            "split": "sha1(query text) even: dev, odd: test",
            "limit_queries": args.limit_queries,
            "epqa_seed": args.seed,
        },
        "model_load_s": round(time.perf_counter() - load_start, 2),
        "datasets": {},
        "tasks": {},
    }
    loaders: dict[str, Callable[[], Any]] = {
        "crowdflower": lambda: load_crowdflower(args.data),
        "multicpr": lambda: load_multicpr(args.data),
        "epqa": lambda: load_epqa(args.data, seed=args.seed),
    }
    reports: dict[str, TaskReport] = {}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tune-") as folder:
        for name in args.datasets:
            logger.info("%s: loading from %s", name, args.data)
            data = loaders[name]()
            make = epqa_tasks if isinstance(data, PageQASet) else product_tasks
            indexed = make(
                data,
                embedder,
                base,
                Path(folder),
                limit_queries=args.limit_queries,
                progress=progress,
            )
            result["datasets"][name] = indexed.catalog
            for task in indexed.tasks:
                reports[task.name] = report_task(task, default, base, progress=progress)
                result["tasks"][task.name] = reports[task.name].to_json()
            _write(result, started, args.out)
    chosen = choose(reports, default)
    result["chosen"] = {
        label: {
            "setting": setting.to_json(),
            "label": setting.label(),
            "tasks": {name: reports[name].task.evaluate(setting.config(base)) for name in reports},
        }
        for label, setting in {"default": default, **chosen}.items()
    }
    result["queries_embedded"] = embedder.queries_embedded
    _write(result, started, args.out)
    _print(result)
    sys.stdout.write(f"\nwritten to {args.out}\n")
    return 0


def _write(result: dict[str, Any], started: float, path: Path) -> None:
    result["wall_s"] = round(time.perf_counter() - started, 2)
    if hasattr(os, "getloadavg"):
        result["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    path.write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")


# -- printing --------------------------------------------------------------------------------


ROW_NAMES = {
    "default": "default",
    "best": "best on dev",
    "lexical_only": "bm25 only",
    "semantic_only": "dense only",
}


def _cell(value: float | None, width: int) -> str:
    return f"{'n/a':>{width}}" if value is None else f"{value:>{width}.3f}"


def _print(result: dict[str, Any]) -> None:
    out = sys.stdout.write
    s = result["settings"]
    out(
        f"embedder {s['embedder']}, no re-ranker; default {s['default']}; "
        f"{s['grid']['settings']} settings; queries {s['limit_queries'] or 'all'}; "
        f"split {s['split']}\n"
    )
    for name, task in result["tasks"].items():
        metric_names = list(task["default"]["dev"])[:2]
        queries = task["queries"]
        scored = task["scored_queries"]
        main = task["main_metric"]
        out(
            f"\n== {name}: {queries['dev']} dev / {queries['test']} test queries "
            f"({main} over {scored['dev'][main]} / {scored['test'][main]}); "
            f"depth {task['depth']}"
            + ("" if task["similarity_floor_applies"] else "; no similarity floor")
            + "\n"
        )
        columns = [f"{half} {m}" for half in SPLITS for m in metric_names]
        widths = [max(len(c), 7) for c in columns]
        out(
            f"{'':<12}{'setting':<44}"
            + "".join(f" {c:>{w}}" for c, w in zip(columns, widths, strict=True))
            + "\n"
        )
        rows = [(ROW_NAMES[r], task[r]) for r in ROW_NAMES]
        rows += [(f"dev #{n}", t) for n, t in enumerate(task["top_on_dev"][1:5], start=2)]
        for row, entry in rows:
            cells = [entry[half][m] for half in SPLITS for m in metric_names]
            out(
                f"{row:<12}{entry['label'][:43]:<44}"
                + "".join(f" {_cell(v, w)}" for v, w in zip(cells, widths, strict=True))
                + "\n"
            )
    if "chosen" in result:
        names = list(result["tasks"])
        out("\nchosen settings, main metric dev / test on every task\n")
        out(f"{'':<44}" + "".join(f" {n:>28}" for n in names) + "\n")
        for label, entry in result["chosen"].items():
            cells = []
            for name in names:
                main = result["tasks"][name]["main_metric"]
                values = entry["tasks"][name]
                cells.append(f"{_fmt(values['dev'][main])} / {_fmt(values['test'][main])}")
            out(f"{label[:43]:<44}" + "".join(f" {c:>28}" for c in cells) + "\n")
            out(f"{'  ' + entry['label']}\n")
    machine_info = result["machine"]
    out(
        f"\nwall time {result['wall_s']} s on {machine_info['cpu_count']} CPUs; load average "
        f"{machine_info.get('load_average_at_start', ['?'])[0]} at start, "
        f"{machine_info.get('load_average_at_end', ['?'])[0]} at end\n"
    )


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    sys.exit(main())
