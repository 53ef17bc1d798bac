"""Retrieval quality on human-judged data: the project's search stages against a textbook peer.

    python -m benchmarks.relevance [--data ../shared/datasets]
        [--datasets crowdflower,multicpr,epqa] [--embedder packaged:all-minilm-l6-v2]
        [--reranker [label=]spec,...] [--rerank-depth 20 | 10,20,50]
        [--weights lexical=1,semantic=1]
        [--limit-queries N] [--embedding-cache bench-results/embedding-cache|none]
        [--out bench-results/relevance.json]

Each data set is indexed once with the project's indexer into an `EmbeddedStore` (a temporary
folder); every project system searches that one index. Document vectors are kept per model in
``--embedding-cache``, so a later run embeds only texts it has not seen (query vectors are always
computed: their time is part of the latency measured):

1. ``bm25``: the store's BM25 alone (the product's field boosts),
2. ``dense``: the query embedding and the store's kNN alone (with the product's similarity floor
   where the product applies it),
3. ``hybrid``: `HybridSearch` (one store call for both, RRF), no re-ranker,
4. ``hybrid+<label>@<depth>``: the hybrid's fused list of the same query, re-ranked over its top
   ``<depth>`` by one of the ``--reranker`` list (``nanoranker``, a CrossEncoder folder or hub
   name; ``label=spec`` names its column, e.g. ``adapted=/tmp/cf/reranker``), for every
   re-ranker and every ``--rerank-depth``; with one re-ranker at one depth the one system keeps
   its earlier name ``hybrid+rerank``,
5. ``textbook``: Haystack's documented hybrid pipeline (`benchmarks.textbook`) with the same
   embedder and the same unit texts.

The hybrid runs once per query; each re-ranked system is the product's own re-rank step
(`DocumentReranker`, as `HybridSearch` runs it) applied to that fused list at its depth, so its
ranking is exactly the product's (`Systems.check` compares it with `HybridSearch.search`/
`passages` with that re-ranker and depth on the first query of each task, and fails if they
differ). Each depth is a separate scorer call on that depth's texts, timed on its own: its
``rerank`` stage is what re-ranking at that depth adds (the scorer, plus re-ordering the list),
and its other stages and ``total`` are the hybrid's of the same query plus that time. (Scoring
the deepest depth once and re-ordering shallower depths from those scores would save scorer
time, but could not say what a shallower depth costs; the cost of honesty is scoring
``sum(depths)`` texts per query and re-ranker instead of ``max(depths)``.) Multi-CPR's table
and the trade-off table show what each re-ranker does to Chinese queries.

Tasks and metrics follow ``shared/datasets/README.md``: CrowdFlower product search over the
whole catalog (nDCG@10, Recall@100), Multi-CPR Chinese product search (MRR@10, Recall@10), and
ePQA passage ranking, per product (the question's own product's page, candidates shuffled with a
fixed seed) and pooled over all passages (lower bounds: most of a pooled top 10 is unjudged).
Coverage and diversity describe the result lists; per-stage latency is median/p95/p99 over the
queries. Prints one table per task, a latency table (in parts when it has many systems) and,
with re-rankers, each re-ranked system's main metric against the hybrid's with the time added;
writes JSON with the machine and the settings (``rerankers``: label -> spec; ``rerank_depths``;
``reranker`` and ``rerank_depth`` as before for one re-ranker at one depth).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar, cast

from haystack import Document
from tqdm import tqdm

from app.logs import configure_logging
from app.services import (
    RerankScope,
    build_embedder,
    build_reranker,
    configure_threads,
    rerank_scope,
    search_config,
)
from app.settings import Settings
from benchmarks import metrics
from benchmarks.datasets import (
    SPLITS,
    Item,
    JudgedQuery,
    PageProduct,
    PageQASet,
    ProductSearchSet,
    Question,
    load_crowdflower,
    load_epqa,
    load_multicpr,
    split,
)
from benchmarks.embedders import MemoEmbedder, add_embedding_cache
from benchmarks.textbook import TextbookHybrid, documents_from_units, product_filter
from indexer.indexer import IndexReport, index_catalog
from indexer.reader import Row
from indexer.units import passage_units, product_unit
from retrieval import text as text_analysis
from retrieval.components.reranker import DocumentReranker
from retrieval.embedders.base import Embedder
from retrieval.rankers.base import Reranker
from retrieval.schema import PASSAGE_KINDS, Filters, Product, QAPair, Review, Unit, UnitKind
from retrieval.search import HybridSearch, SearchConfig
from retrieval.stores.embedded import EmbeddedStore

logger = logging.getLogger("benchmarks.relevance")

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "datasets"
DATASETS = ("crowdflower", "multicpr", "epqa")
STAGES = ("embedding", "bm25", "knn", "bm25+knn", "fusion", "rerank", "other", "total")
WARM_UP_QUERIES = 3


# -- systems -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """What one task searches: unit kinds, filters, depth, and the textbook's filter."""

    kinds: tuple[UnitKind, ...]
    top_k: int
    filters: Filters | None = None
    similarity_floor: bool = True
    textbook_filters: dict[str, Any] | None = None
    product_search: bool = False


def reranked_names(labels: Sequence[str], depths: Sequence[int]) -> list[str]:
    """The re-ranked systems' names: ``hybrid+rerank`` for one re-ranker at one depth (the
    name earlier results use), else ``hybrid+<label>@<depth>`` per re-ranker and depth."""
    if len(labels) == 1 and len(depths) == 1:
        return ["hybrid+rerank"]
    return [f"hybrid+{label}@{depth}" for label in labels for depth in depths]


@dataclass(frozen=True)
class Reranking:
    """One re-ranked system: the product's re-rank step at one depth over the hybrid's list."""

    name: str
    ranker: DocumentReranker
    # The product's search with this re-ranker and depth: what `Systems.check` compares with.
    reference: HybridSearch


