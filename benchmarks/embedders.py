"""Embedder wrappers the benchmarks share, their on-disk vector cache, and a comparison of the
embedder's runtimes (torch, ONNX fp32, ONNX int8):

    python -m benchmarks.embedders [--embedder packaged:all-minilm-l6-v2]
        [--runtimes torch,onnx,onnx-int8] [--products 2000] [--rounds 3]
        [--catalog ../shared/datasets/crowdflower/train.csv] [--out bench-results/embedders.json]

Each runtime runs in a fresh process, as the app builds it: documents (the units of the first
``--products`` CrowdFlower products, one `embed_documents` call per 256 products, as the
indexer makes them) with indexing's threads (every core), then every CrowdFlower query, one
`embed_query` at a time and ``--rounds`` times over, with serving's threads (one; the first
round's first 20 queries warm up and are not timed). Reported: documents/s, query latency
(median/p95/p99 ms) and, against the first runtime, the cosine of each document and query
vector and the overlap of each query's dense top 10 over those documents.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import re
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from retrieval.embedders.base import Embedder

logger = logging.getLogger(__name__)

CACHE_FORMAT = 1
FLUSH_EVERY = 4096


def text_key(text: str) -> bytes:
    """The cache key of a text: the SHA-1 digest of its UTF-8 (20 bytes)."""
    return hashlib.sha1(text.encode("utf-8"), usedforsecurity=False).digest()


def model_folder(model: str) -> str:
    """A file-system-safe folder name for a model name, unique per name."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", model).strip("._") or "model"
    digest = hashlib.sha1(model.encode("utf-8"), usedforsecurity=False).hexdigest()[:8]
    return f"{safe[:80]}-{digest}"


class VectorCache:
    """Vectors of one model and one key space (``documents`` or ``queries``) in one file.

    The file ``<folder>/<space>.v1.npz`` holds ``keys`` (n x 20 bytes: SHA-1 of each text),
    ``vectors`` (n x dim float32) and ``model`` (the model name). It is read at the first
    lookup and rewritten whole, through a temporary file and ``os.replace``, by `flush`; a
    reader never sees half a file. A file that cannot be read, or holds another model or
    another vector size, is logged and ignored (the cache starts empty and overwrites it at the
    next flush). Two processes filling one cache at once do not corrupt it; the last to flush
    wins and the other's new vectors are computed again next time. Vectors are trusted as the
    model's: delete the folder when an embedder's code changes what it returns.
    """

    def __init__(self, folder: Path, *, model: str, dim: int, space: str) -> None:
        self.path = folder / f"{space}.v{CACHE_FORMAT}.npz"
        self.model = model
        self.dim = dim
        self._rows: dict[bytes, np.ndarray] | None = None
        self._pending = 0

    def __len__(self) -> int:
        return len(self._load())

    @property
    def pending(self) -> int:
        """Vectors added since the last flush."""
        return self._pending

    def get(self, key: bytes) -> np.ndarray | None:
        """The vector stored under ``key``, or None."""
        return self._load().get(key)

    def put(self, key: bytes, vector: np.ndarray) -> None:
        """Remember ``vector`` under ``key`` (written at the next `flush`)."""
        rows = self._load()
        if key not in rows:
            self._pending += 1
        rows[key] = np.asarray(vector, np.float32)

    def flush(self) -> bool:
        """Write the file if anything is new; False (logged) when it cannot be written."""
        if self._rows is None or not self._pending:
            return True
        keys = list(self._rows)
        key_matrix = np.frombuffer(b"".join(keys), np.uint8).reshape(len(keys), 20)
        vectors = (
            np.vstack([self._rows[k] for k in keys]).astype(np.float32)
            if keys
            else np.zeros((0, self.dim), np.float32)
        )
        temporary: str | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(
                dir=self.path.parent, prefix=self.path.name, suffix=".tmp", delete=False
            ) as f:
                temporary = f.name
                np.savez(f, keys=key_matrix, vectors=vectors, model=np.array(self.model))
            os.chmod(temporary, 0o644)  # a temporary file is private to its owner
            os.replace(temporary, self.path)
        except OSError as exc:
            logger.warning("cannot write the embedding cache %s: %s", self.path, exc)
            if temporary is not None:
                Path(temporary).unlink(missing_ok=True)
            return False
        logger.info("embedding cache %s: %d vectors written", self.path, len(keys))
        self._pending = 0
        return True

    def _load(self) -> dict[bytes, np.ndarray]:
        if self._rows is None:
            self._rows = self._read()
        return self._rows

    def _read(self) -> dict[bytes, np.ndarray]:
        if not self.path.exists():
            return {}
        try:
            with np.load(self.path, allow_pickle=False) as data:
                keys = np.asarray(data["keys"])
                vectors = np.asarray(data["vectors"])
                model = str(data["model"])
        except Exception as exc:  # noqa: BLE001 - any unreadable file: start afresh
            logger.warning("ignoring the unreadable embedding cache %s: %r", self.path, exc)
            return {}
        problem = None
        if model != self.model:
            problem = f"it holds model {model!r}, not {self.model!r}"
        elif vectors.ndim != 2 or vectors.shape[1] != self.dim:
            problem = f"its vectors have shape {vectors.shape}, the model gives {self.dim}"
        elif keys.dtype != np.uint8 or keys.shape != (len(vectors), 20):
            problem = f"its keys have shape {keys.shape} for {len(vectors)} vectors"
        elif vectors.dtype != np.float32 or not np.isfinite(vectors).all():
            problem = "its vectors are not finite float32"
        if problem is not None:
            logger.warning("ignoring the embedding cache %s: %s", self.path, problem)
            return {}
        logger.info("embedding cache %s: %d vectors read", self.path, len(keys))
        return {bytes(k): v for k, v in zip(keys, vectors, strict=True)}


