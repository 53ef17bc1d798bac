"""The adapt-reranker job: read the catalog, index it if the store does not hold it yet, build
synthetic queries, mine negatives with the shop's own hybrid search, train a cross-encoder, and
write a manifest.

The output folder holds the model (loadable by `CrossEncoderReranker`), ``pairs.jsonl`` (the
training pairs, so that a resumed run trains on exactly the same data), ``training.json`` (the
manifest) and, until training completes, ``checkpoints/``; an ONNX export of an earlier model
there (``shopguide export-reranker``) is removed when training starts.
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from generation.llm.base import LLM
from indexer.indexer import index_catalog
from indexer.reader import Row, RowError, read_catalog
from retrieval import text
from retrieval.embedders.base import Embedder
from retrieval.rankers.manifest import MANIFEST
from retrieval.rankers.onnx_cross_encoder import ONNX_FP32, ONNX_INT8
from retrieval.schema import Product
from retrieval.search import HybridSearch
from retrieval.stores.base import DocumentStore
from training.cross_encoder import (
    CHECKPOINTS,
    TrainingOptions,
    TrainingPair,
    TrainingResult,
    build_pairs,
    read_pairs,
    train_cross_encoder,
    write_pairs,
)
from training.errors import TrainingError
from training.llm_queries import llm_queries
from training.negatives import NegativeMiner
from training.queries import QA_TEMPLATE, cap_queries, generate_queries

if TYPE_CHECKING:
    from transformers import TrainerCallback

logger = logging.getLogger(__name__)

PAIRS = "pairs.jsonl"
_FORMAT = 1


@dataclass(frozen=True)
class AdaptOptions:
    """What to build and how to train."""

    queries_per_product: int = 4
    # Template queries kept (drawn at random); LLM queries come on top. Mining takes tens of
    # milliseconds a query and training about 0.1 s a pair on 2 cores: 5000 queries make
    # about 30,000 pairs, roughly an hour a pass.
    max_queries: int | None = 5000
    llm_queries: int = 0
    depth: int = 30
    hard_negatives: int = 4
    random_negatives: int = 2
    training: TrainingOptions = field(default_factory=TrainingOptions)

    def __post_init__(self) -> None:
        if self.queries_per_product < 1 or self.llm_queries < 0:
            msg = "queries_per_product must be at least 1 and llm_queries not negative"
            raise ValueError(msg)
        if self.max_queries is not None and self.max_queries < 1:
            msg = f"max_queries must be at least 1, got {self.max_queries}"
            raise ValueError(msg)


@dataclass
class AdaptReport:
    """What an adapt-reranker run did."""

    out_dir: Path
    products: int
    skipped: int
    errors: list[str]
    indexed: int | None  # products this run indexed; None: the store already held the catalog
    queries: dict[str, int]  # by template
    pairs: dict[str, int]  # total, positive, negative, hard, random
    training: TrainingResult
    wall_s: float
    reused_pairs: bool  # --resume read the pairs of the earlier run
    manifest: dict[str, Any]


def file_sha256(path: Path) -> str:
    """The sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_products(catalog: Path) -> tuple[dict[str, Product], list[Row], list[str]]:
    """The catalog's valid products (a repeated id: the later row wins, as in the indexer),
    its valid rows, and the reasons bad rows were skipped."""
    products: dict[str, Product] = {}
    rows: list[Row] = []
    errors: list[str] = []
    for row in read_catalog(catalog):
        if isinstance(row, RowError):
            logger.warning("skipped %s", row)
            errors.append(str(row))
            continue
        rows.append(row)
        products[row.product.id] = row.product
    return products, rows, errors


def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def store_holds(store: DocumentStore, embedder: Embedder, products: dict[str, Product]) -> bool:
    """Whether the store holds every product as the catalog has it, embedded by ``embedder``."""
    stats = store.stats()
    if stats.products < len(products) or stats.embedding_model != embedder.name:
        return False
    for chunk in _chunks(list(products), 500):
        stored = store.get_products(chunk)
        if any(stored.get(pid) != products[pid] for pid in chunk):
            return False
    return True