@dataclass
class Systems:
    """The systems over one data set's index."""

    store: EmbeddedStore
    embedder: Embedder
    config: SearchConfig
    hybrid: HybridSearch
    rerankings: list[Reranking]
    textbook: TextbookHybrid | None

    def run(self, query: str, scope: Scope) -> dict[str, tuple[list[str], dict[str, float]]]:
        """Every system's ranked unit ids (best first) and stage timings in ms for ``query``."""
        out: dict[str, tuple[list[str], dict[str, float]]] = {}
        start = time.perf_counter()
        lexical = self.store.lexical(
            query,
            kinds=scope.kinds,
            filters=scope.filters,
            top_k=scope.top_k,
            boosts=self.config.boosts,
        )
        took = _ms(start)
        out["bm25"] = ([h.unit.id for h in lexical], {"bm25": took, "total": took})

        start = time.perf_counter()
        vector = self.embedder.embed_query(query)
        embedded = time.perf_counter()
        semantic = self.store.semantic(
            vector, kinds=scope.kinds, filters=scope.filters, top_k=scope.top_k
        )
        floor = self.config.min_similarity
        if floor is not None and scope.similarity_floor:
            semantic = [h for h in semantic if h.score >= floor]
        out["dense"] = (
            [h.unit.id for h in semantic],
            {"embedding": _ms(start, embedded), "knn": _ms(embedded), "total": _ms(start)},
        )

        fused, stages = self._fused(query, scope)
        to_ids = self._ids(fused, scope)
        out["hybrid"] = (to_ids(fused), stages)
        for reranking in self.rerankings:
            # The product's re-rank step on the same fused list: its own scorer call on this
            # depth's texts, so the time is what this depth adds.
            if reranking.reference.config.reranks(query, passages=not scope.product_search):
                documents, took = _rerank(reranking.ranker, query, fused)
            else:  # routed around this re-ranker, as the product's search does
                documents, took = fused, 0.0
            out[reranking.name] = (
                to_ids(documents),
                {**stages, "rerank": took, "total": stages["total"] + took},
            )
        if self.textbook is not None:
            result = self.textbook.search(query, top_k=scope.top_k, filters=scope.textbook_filters)
            out["textbook"] = ([d.id for d in result.documents], result.timings_ms)
        return {name: (ids, _with_other(t)) for name, (ids, t) in out.items()}

    def _fused(self, query: str, scope: Scope) -> tuple[list[Document], dict[str, float]]:
        """The hybrid's fused list, unranked, and its stage timings."""
        # HybridSearch has no public timed search that returns the fused list: `search` and
        # `passages` call `_run` exactly like this (`check` compares them once per task).
        if scope.product_search:
            documents, timings, _ = self.hybrid._run(
                query,
                kinds=("product",),
                filters=Filters(),
                top_k=max(self.config.candidates, scope.top_k),  # `search`'s window, page 1
                rerank=False,
            )
        else:
            documents, timings, _ = self.hybrid._run(
                query,
                kinds=scope.kinds,
                filters=scope.filters,
                top_k=scope.top_k,
                rerank=False,
                similarity_floor=scope.similarity_floor,
            )
        return documents, {
            "embedding": timings["embedder"],
            "bm25+knn": timings["retriever"],
            "fusion": timings["joiner"],
            "rerank": timings["ranker"],
            "total": timings["total"],
        }

    def _ids(self, fused: list[Document], scope: Scope) -> Callable[[list[Document]], list[str]]:
        """How a ranking of ``fused`` becomes the ids the task scores, as the product shows it."""
        if not scope.product_search:
            return lambda documents: [d.id for d in documents]
        # `search`: the page's products that the store returns (looked up once per query).
        known = self.store.get_products(list({d.meta["product_id"] for d in fused}))
        return lambda documents: [
            d.meta["product_id"] for d in documents[: scope.top_k] if d.meta["product_id"] in known
        ]

    def check(self, query: str, scope: Scope) -> None:
        """Fail loudly if a ranking `run` derives differs from the product's search."""
        fused, _ = self._fused(query, scope)
        to_ids = self._ids(fused, scope)
        pairs = [("hybrid", to_ids(fused), _reference(self.hybrid, query, scope, rerank=False))]
        for reranking in self.rerankings:
            routed = reranking.reference.config.reranks(query, passages=not scope.product_search)
            derived = to_ids(_rerank(reranking.ranker, query, fused)[0] if routed else fused)
            public = _reference(reranking.reference, query, scope, rerank=True)
            pairs.append((reranking.name, derived, public))
        for name, derived, public in pairs:
            if derived != public:
                msg = f"{name}: the benchmark's ranking differs from the product's search for "
                msg += f"{query!r}: {derived} {public}"
                raise RuntimeError(msg)


def _rerank(
    ranker: DocumentReranker, query: str, fused: list[Document]
) -> tuple[list[Document], float]:
    """The re-ranked list and the step's time in ms (`DocumentReranker` returns plain objects)."""
    out = ranker.run(query=query, documents=fused)
    return cast("list[Document]", out["documents"]), cast("float", out["took_ms"])


def _reference(search: HybridSearch, query: str, scope: Scope, *, rerank: bool) -> list[str]:
    """The product's own ranking for ``scope``: `search`, `passages`, or (pooled passages,
    which no public method searches with the similarity floor) its pipeline run."""
    if scope.product_search:
        return [h.product.id for h in search.search(query, size=scope.top_k, rerank=rerank).hits]
    filters = scope.filters
    one_product = filters.product_ids if filters is not None else None
    if (
        one_product is not None
        and len(one_product) == 1
        and filters == Filters(product_ids=one_product)
        and scope.kinds == PASSAGE_KINDS
        and not scope.similarity_floor
        and scope.top_k >= search.config.passage_candidates
    ):
        hits = search.passages(one_product[0], query, top_k=scope.top_k, rerank=rerank)
        return [h.unit_id for h in hits]
    documents, _, _ = search._run(
        query,
        kinds=scope.kinds,
        filters=scope.filters,
        top_k=scope.top_k,
        rerank=rerank and search.reranks(query, passages=True),  # as `passages` routes
        similarity_floor=scope.similarity_floor,
    )
    return [d.id for d in documents]