class MemoEmbedder:
    """An `Embedder` that embeds each distinct document text once and remembers its vector, so
    several indexes (stores, the textbook peer) share one embedding pass.

    With ``cache_dir`` the vectors also persist there, per model (see `VectorCache`), so a
    later run embeds only texts it has not seen; call `flush` when done (it is also written
    every ``flush_every`` new vectors). Queries are embedded afresh unless ``memo_queries``,
    which keeps them (on disk too, apart from documents). ``embedded`` counts the document
    texts the model computed, ``queries_embedded`` the queries; with ``log_every_s`` progress
    is logged, also when no terminal shows a bar.
    """

    def __init__(
        self,
        embedder: Embedder,
        *,
        log_every_s: float | None = None,
        cache_dir: Path | None = None,
        memo_queries: bool = False,
        flush_every: int = FLUSH_EVERY,
    ) -> None:
        self.embedder = embedder
        self.log_every_s = log_every_s
        self.cache_dir = cache_dir
        self.memo_queries = memo_queries
        self.flush_every = flush_every
        self.embedded = 0
        self.queries_embedded = 0
        self._vectors: dict[bytes, np.ndarray] = {}
        self._queries: dict[bytes, np.ndarray] = {}
        self._caches: dict[str, VectorCache] = {}
        self._started = self._shown = time.perf_counter()

    @property
    def name(self) -> str:
        """The wrapped model's name."""
        return self.embedder.name

    @property
    def dim(self) -> int:
        """The wrapped model's vector size."""
        return self.embedder.dim

    def warm_up(self) -> None:
        """Load the wrapped model."""
        self.embedder.warm_up()
        self._started = self._shown = time.perf_counter()

    def embed_documents(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """Vectors of texts seen before come from memory or the cache; the rest from the
        model."""
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        keys = [text_key(t) for t in texts]
        cache = self._cache("documents")
        missing: dict[bytes, str] = {}
        for key, text in zip(keys, texts, strict=True):
            if key in self._vectors or key in missing:
                continue
            cached = cache.get(key) if cache is not None else None
            if cached is not None:
                self._vectors[key] = cached
            else:
                missing[key] = text
        if missing:
            vectors = np.asarray(
                self.embedder.embed_documents(list(missing.values()), progress=progress),
                np.float32,
            )
            for key, vector in zip(missing, vectors, strict=True):
                self._vectors[key] = vector
                if cache is not None:
                    cache.put(key, vector)
            self.embedded += len(missing)
            self._log_progress()
            if cache is not None and cache.pending >= self.flush_every:
                cache.flush()
        return np.vstack([self._vectors[k] for k in keys])

    def embed_query(self, text: str) -> np.ndarray:
        """The wrapped model's query vector (remembered with ``memo_queries``)."""
        if not self.memo_queries:
            self.queries_embedded += 1
            return np.asarray(self.embedder.embed_query(text), np.float32)
        key = text_key(text)
        vector = self._queries.get(key)
        if vector is not None:
            return vector.copy()
        cache = self._cache("queries")
        vector = cache.get(key) if cache is not None else None
        if vector is None:
            vector = np.asarray(self.embedder.embed_query(text), np.float32)
            self.queries_embedded += 1
            if cache is not None:
                cache.put(key, vector)
                if cache.pending >= self.flush_every:
                    cache.flush()
        self._queries[key] = vector
        return vector.copy()

    def flush(self) -> None:
        """Write what the on-disk cache does not hold yet (nothing without ``cache_dir``)."""
        for cache in self._caches.values():
            cache.flush()

    def _cache(self, space: str) -> VectorCache | None:
        if self.cache_dir is None:
            return None
        cache = self._caches.get(space)
        if cache is None:
            folder = self.cache_dir / model_folder(self.name)
            cache = self._caches[space] = VectorCache(
                folder, model=self.name, dim=self.dim, space=space
            )
        return cache

    def _log_progress(self) -> None:
        now = time.perf_counter()
        if self.log_every_s is None or now - self._shown < self.log_every_s:
            return
        self._shown = now
        rate = self.embedded / max(now - self._started, 1e-9)
        logger.info("%d texts embedded, %.1f/s", self.embedded, rate)


DEFAULT_EMBEDDING_CACHE = Path("bench-results/embedding-cache")


def embedding_cache(value: str) -> Path | None:
    """``--embedding-cache``: a folder, or none/off."""
    return None if value.strip().casefold() in ("", "none", "off") else Path(value)


def add_embedding_cache(parser: argparse.ArgumentParser) -> None:
    """The ``--embedding-cache`` option the benchmarks share."""
    parser.add_argument(
        "--embedding-cache",
        type=embedding_cache,
        default=DEFAULT_EMBEDDING_CACHE,
        help="folder of document vectors kept per model between runs, or 'none' "
        f"(default: {DEFAULT_EMBEDDING_CACHE})",
    )


# -- the runtime comparison (python -m benchmarks.embedders) ------------------------------------

RUNTIMES = ("torch", "onnx", "onnx-int8")


def _texts(catalog: Path, products: int) -> tuple[list[list[str]], list[str]]:
    """Unit texts per batch of 256 products (as the indexer embeds them), and the queries."""
    from benchmarks import crowdflower_catalog as cf
    from indexer.units import product_units
    from retrieval.schema import Product

    data = cf.load(catalog)
    batches: list[list[str]] = []
    for start in range(0, min(products, len(data.products)), 256):
        rows = data.products[start : min(start + 256, products)]
        batches.append([u.text for r in rows for u in product_units(Product.model_validate(r))])
    return batches, list(data.queries)


def _run_runtime(job: dict[str, object]) -> dict[str, object]:
    from app.services import build_embedder, configure_threads
    from app.settings import Settings
    from benchmarks.metrics import latency_summary

    runtime = str(job["runtime"])
    settings = Settings(embedder=str(job["embedder"]), embedder_runtime=runtime)  # type: ignore[arg-type]
    batches, queries = _texts(Path(str(job["catalog"])), int(str(job["products"])))
    configure_threads(settings)  # indexing: the libraries' threads
    started = time.perf_counter()
    documents = build_embedder(settings)
    documents.warm_up()
    load_s = time.perf_counter() - started
    documents.embed_documents(batches[0][:64])  # first-run allocations
    started = time.perf_counter()
    doc_vectors = np.vstack([documents.embed_documents(batch) for batch in batches])
    doc_s = time.perf_counter() - started
    configure_threads(settings, serving=True)  # serving: one thread
    serving = build_embedder(settings, serving=True)
    serving.warm_up()
    for query in queries[:20]:
        serving.embed_query(query)
    timings: list[float] = []
    query_vectors = np.zeros((len(queries), serving.dim), np.float32)
    for _ in range(int(str(job["rounds"]))):
        for i, query in enumerate(queries):
            start = time.perf_counter()
            query_vectors[i] = serving.embed_query(query)
            timings.append((time.perf_counter() - start) * 1000)
    np.savez(str(job["vectors"]), documents=doc_vectors, queries=query_vectors)
    return {
        "runtime": runtime,
        "name": documents.name,
        "load_s": round(load_s, 2),
        "documents": len(doc_vectors),
        "document_s": round(doc_s, 2),
        "documents_per_s": round(len(doc_vectors) / doc_s, 1),
        "query_ms": latency_summary(timings),
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }


def _agreement(reference: Path, other: Path) -> dict[str, float]:
    with np.load(reference) as a, np.load(other) as b:
        ref_docs, ref_queries = a["documents"], a["queries"]
        docs, queries = b["documents"], b["queries"]
    doc_cos = (ref_docs * docs).sum(axis=1)
    query_cos = (ref_queries * queries).sum(axis=1)
    k = min(10, len(ref_docs))
    ref_top = np.argsort(-(ref_queries @ ref_docs.T), axis=1)[:, :k]
    top = np.argsort(-(queries @ docs.T), axis=1)[:, :k]
    overlap = [len(set(x) & set(y)) / k for x, y in zip(ref_top, top, strict=True)]
    return {
        "document_cos_min": round(float(doc_cos.min()), 5),
        "document_cos_mean": round(float(doc_cos.mean()), 5),
        "query_cos_min": round(float(query_cos.min()), 5),
        "query_cos_mean": round(float(query_cos.mean()), 5),
        "top10_overlap": round(float(np.mean(overlap)), 4),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Compare the runtimes (or, with ``--job``, measure one)."""
    import json
    import platform
    import subprocess
    import sys

    from benchmarks import crowdflower_catalog as cf

    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.embedders", description="the embedder's runtimes compared"
    )
    parser.add_argument("--embedder", default="packaged:all-minilm-l6-v2")
    parser.add_argument("--runtimes", default=",".join(RUNTIMES))
    parser.add_argument("--products", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--catalog", type=Path, default=cf.DEFAULT_TRAIN_CSV)
    parser.add_argument("--out", type=Path, default=Path("bench-results/embedders.json"))
    parser.add_argument("--job", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.job is not None:
        from app.logs import configure_logging

        configure_logging("WARNING", json_lines=False)
        job = json.loads(args.job.read_text(encoding="utf-8"))
        Path(job["result"]).write_text(json.dumps(_run_runtime(job)), encoding="utf-8")
        return 0
    runtimes = [r.strip() for r in args.runtimes.split(",") if r.strip()]
    unknown = set(runtimes) - set(RUNTIMES)
    if not runtimes or unknown:
        parser.error(f"--runtimes takes {', '.join(RUNTIMES)}, not {sorted(unknown)}")
    result: dict[str, object] = {
        "benchmark": "embedders",
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        },
        "settings": {
            "embedder": args.embedder,
            "runtimes": runtimes,
            "products": args.products,
            "rounds": args.rounds,
            "catalog": str(args.catalog),
        },
    }
    runs: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="bench-embedders-") as tmp:
        folder = Path(tmp)
        for runtime in runtimes:
            job = {
                "runtime": runtime,
                "embedder": args.embedder,
                "catalog": str(args.catalog),
                "products": args.products,
                "rounds": args.rounds,
                "vectors": str(folder / f"{runtime}.npz"),
                "result": str(folder / f"{runtime}.json"),
            }
            job_path = folder / f"{runtime}.job.json"
            job_path.write_text(json.dumps(job), encoding="utf-8")
            sys.stderr.write(f"-> {runtime}\n")
            subprocess.run(  # noqa: S603 - our own module, same interpreter
                [sys.executable, "-m", "benchmarks.embedders", "--job", str(job_path)],
                check=True,
                stdin=subprocess.DEVNULL,
            )
            run = json.loads(Path(job["result"]).read_text(encoding="utf-8"))
            run["against"] = runtimes[0]
            run.update(_agreement(folder / f"{runtimes[0]}.npz", folder / f"{runtime}.npz"))
            runs.append(run)
    result["runs"] = runs
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    out = sys.stdout.write
    out(
        f"{'runtime':<10} {'docs':>6} {'docs/s':>8} {'query ms p50/p95/p99':>22} "
        f"{'doc cos min/mean':>18} {'query cos min':>13} {'top10':>6}  name\n"
    )
    for run in runs:
        q = run["query_ms"]
        assert isinstance(q, dict)
        out(
            f"{run['runtime']:<10} {run['documents']:>6} {run['documents_per_s']:>8.1f} "
            f"{q['median']:>8.2f}/{q['p95']:.2f}/{q['p99']:.2f}      "
            f"{run['document_cos_min']:.4f}/{run['document_cos_mean']:.5f} "
            f"{run['query_cos_min']:>13.4f} {run['top10_overlap']:>6.3f}  {run['name']}\n"
        )
    out(f"\nwritten to {args.out}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
