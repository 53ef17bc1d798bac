"""Embedder wrappers the benchmarks share, and their on-disk vector cache."""

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