def _ms(start: float, end: float | None = None) -> float:
    return ((end if end is not None else time.perf_counter()) - start) * 1000


def _with_other(timings: dict[str, float]) -> dict[str, float]:
    """Adds ``other``: the part of the total no stage accounts for (pipeline overhead)."""
    parts = sum(v for k, v in timings.items() if k != "total")
    return {**timings, "other": max(timings["total"] - parts, 0.0)}


def _systems_for(
    store: EmbeddedStore, options: Options, textbook: TextbookHybrid | None
) -> Systems:
    """The systems a run's options ask for, over ``store``."""
    return _build_systems(
        store,
        options.embedder,
        options.rerankers,
        options.depths,
        options.config,
        textbook,
        options.scopes,
    )


def _build_systems(
    store: EmbeddedStore,
    embedder: Embedder,
    rerankers: Mapping[str, Reranker],
    depths: Sequence[int],
    config: SearchConfig,
    textbook: TextbookHybrid | None,
    scopes: Mapping[str, RerankScope] | None = None,
) -> Systems:
    hybrid = HybridSearch(store, embedder, None, config)
    hybrid.warm_up()
    names = iter(reranked_names(list(rerankers), depths))
    rerankings = []
    for label, reranker in rerankers.items():
        scope = (scopes or {}).get(label, RerankScope(cjk=True, passages=True))
        for depth in depths:
            ranker = DocumentReranker(
                reranker,
                depth=depth,
                hybrid_weight=config.rerank_hybrid_weight,
                rrf_k=config.rrf_k,
            )
            ranker.warm_up()
            own = replace(
                config, rerank_depth=depth, rerank_cjk=scope.cjk, rerank_passages=scope.passages
            )
            reference = HybridSearch(store, embedder, reranker, own)
            rerankings.append(Reranking(next(names), ranker, reference))
    return Systems(store, embedder, config, hybrid, rerankings, textbook)


# -- running a task ------------------------------------------------------------------------


@dataclass
class TaskRun:
    """Per system: each query's ranked ids and stage timings."""

    ranked: dict[str, list[list[str]]] = field(default_factory=dict)
    raw: dict[str, list[list[str]]] = field(default_factory=dict)
    timings: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    seconds: float = 0.0


def _run_task(
    systems: Systems,
    queries: Sequence[tuple[str, Scope]],
    *,
    label: str,
    progress: bool,
    translate: Callable[[list[str]], list[str]] = lambda ids: ids,
) -> TaskRun:
    """Run every query through every system (interleaved, so load affects all alike)."""
    if queries:
        systems.check(*queries[0])
    for query, scope in queries[:WARM_UP_QUERIES]:  # first-call costs stay out of the timings
        systems.run(query, scope)
    run = TaskRun()
    started = time.perf_counter()
    bar = tqdm(
        queries,
        desc=label,
        unit=" queries",
        disable=not progress,
        mininterval=0.5 if sys.stderr.isatty() else 15.0,
    )
    for query, scope in bar:
        for name, (ids, timings) in systems.run(query, scope).items():
            run.ranked.setdefault(name, []).append(translate(ids))
            run.raw.setdefault(name, []).append(ids)
            run.timings.setdefault(name, []).append(timings)
    bar.close()
    run.seconds = time.perf_counter() - started
    logger.info("%s: %d queries in %.1f s", label, len(queries), run.seconds)
    return run


def _latency(run: TaskRun) -> dict[str, dict[str, dict[str, float]]]:
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name, samples in run.timings.items():
        out[name] = {
            stage: metrics.latency_summary([t[stage] for t in samples])
            for stage in STAGES
            if any(stage in t for t in samples)
        }
    return out


MetricFn = Callable[[list[str], int], float | None]  # (ranked, query index) -> value


def _score(
    run: TaskRun, per_query: Mapping[str, MetricFn], n_queries: int
) -> tuple[dict[str, dict[str, float | None]], dict[str, int]]:
    """Mean of each per-query metric per system, and how many queries each mean is over."""
    values: dict[str, dict[str, float | None]] = {}
    scored: dict[str, int] = {}
    for name, lists in run.ranked.items():
        values[name] = {}
        for metric, fn in per_query.items():
            per = [fn(lists[i], i) for i in range(n_queries)]
            values[name][metric] = _round(metrics.mean(per))
            scored[metric] = metrics.count_defined(per)
    return values, scored


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


# -- product search: CrowdFlower, Multi-CPR ------------------------------------------------


def as_product(item: Item) -> Product:
    """The catalog item as a project product."""
    return Product(
        id=item.id,
        title=item.title,
        description=item.description,
        brand=item.brand,
        category=item.category,
    )


def index_products(
    name: str, products: list[Product], store: EmbeddedStore, embedder: Embedder, progress: bool
) -> IndexReport:
    """Index ``products`` into ``store`` with the project's indexer."""
    rows = (Row(name, i, p) for i, p in enumerate(products, start=1))
    report = index_catalog(rows, store, embedder, progress=progress, batch_size=256)
    if report.skipped:
        logger.warning("%s: %d products skipped: %s", name, report.skipped, report.errors[:5])
    return report