def pair_counts(pairs: Sequence[TrainingPair]) -> tuple[dict[str, int], dict[str, int]]:
    """Queries by template (one positive pair each) and pairs by source."""
    by_source = Counter(p.source for p in pairs)
    queries = Counter(p.template for p in pairs if p.source == "positive")
    positives = by_source["positive"]
    counts = {
        "total": len(pairs),
        "positive": positives,
        "negative": len(pairs) - positives,
        "hard": by_source["hard"],
        "random": by_source["random"],
    }
    return dict(sorted(queries.items())), counts


def _versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in ("shopguide", "sentence-transformers", "transformers", "torch", "datasets"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def _check_out_dir(out_dir: Path, *, resume: bool) -> dict[str, Any] | None:
    """The earlier run's manifest (with ``resume``); refuses to overwrite a run without it."""
    manifest = out_dir / MANIFEST
    earlier = [p for p in (manifest, out_dir / PAIRS, out_dir / CHECKPOINTS) if p.exists()]
    if earlier and not resume:
        msg = (
            f"{out_dir} already holds a training run ({earlier[0].name}): pass --resume to go "
            "on with it, or choose another folder"
        )
        raise TrainingError(msg)
    if out_dir.exists() and not out_dir.is_dir():
        msg = f"{out_dir} is not a folder"
        raise TrainingError(msg)
    if resume and manifest.is_file():
        data: dict[str, Any] = json.loads(manifest.read_text(encoding="utf-8"))
        if data.get("status") == "complete":
            msg = f"the run in {out_dir} is complete: nothing to resume"
            raise TrainingError(msg)
        return data
    return None


def adapt_reranker(
    catalog: Path,
    out_dir: Path,
    *,
    store: DocumentStore,
    embedder: Embedder,
    search: HybridSearch,
    options: AdaptOptions | None = None,
    llm: LLM | None = None,
    resume: bool = False,
    progress: bool = True,
    callbacks: Sequence[TrainerCallback] = (),
) -> AdaptReport:
    """Adapt a cross-encoder to ``catalog`` (see the module docstring); ``search`` must search
    ``store`` with ``embedder``. With ``resume``, an interrupted or budget-stopped run in
    ``out_dir`` goes on from its pairs and last checkpoint."""
    started = time.perf_counter()
    options = options or AdaptOptions()
    seed = options.training.seed
    catalog = Path(catalog)
    if not catalog.is_file():
        msg = f"catalog not found: {catalog}"
        raise FileNotFoundError(msg)
    earlier = _check_out_dir(out_dir, resume=resume)
    sha = file_sha256(catalog)
    pairs_path = out_dir / PAIRS

    if earlier is not None and pairs_path.is_file():
        if earlier["catalog"]["sha256"] != sha:
            msg = (
                f"{catalog} changed since the run in {out_dir} started: start a new run in "
                "another folder"
            )
            raise TrainingError(msg)
        pairs = read_pairs(pairs_path)
        data = {k: earlier[k] for k in ("catalog", "index", "queries", "negatives", "pairs")}
        logger.info("resuming: %d pairs from %s", len(pairs), pairs_path)
        products_count, skipped = data["catalog"]["products"], data["catalog"]["skipped"]
        errors: list[str] = []
        indexed: int | None = None
        reused = True
    else:
        products, rows, read_errors = read_products(catalog)
        errors = read_errors
        if not products:
            msg = f"{catalog}: no valid product to build queries from ({len(errors)} bad rows)"
            raise TrainingError(msg)
        indexed = _ensure_indexed(store, embedder, products, rows, progress=progress)
        queries = cap_queries(
            generate_queries(products.values(), per_product=options.queries_per_product, seed=seed),
            options.max_queries,
            seed=seed,
        )
        llm_info: dict[str, int] = {"products": 0, "failures": 0}
        if llm is not None and options.llm_queries:
            extra, stats = llm_queries(
                list(products.values()),
                llm,
                count=options.llm_queries,
                seed=seed,
                progress=progress,
            )
            queries.extend(extra)
            llm_info = {"products": stats.products, "failures": stats.failures}
        miner = NegativeMiner(
            search,
            products,
            depth=options.depth,
            hard=options.hard_negatives,
            random_count=options.random_negatives,
            seed=seed,
        )
        pairs = build_pairs(queries, miner, progress=progress)
        out_dir.mkdir(parents=True, exist_ok=True)
        write_pairs(pairs_path, pairs)
        by_template, counts = pair_counts(pairs)
        positives = [p for p in pairs if p.source == "positive"]
        stats_now = store.stats()
        data = {
            "catalog": {
                "path": str(catalog.resolve()),
                "sha256": sha,
                "products": len(products),
                "skipped": len(errors),
            },
            "index": {
                "store": stats_now.backend,
                "version": stats_now.version,
                "embedder": embedder.name,
                "indexed_by_this_run": indexed or 0,
            },
            "queries": {
                "total": sum(by_template.values()),
                "by_template": by_template,
                # what the model is trained for: `app.services.rerank_scope` reads these
                "passages": sum(p.template == QA_TEMPLATE for p in positives),
                "cjk": sum(text.has_cjk(p.query) for p in positives),
                "per_product": options.queries_per_product,
                "max_queries": options.max_queries,
                "llm": llm_info,
            },
            "negatives": {
                "depth": options.depth,
                "hard_per_query": options.hard_negatives,
                "random_per_query": options.random_negatives,
            },
            "pairs": counts,
        }
        products_count, skipped, reused = len(products), len(errors), False

    runs: list[dict[str, Any]] = list(earlier.get("runs", [])) if earlier else []
    base = {
        "format": _FORMAT,
        "base_model": options.training.base_model,
        "seed": seed,
        **data,
        "versions": _versions(),
    }
    _write_json(out_dir / MANIFEST, {**base, "status": "training", "runs": runs})
    for name in (ONNX_FP32, ONNX_INT8):  # an export of the model this run replaces
        if (out_dir / name).is_file():
            logger.info("removing %s: it no longer matches the model (export again)", name)
            (out_dir / name).unlink()

    result = train_cross_encoder(
        pairs, out_dir, options.training, resume=resume, progress=progress, callbacks=callbacks
    )
    wall_s = time.perf_counter() - started
    training = {
        **{k: v for k, v in asdict(options.training).items() if k != "base_model"},
        "steps": result.steps,
        "max_steps": result.max_steps,
        "stopped_by": result.stopped_by,
        "loss": result.loss,
    }
    runs.append(
        {
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "resumed_from_step": result.resumed_from,
            "steps": result.steps,
            "train_s": round(result.seconds, 1),
            "wall_s": round(wall_s, 1),
            "pairs_per_s": round(result.pairs_per_second, 2),
        }
    )
    manifest = {
        **base,
        "status": "complete" if result.complete else "stopped",
        "training": training,
        "train_s": round(sum(r["train_s"] for r in runs), 1),
        "wall_s": round(sum(r["wall_s"] for r in runs), 1),
        "runs": runs,
    }
    _write_json(out_dir / MANIFEST, manifest)
    return AdaptReport(
        out_dir=out_dir,
        products=products_count,
        skipped=skipped,
        errors=errors,
        indexed=indexed,
        queries=dict(data["queries"]["by_template"]),
        pairs=dict(data["pairs"]),
        training=result,
        wall_s=wall_s,
        reused_pairs=reused,
        manifest=manifest,
    )


def _ensure_indexed(
    store: DocumentStore,
    embedder: Embedder,
    products: dict[str, Product],
    rows: list[Row],
    *,
    progress: bool,
) -> int | None:
    """Index the catalog (add or replace, never prune) unless the store already holds it;
    how many products were indexed, or None when nothing needed it."""
    if store_holds(store, embedder, products):
        logger.info("the %s store already holds the catalog", store.stats().backend)
        return None
    logger.info("indexing the catalog: negatives are mined from the shop's own search")
    report = index_catalog(rows, store, embedder, progress=progress)
    if not report.ok:
        msg = f"indexing the catalog failed: {'; '.join(report.errors[:3])}"
        raise TrainingError(msg)
    return report.indexed