def _index_textbook(
    textbook: TextbookHybrid | None, units: list[Any], progress: bool
) -> dict[str, Any] | None:
    if textbook is None:
        return None
    start = time.perf_counter()
    textbook.warm_up()
    documents = textbook.index(documents_from_units(units), progress=progress)
    return {"documents": documents, "seconds": round(time.perf_counter() - start, 2)}


def _product_search(
    data: ProductSearchSet,
    options: Options,
    folder: Path,
) -> dict[str, Any]:
    started = time.perf_counter()
    products = [as_product(item) for item in data.items]
    embedder = MemoEmbedder(options.embedder, cache_dir=options.embedding_cache)
    store = EmbeddedStore(folder / data.name)
    report = index_products(data.name, products, store, embedder, options.progress)
    textbook = _textbook(options, embedder)
    textbook_index = _index_textbook(
        textbook, [product_unit(p) for p in products], options.progress
    )
    embedder.flush()
    systems = _systems_for(store, options, textbook)
    queries = options.select(data.queries, lambda q: q.text)
    scope = product_scope(data.name, options.config)
    depth = scope.top_k
    run = _run_task(
        systems,
        [(q.text, scope) for q in queries],
        label=f"{data.name} product search",
        progress=options.progress,
    )
    by_id = {item.id: item for item in data.items}
    per_query = product_metrics(data, queries)
    values, scored = _score(run, per_query, len(queries))
    for name, lists in run.ranked.items():
        values[name]["coverage@10"] = _round(metrics.coverage(lists, len(data.items), 10))
        values[name]["brands@10"] = _round(
            metrics.diversity([[by_id[i].brand for i in ids[:10]] for ids in lists])
        )
        values[name]["categories@10"] = _round(
            metrics.diversity([[by_id[i].category for i in ids[:10]] for ids in lists])
        )
    return {
        "catalog": {"products": len(products), "units": report.units},
        "queries": len(queries),
        "index": {
            "project": {
                "seconds": round(report.seconds, 2),
                "products": report.indexed,
                "units": report.units,
                "embedded": report.embedded,
                "computed": embedder.embedded,
            },
            "textbook": textbook_index,
        },
        "tasks": {
            "product_search": {
                "description": "search each query over the whole catalog",
                "queries": len(queries),
                "depth": depth,
                "coverage_ceiling": _round(min(1.0, 10 * len(queries) / max(len(data.items), 1))),
                "scored_queries": scored,
                "metrics": values,
                "latency_ms": _latency(run),
                "seconds": round(run.seconds, 2),
            }
        },
        "seconds": round(time.perf_counter() - started, 2),
    }


def product_scope(name: str, config: SearchConfig) -> Scope:
    """What product search over data set ``name`` searches: the whole catalog, at least as deep
    as the task's metrics look (CrowdFlower's Recall@100)."""
    depth = max(config.candidates, 100 if name == "crowdflower" else 10)
    return Scope(kinds=("product",), top_k=depth, product_search=True)


def product_metrics(data: ProductSearchSet, queries: list[JudgedQuery]) -> dict[str, MetricFn]:
    """The task's per-query metrics over ranked product ids, the main one first."""
    relevant = [q.relevant(data.relevant_gain) for q in queries]
    if data.name == "crowdflower":
        return {
            "nDCG@10": lambda ids, i: metrics.ndcg_at_k(ids, queries[i].gains, 10),
            "Recall@100": lambda ids, i: metrics.recall_at_k(ids, relevant[i], 100),
        }
    return {
        "MRR@10": lambda ids, i: metrics.reciprocal_rank_at_k(ids, relevant[i], 10),
        "Recall@10": lambda ids, i: metrics.recall_at_k(ids, relevant[i], 10),
    }


# -- ePQA: passages of a product, and pooled ------------------------------------------------


def _page_product(page: PageProduct) -> tuple[Product, list[str]]:
    """The product whose passage units are exactly the page's passages, and each unit's text.

    Community Q&A candidates ("answer Question: question") become Q&A pairs; every other
    candidate (reviews, attributes, bullets, description sentences) becomes a review-shaped
    passage with its text unchanged, so that each judged candidate is one searchable unit
    (the product's single description and attribute passages would merge them).
    """
    reviews: list[str] = []
    pairs: list[tuple[str, str, str]] = []
    for passage in page.passages:
        answer, marker, question = passage.text.partition("Question:")
        if passage.source == "cqa" and marker and answer.strip() and question.strip():
            pairs.append((question.strip(), answer.strip(), passage.text))
        else:
            reviews.append(passage.text)
    product = Product(
        id=page.id,
        title=page.title,
        reviews=[Review(text=t) for t in reviews],
        qa=[QAPair(question=q, answer=a) for q, a, _ in pairs],
    )
    return product, reviews + [t for _, _, t in pairs]


@dataclass
class EpqaCatalog:
    """The ePQA pages as products, and each passage unit's text and product."""

    products: list[Product]
    unit_text: dict[str, str]
    unit_product: dict[str, str]
    units: list[Unit]

    def to_texts(self, ids: list[str]) -> list[str]:
        """A ranked list of unit ids as the distinct passage texts it shows (what is judged)."""
        return list(dict.fromkeys(self.unit_text[i] for i in ids if i in self.unit_text))


def epqa_catalog(data: PageQASet) -> EpqaCatalog:
    """Every page as a product whose passage units are exactly the page's passages."""
    catalog = EpqaCatalog([], {}, {}, [])
    for page in data.products:
        product, texts = _page_product(page)
        units = passage_units(product)
        if [u.kind for u in units] != ["review"] * len(product.reviews) + ["qa"] * len(product.qa):
            msg = f"unexpected passage units for {page.id}: {[u.kind for u in units]}"
            raise RuntimeError(msg)
        for unit, passage_text in zip(units, texts, strict=True):
            catalog.unit_text[unit.id] = passage_text
            catalog.unit_product[unit.id] = page.id
        catalog.units.extend(units)
        catalog.products.append(product)
    return catalog


def epqa_scopes(question: Question, config: SearchConfig) -> dict[str, Scope]:
    """The question's scope in each ePQA task: its own product's passages (as
    `HybridSearch.passages`), and all passages (as a passage search without a filter)."""
    return {
        "per_product": Scope(
            kinds=PASSAGE_KINDS,
            top_k=config.passage_candidates,
            filters=Filters(product_ids=[question.product_id]),
            similarity_floor=False,  # as HybridSearch.passages
            textbook_filters=product_filter(question.product_id),
        ),
        "pooled": Scope(kinds=PASSAGE_KINDS, top_k=config.candidates),
    }


EPQA_TASKS = {
    "per_product": "rank the passages of the question's own product",
    "pooled": "rank all passages",
}


def _epqa(data: PageQASet, options: Options, folder: Path) -> dict[str, Any]:
    started = time.perf_counter()
    catalog = epqa_catalog(data)
    products, unit_text, unit_product = catalog.products, catalog.unit_text, catalog.unit_product
    embedder = MemoEmbedder(options.embedder, cache_dir=options.embedding_cache)
    store = EmbeddedStore(folder / data.name)
    report = index_products(data.name, products, store, embedder, options.progress)
    textbook = _textbook(options, embedder)
    textbook_index = _index_textbook(textbook, catalog.units, options.progress)
    embedder.flush()
    systems = _systems_for(store, options, textbook)
    questions = options.select(data.questions, lambda q: q.text)
    distinct_texts = len(set(unit_text.values()))
    scopes = [epqa_scopes(q, options.config) for q in questions]
    tasks: dict[str, Any] = {}
    for task, description in EPQA_TASKS.items():
        queries = [(q.text, s[task]) for q, s in zip(questions, scopes, strict=True)]
        run = _run_task(
            systems,
            queries,
            label=f"epqa {task}",
            progress=options.progress,
            translate=catalog.to_texts,
        )
        values, scored = _score(run, epqa_metrics(questions), len(questions))
        if task == "pooled":
            for name, lists in run.ranked.items():
                values[name]["coverage@10"] = _round(metrics.coverage(lists, distinct_texts, 10))
                values[name]["products@10"] = _round(
                    metrics.diversity(
                        [_top_products(ids, unit_text, unit_product) for ids in run.raw[name]]
                    )
                )
        tasks[task] = {
            "description": description,
            "queries": len(questions),
            "depth": queries[0][1].top_k if queries else 0,
            "coverage_ceiling": _round(min(1.0, 10 * len(questions) / max(distinct_texts, 1)))
            if task == "pooled"
            else None,
            "scored_queries": scored,
            "metrics": values,
            "latency_ms": _latency(run),
            "seconds": round(run.seconds, 2),
        }
    return {
        "catalog": {
            "products": len(products),
            "passages": len(unit_text),
            "distinct_passage_texts": distinct_texts,
            "skipped_empty_candidates": data.skipped_empty,
            "shuffle_seed": data.seed,
        },
        "queries": len(questions),
        "index": {
            "project": {
                "seconds": round(report.seconds, 2),
                "products": report.indexed,
                "units": report.units,
                "embedded": report.embedded,
                "computed": embedder.embedded,
            },
            "textbook": textbook_index,
        },
        "tasks": tasks,
        "seconds": round(time.perf_counter() - started, 2),
    }


def epqa_metrics(questions: list[Question]) -> dict[str, MetricFn]:
    """The per-query metrics over ranked passage texts, the main one first."""
    gains = [{t: float(label) for t, label in q.labels.items()} for q in questions]
    answers = [{t for t, label in q.labels.items() if label == 2} for q in questions]
    judged = [set(q.labels) for q in questions]
    return {
        "nDCG@10": lambda ids, i: metrics.ndcg_at_k(ids, gains[i], 10),
        "MRR@10": lambda ids, i: metrics.reciprocal_rank_at_k(ids, answers[i], 10),
        "judged@10": lambda ids, i: metrics.judged_share_at_k(ids, judged[i], 10),
    }


def _top_products(
    ids: list[str], unit_text: Mapping[str, str], unit_product: Mapping[str, str], k: int = 10
) -> list[str | None]:
    """The products of the first ``k`` distinct passage texts of a pooled result list."""
    seen: set[str] = set()
    owners: list[str | None] = []
    for unit_id in ids:
        text = unit_text[unit_id]
        if text not in seen:
            seen.add(text)
            owners.append(unit_product[unit_id])
            if len(owners) == k:
                break
    return owners


# -- the command -----------------------------------------------------------------------------


Q = TypeVar("Q")


@dataclass
class Options:
    """Everything a run needs, built once from the command line."""

    settings: Settings
    embedder: Embedder
    rerankers: dict[str, Reranker]  # label -> re-ranker
    scopes: dict[str, RerankScope]  # label -> what it re-ranks, as the app decides
    depths: list[int]
    config: SearchConfig
    limit_queries: int | None
    progress: bool
    textbook: bool
    textbook_reembed: bool
    embedding_cache: Path | None = None
    split: str = "all"  # "dev", "test" (`benchmarks.datasets.split`) or "all"

    def select(self, queries: Sequence[Q], text: Callable[[Q], str]) -> list[Q]:
        """The queries of the chosen split, then the first ``limit_queries`` of them."""
        chosen = [q for q in queries if self.split in ("all", split(text(q)))]
        return chosen[: self.limit_queries or None]


def _textbook(options: Options, shared: MemoEmbedder) -> TextbookHybrid | None:
    if not options.textbook:
        return None
    return TextbookHybrid(options.embedder if options.textbook_reembed else shared)


def _weights(value: str) -> dict[str, float]:
    weights: dict[str, float] = {}
    for part in value.split(","):
        name, sep, number = part.partition("=")
        name = name.strip()
        if not sep or name not in ("lexical", "semantic", "semantic_cjk"):
            msg = f"expected lexical=W,semantic=W[,semantic_cjk=W], got '{value}'"
            raise argparse.ArgumentTypeError(msg)
        try:
            weights[name] = float(number)
        except ValueError:
            msg = f"weight of {name} is not a number: '{number}'"
            raise argparse.ArgumentTypeError(msg) from None
        if weights[name] < 0:
            msg = f"weight of {name} must not be negative"
            raise argparse.ArgumentTypeError(msg)
    return weights


LABEL = re.compile(r"[\w.-]+")


def _default_label(spec: str) -> str:
    """A re-ranker's column name: ``nanoranker``, or a model's last path or hub name part."""
    return spec.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]


def _rerankers(value: str) -> dict[str, str]:
    """``[label=]spec,...`` as label -> spec; ``none`` entries (the plain hybrid) left out."""
    specs: dict[str, str] = {}
    for part in (p.strip() for p in value.split(",")):
        if not part:
            continue
        label, sep, spec = part.partition("=")
        if sep and LABEL.fullmatch(label.strip()):
            label, spec = label.strip(), spec.strip()
        else:
            label, spec = _default_label(part), part
        if spec.casefold() in ("", "none", "off"):
            continue
        if not LABEL.fullmatch(label):
            msg = f"give '{part}' a short name: label={part}"
            raise argparse.ArgumentTypeError(msg)
        if label in specs:
            msg = f"two re-rankers named '{label}': give them labels, e.g. a={part}"
            raise argparse.ArgumentTypeError(msg)
        specs[label] = spec
    return specs


def _depths(value: str) -> list[int]:
    """Comma-separated positive re-rank depths, ascending, each once."""
    try:
        depths = sorted({int(part) for part in value.split(",") if part.strip()})
    except ValueError:
        msg = f"expected depths such as 10,20,50, got '{value}'"
        raise argparse.ArgumentTypeError(msg) from None
    if not depths or depths[0] < 1:
        msg = f"re-rank depths must be at least 1, got '{value}'"
        raise argparse.ArgumentTypeError(msg)
    return depths


def _datasets(value: str) -> list[str]:
    names = [n.strip() for n in value.split(",") if n.strip()]
    unknown = [n for n in names if n not in DATASETS]
    if unknown or not names:
        msg = f"unknown data set(s) {unknown}; choose from {', '.join(DATASETS)}"
        raise argparse.ArgumentTypeError(msg)
    return names


def positive_int(value: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        msg = f"expected a positive whole number, got '{value}'"
        raise argparse.ArgumentTypeError(msg)
    return number


def add_data_options(parser: argparse.ArgumentParser) -> None:
    """The options the relevance and tuning commands share: the data, the data sets and the
    embedder."""
    parser.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help="the shared datasets folder"
    )
    parser.add_argument("--datasets", type=_datasets, default=list(DATASETS))
    parser.add_argument(
        "--embedder",
        default="packaged:all-minilm-l6-v2",
        help="as SHOPGUIDE_EMBEDDER: packaged:<name>, a model folder or hub name, hashing-<dim>",
    )
    parser.add_argument(
        "--embedder-runtime",
        choices=("torch", "onnx", "onnx-int8"),
        default=None,
        help="as SHOPGUIDE_EMBEDDER_RUNTIME (default: that setting, onnx-int8 unless set)",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.relevance",
        description=(__doc__ or "").splitlines()[0],
    )
    add_data_options(parser)
    parser.add_argument(
        "--reranker",
        type=_rerankers,
        default="nanoranker",
        help="comma-separated, each as SHOPGUIDE_RERANKER (nanoranker, none, or a CrossEncoder "
        "folder or hub name), optionally label=spec for its column, e.g. "
        "adapted=/tmp/cf/reranker,nanoranker",
    )
    parser.add_argument(
        "--rerank-depth",
        type=_depths,
        default="20",
        help="comma-separated depths, e.g. 10,20,50: each re-ranker runs at each depth",
    )
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=None,
        help="as SHOPGUIDE_TORCH_THREADS: torch and BLAS threads (default: 1, as in the API)",
    )
    parser.add_argument(
        "--weights",
        type=_weights,
        default={"lexical": 1.0, "semantic": 1.0},
        help="RRF weights of the project's hybrid, e.g. lexical=1,semantic=1; semantic_cjk=W "
        "sets the vector weight for Chinese queries (default: the app's rule)",
    )
    parser.add_argument(
        "--min-similarity",
        default="default",
        help="the semantic similarity floor (a cosine, or 'none'); default: the app's setting",
    )
    parser.add_argument(
        "--limit-queries", type=int, default=None, help="only the first N queries of each task"
    )
    parser.add_argument(
        "--split",
        choices=("all", *SPLITS),
        default="all",
        help="only the dev or the test queries (the parity of the SHA-1 of the query text, as "
        "benchmarks.tune splits them): choose settings on dev, report test",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the ePQA shuffle")
    parser.add_argument("--no-textbook", action="store_true", help="skip the Haystack peer")
    parser.add_argument(
        "--textbook-reembed",
        action="store_true",
        help="let the textbook peer embed the catalog itself (default: reuse the vectors the "
        "project's indexer computed with the same model)",
    )
    add_embedding_cache(parser)
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("bench-results/relevance.json"))
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {
        "embedder": args.embedder,
        **({"embedder_runtime": args.embedder_runtime} if args.embedder_runtime else {}),
        "rerank_depth": max(args.rerank_depth),  # validates the deepest; each is >= 1
        "lexical_weight": args.weights.get("lexical", 1.0),
        "semantic_weight": args.weights.get("semantic", 1.0),
        "semantic_weight_cjk": args.weights.get("semantic_cjk"),
        # one-language catalogs, indexed without a cross-lingual embedder (where its list
        # would be empty): benchmarks.crosslingual measures it
        "crosslingual_weight": 0.0,
        "torch_threads": args.torch_threads,
    }
    floor = args.min_similarity.casefold()
    if floor in ("none", "off"):
        overrides["semantic_min_similarity"] = None
    elif floor != "default":
        overrides["semantic_min_similarity"] = float(floor)
    return Settings(**overrides)


def _build_rerankers(
    settings: Settings, specs: Mapping[str, str]
) -> tuple[dict[str, Reranker], dict[str, RerankScope]]:
    """Each re-ranker as the app builds it from SHOPGUIDE_RERANKER, by label, and what the app
    would re-rank with it (`rerank_scope`: SHOPGUIDE_RERANK_CJK=true measures Chinese too)."""
    rerankers: dict[str, Reranker] = {}
    scopes: dict[str, RerankScope] = {}
    for label, spec in specs.items():
        own = settings.model_copy(update={"reranker": spec})
        reranker = build_reranker(own)
        if reranker is not None:  # `_rerankers` leaves out what builds none
            rerankers[label] = reranker
            scopes[label] = rerank_scope(own)
    return rerankers, scopes


def machine() -> dict[str, Any]:
    """The machine a benchmark runs on, for its JSON."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
    }
    if hasattr(os, "sched_getaffinity"):
        info["cpus_usable"] = len(os.sched_getaffinity(0))
    if hasattr(os, "getloadavg"):
        info["load_average_at_start"] = [round(x, 2) for x in os.getloadavg()]
    if "torch" in sys.modules:
        info["torch_threads"] = sys.modules["torch"].get_num_threads()
    from threadpoolctl import threadpool_info

    info["blas_threads"] = [pool["num_threads"] for pool in threadpool_info()]
    return info


def git_state() -> dict[str, Any] | None:
    """The commit measured and whether tracked files differ from it; None outside git."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(  # noqa: S603 - fixed arguments
                ["git", *args],  # noqa: S607 - git from PATH
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return None
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status)}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; 0 on success."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = _settings(args)
    except ValueError as exc:  # a bad --min-similarity, or a setting out of its range
        parser.error(str(exc))
    configure_logging("INFO", json_lines=False)
    started = time.perf_counter()
    config = search_config(settings)
    progress = not args.no_progress
    configure_threads(settings, serving=True)  # as the API does at start-up
    embedder = build_embedder(settings, serving=True)
    rerankers, scopes = _build_rerankers(settings, args.reranker)
    depths: list[int] = args.rerank_depth
    load_start = time.perf_counter()
    embedder.warm_up()
    for reranker in rerankers.values():
        reranker.warm_up()
    text_analysis.warm_up()
    options = Options(
        settings=settings,
        embedder=embedder,
        rerankers=rerankers,
        scopes=scopes,
        depths=depths,
        config=config,
        limit_queries=args.limit_queries,
        progress=progress,
        split=args.split,
        textbook=not args.no_textbook,
        textbook_reembed=args.textbook_reembed,
        embedding_cache=args.embedding_cache,
    )
    result: dict[str, Any] = {
        "benchmark": "relevance",
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "git": git_state(),
        "settings": {
            "data": str(args.data),
            "datasets": args.datasets,
            "embedder": embedder.name,
            "embedder_runtime": settings.embedder_runtime,
            "embedding_dim": embedder.dim,
            # one re-ranker and one depth: the name and the depth; several: the names, no depth
            "reranker": ", ".join(r.name for r in rerankers.values()) or None,
            "rerank_depth": depths[0] if len(depths) == 1 else None,
            "rerankers": dict(args.reranker),  # label -> spec
            "rerank_depths": depths,
            "rerank_scopes": {label: asdict(scope) for label, scope in scopes.items()},
            "rerank_hybrid_weight": config.rerank_hybrid_weight,
            "weights": dict(config.weights),
            "cjk_weights": dict(config.cjk_weights) if config.cjk_weights is not None else None,
            "rrf_k": config.rrf_k,
            "candidates": config.candidates,
            "passage_candidates": config.passage_candidates,
            "min_similarity": config.min_similarity,
            "boosts": dict(config.boosts),
            "limit_queries": args.limit_queries,
            "split": args.split,
            "torch_threads": settings.torch_threads,
            "embedding_cache": str(args.embedding_cache) if args.embedding_cache else None,
            "epqa_seed": args.seed,
            "textbook": None
            if args.no_textbook
            else {
                "pipeline": "InMemoryBM25Retriever + InMemoryEmbeddingRetriever -> "
                "DocumentJoiner(reciprocal_rank_fusion), InMemoryDocumentStore defaults",
                "embedder": f"the project's {embedder.name} behind Haystack's embedder "
                "interface (haystack-ai 3.4 core has no SentenceTransformers embedders)",
                "document_vectors": "embedded by the peer"
                if args.textbook_reembed
                else "shared with the project's index (same model, same texts)",
            },
        },
        "model_load_s": round(time.perf_counter() - load_start, 2),
        "systems": ["bm25", "dense", "hybrid"]
        + reranked_names(list(rerankers), depths)
        + ([] if args.no_textbook else ["textbook"]),
        "datasets": {},
    }
    loaders: dict[str, Callable[[], Any]] = {
        "crowdflower": lambda: load_crowdflower(args.data),
        "multicpr": lambda: load_multicpr(args.data),
        "epqa": lambda: load_epqa(args.data, seed=args.seed),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="relevance-") as folder:
        for name in args.datasets:
            logger.info("%s: loading from %s", name, args.data)
            data = loaders[name]()
            if isinstance(data, PageQASet):
                result["datasets"][name] = _epqa(data, options, Path(folder))
            else:
                result["datasets"][name] = _product_search(data, options, Path(folder))
            _write(result, started, args.out)  # what is done so far survives an interruption
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


def _cell(value: float | None, width: int) -> str:
    return f"{'n/a':>{width}}" if value is None else f"{value:>{width}.3f}"


def _catalog_line(catalog: Mapping[str, Any]) -> str:
    parts = [f"{catalog['products']} products"]
    if "passages" in catalog:
        parts.append(
            f"{catalog['passages']} passages ({catalog['distinct_passage_texts']} distinct texts)"
        )
    elif "units" in catalog:
        parts.append(f"{catalog['units']} units")
    return ", ".join(parts)


def _print(result: dict[str, Any]) -> None:
    out = sys.stdout.write
    s = result["settings"]
    rerankers = ", ".join(f"{label}={spec}" for label, spec in s["rerankers"].items())
    depths = ", ".join(str(d) for d in s["rerank_depths"])
    out(
        f"embedder {s['embedder']}, re-rankers {rerankers or 'none'} (depth {depths})\n"
        f"weights {s['weights']} (Chinese queries {s['cjk_weights']}), "
        f"min similarity {s['min_similarity']}, queries {s['limit_queries'] or 'all'}, "
        f"split {s.get('split', 'all')}\n"
    )
    name_width = max([15, *(len(n) + 1 for n in result["systems"])])
    for name, dataset in result["datasets"].items():
        index = dataset["index"]
        textbook = index["textbook"]
        out(
            f"\n== {name}: {_catalog_line(dataset['catalog'])}; "
            f"index {index['project']['seconds']} s"
            + (f", textbook index {textbook['seconds']} s" if textbook else "")
            + f"; {dataset['seconds']} s in all\n"
        )
        for task_name, task in dataset["tasks"].items():
            columns = list(next(iter(task["metrics"].values())))
            scored = ", ".join(f"{m} over {n}" for m, n in task["scored_queries"].items())
            if task.get("coverage_ceiling") is not None:
                scored += f"; coverage@10 can reach {task['coverage_ceiling']}"
            out(
                f"\n{name} / {task_name}: {task['queries']} queries, "
                f"{task['seconds']} s ({scored})\n"
            )
            widths = [max(len(c), 7) for c in columns]
            header = "".join(f" {c:>{w}}" for c, w in zip(columns, widths, strict=True))
            out(f"{'system':<{name_width}}{header}\n")
            for system, values in task["metrics"].items():
                row = "".join(
                    f" {_cell(values[c], w)}" for c, w in zip(columns, widths, strict=True)
                )
                out(f"{system:<{name_width}}{row}\n")
    _print_latency(result)
    _print_tradeoff(result)
    machine = result["machine"]
    out(
        f"\nwall time {result['wall_s']} s on {machine['cpu_count']} CPUs; load average "
        f"{machine.get('load_average_at_start', ['?'])[0]} at start, "
        f"{machine.get('load_average_at_end', ['?'])[0]} at end\n"
    )


LINE = 160  # the widest line a table prints; wider latency tables print in parts


def _print_latency(result: dict[str, Any]) -> None:
    out = sys.stdout.write
    out("\nlatency, ms: median / p95 / p99 over the queries\n")
    label = 30
    for name, dataset in result["datasets"].items():
        for task_name, task in dataset["tasks"].items():
            latency = task["latency_ms"]
            systems = list(latency)
            width = max([20, *(len(s) for s in systems)])
            per_part = max(1, (LINE - label) // (width + 1))
            for first in range(0, len(systems), per_part):
                part = systems[first : first + per_part]
                title = f"{name} / {task_name}"
                out(f"\n{title:<{label}}" + "".join(f" {s:>{width}}" for s in part) + "\n")
                for stage in STAGES:
                    if not any(stage in latency[s] for s in part):
                        continue
                    cells = []
                    for system in part:
                        stats = latency[system].get(stage)
                        cells.append(
                            f"{stats['median']:.1f}/{stats['p95']:.1f}/{stats['p99']:.1f}"
                            if stats and stats.get("n")
                            else "-"
                        )
                    out(f"{'  ' + stage:<{label}}" + "".join(f" {c:>{width}}" for c in cells))
                    out("\n")


def _print_tradeoff(result: dict[str, Any]) -> None:
    """Per task, each re-ranked system's main metric against the hybrid's and the time that
    re-ranking added."""
    reranked = [s for s in result["systems"] if s.startswith("hybrid+")]
    if not reranked:
        return
    out = sys.stdout.write
    width = max([15, *(len(s) + 1 for s in reranked)])
    out("\nre-ranking: the main metric against the hybrid's, and ms added (median / p95)\n")
    for name, dataset in result["datasets"].items():
        for task_name, task in dataset["tasks"].items():
            main_metric = next(iter(task["metrics"]["hybrid"]))
            base = task["metrics"]["hybrid"][main_metric]
            out(f"\n{name} / {task_name}\n")
            out(f"{'system':<{width}} {main_metric:>9} {'change':>9}  added ms\n")
            out(f"{'hybrid':<{width}} {_cell(base, 9)}\n")
            for system in reranked:
                value = task["metrics"][system][main_metric]
                change = None if value is None or base is None else value - base
                stats = task["latency_ms"][system].get("rerank", {})
                added = f"{stats['median']:.1f} / {stats['p95']:.1f}" if stats.get("n") else "-"
                delta = "n/a" if change is None else f"{change:+.3f}"
                out(f"{system:<{width}} {_cell(value, 9)} {delta:>9}  {added}\n")


if __name__ == "__main__":
    sys.exit(main())
