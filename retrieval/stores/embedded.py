"""The embedded document store: in-process BM25 and vector search, persisted to a folder.

Searches read an immutable snapshot; a commit builds a new snapshot, writes it to a new
generation folder and then switches the ``CURRENT`` pointer with an atomic rename, so a crash
mid-write leaves the previous index in place and a restart loads without re-embedding.
Another process's commit (the indexer CLI while the API runs) is picked up by `refresh`.

The vectors are memory-mapped read-only (``vectors.npy``, `_map_vectors`): processes serving
one index (API workers) share them through the page cache instead of holding a copy each.
Nothing writes into them (searches only read; a commit builds new arrays), and a generation's
files are never rewritten: a commit writes a new folder, renames it into place and removes the
old one, whose mapping stays valid (unlinked, not truncated) until its snapshot is dropped.
"""

from __future__ import annotations

import json
import logging
import math
import os
import pickle
import shutil
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from retrieval.schema import Filters, Product, Unit, UnitKind, split_category
from retrieval.stores.base import (
    CJK_CHARS,
    CommitReport,
    KnownVectors,
    ProductRecord,
    ScoredUnit,
    StoreError,
    StoreStats,
    WriteFailure,
    cross_vectors_problem,
    cross_write_model,
    normalized,
    unit_script,
    vectors_problem,
)
from retrieval.text import Script, cjk_chars, tokenize

logger = logging.getLogger(__name__)

_KINDS: tuple[UnitKind, ...] = ("product", "description", "attributes", "review", "qa")
_KIND_CODE = {kind: code for code, kind in enumerate(_KINDS)}
_FORMAT = 1
_BM25_K1 = 1.2
_BM25_B = 0.75
_CHARS = ".chars"  # the sub-field of a field's single Chinese characters

TermCounts = dict[str, dict[str, int]]  # field -> term -> frequency


@dataclass(frozen=True)
class _Postings:
    units: np.ndarray  # sorted unit indices holding the term
    freqs: np.ndarray  # term frequency in each of those units


class _Snapshot:
    """One immutable state of the index."""

    def __init__(
        self,
        *,
        version: str,
        embedding_model: str | None,
        dim: int,
        products: dict[str, Product],
        units: list[Unit],
        vectors: np.ndarray,
        terms: list[TermCounts],
        cross_model: str | None = None,
        cross_vectors: np.ndarray | None = None,
    ) -> None:
        self.version = version
        self.embedding_model = embedding_model
        self.dim = dim
        self.products = products
        self.units = units
        self.vectors = vectors
        self.terms = terms
        # the cross-lingual space: both or neither
        self.cross_model = cross_model if cross_vectors is not None else None
        self.cross_vectors = cross_vectors if cross_model is not None else None
        self.unit_index = {unit.id: i for i, unit in enumerate(units)}
        self.by_product: dict[str, list[int]] = {}
        for i, unit in enumerate(units):
            self.by_product.setdefault(unit.product_id, []).append(i)
        self.brands = sorted({p.brand for p in products.values() if p.brand})
        self._build_facets()
        self._build_postings()

    def _build_facets(self) -> None:
        self.kind = np.fromiter((_KIND_CODE[u.kind] for u in self.units), np.int8, len(self.units))
        self.cjk = np.fromiter(
            (unit_script(u) == "cjk" for u in self.units), np.bool_, len(self.units)
        )
        owners = [self.products[u.product_id] for u in self.units]
        self.price = np.array([p.price if p.price is not None else np.nan for p in owners], float)
        self.rating = np.array(
            [p.rating if p.rating is not None else np.nan for p in owners], float
        )
        self.stock = np.array(
            [-1 if p.in_stock is None else int(p.in_stock) for p in owners], np.int8
        )
        self.brand_codes: dict[str, int] = {}
        self.brand = np.array(
            [
                self.brand_codes.setdefault((p.brand or "").casefold(), len(self.brand_codes))
                for p in owners
            ],
            np.int32,
        )
        self.category_codes: dict[tuple[str, ...], int] = {}
        self.category = np.array(
            [
                self.category_codes.setdefault(
                    tuple(level.casefold() for level in p.category_path), len(self.category_codes)
                )
                for p in owners
            ],
            np.int32,
        )

    def _build_postings(self) -> None:
        n = len(self.units)
        collected: dict[str, dict[str, tuple[list[int], list[int]]]] = {}
        lengths: dict[str, np.ndarray] = {}
        for i, counts in enumerate(self.terms):
            # characters are derived, not stored: indexes written before them load as they are
            for field_name, terms in [*counts.items(), *_char_terms(self.units[i]).items()]:
                if field_name not in lengths:
                    lengths[field_name] = np.zeros(n, np.float32)
                lengths[field_name][i] = sum(terms.values())
                field_postings = collected.setdefault(field_name, {})
                for term, freq in terms.items():
                    entry = field_postings.setdefault(term, ([], []))
                    entry[0].append(i)
                    entry[1].append(freq)
        self.postings = {
            field_name: {
                term: _Postings(np.array(ids, np.int64), np.array(freqs, np.float32))
                for term, (ids, freqs) in terms.items()
            }
            for field_name, terms in collected.items()
        }
        self.field_lengths = lengths
        self.field_docs = {f: int(np.count_nonzero(length)) for f, length in lengths.items()}
        self.avg_length = {
            f: float(length.sum()) / max(self.field_docs[f], 1) for f, length in lengths.items()
        }

    # -- filters ---------------------------------------------------------------------------

    def mask(self, kinds: Sequence[UnitKind], filters: Filters | None) -> np.ndarray:
        """Which units pass the kind and product filters."""
        mask = np.isin(self.kind, [_KIND_CODE[k] for k in kinds])
        if filters is None or filters.is_empty():
            return mask
        if filters.product_ids is not None:
            allowed = np.zeros(len(self.units), bool)
            for pid in filters.product_ids:
                allowed[self.by_product.get(pid, [])] = True
            mask &= allowed
        if filters.price_min is not None:
            mask &= self.price >= filters.price_min
        if filters.price_max is not None:
            mask &= self.price <= filters.price_max
        if filters.min_rating is not None:
            mask &= self.rating >= filters.min_rating
        if filters.in_stock is not None:
            mask &= self.stock == int(filters.in_stock)
        if filters.brands is not None:
            codes = [
                self.brand_codes[b.casefold()]
                for b in filters.brands
                if b.casefold() in self.brand_codes and b.strip()
            ]
            mask &= np.isin(self.brand, codes)
        if filters.exclude_brands is not None:
            codes = [
                self.brand_codes[b.casefold()]
                for b in filters.exclude_brands
                if b.casefold() in self.brand_codes
            ]
            mask &= ~np.isin(self.brand, codes)
        if filters.category is not None:
            prefix = tuple(level.casefold() for level in split_category(filters.category))
            codes = [c for path, c in self.category_codes.items() if path[: len(prefix)] == prefix]
            mask &= np.isin(self.category, codes)
        return mask

    # -- search ----------------------------------------------------------------------------

    def lexical(
        self,
        query: str,
        kinds: Sequence[UnitKind],
        filters: Filters | None,
        top_k: int,
        boosts: Mapping[str, float],
    ) -> list[ScoredUnit]:
        n = len(self.units)
        terms = Counter(tokenize(query))
        chars = Counter(cjk_chars(query))
        if not n or not terms or top_k <= 0:
            return []
        scores = np.zeros(n, np.float32)
        used: list[tuple[str, str, _Postings]] = []
        char_weight = boosts.get(CJK_CHARS, 1.0)
        for field_name, boost in boosts.items():
            if field_name == CJK_CHARS or boost <= 0:
                continue
            used += self._bm25(field_name, terms, boost, scores)
            if chars and char_weight > 0:
                sub_field = field_name + _CHARS
                used += self._bm25(sub_field, chars, boost * char_weight, scores)
        scores[~self.mask(kinds, filters)] = 0.0
        top = _top(scores, top_k)
        matched_by_unit: list[dict[str, list[str]]] = [{} for _ in top]
        top_units = np.asarray(top, dtype=np.int64)
        for field_name, term, posting in used:  # postings are sorted: binary search them
            at = np.minimum(np.searchsorted(posting.units, top_units), len(posting.units) - 1)
            for slot in np.flatnonzero(posting.units[at] == top_units):
                matched_by_unit[slot].setdefault(field_name, []).append(term)
        return [
            ScoredUnit(self.units[i], float(scores[i]), _shown(matched))
            for i, matched in zip(top, matched_by_unit, strict=True)
        ]

    def _bm25(
        self,
        field_name: str,
        terms: Mapping[str, int],
        boost: float,
        scores: np.ndarray,
    ) -> list[tuple[str, str, _Postings]]:
        """Add the field's BM25 scores of ``terms`` times ``boost`` to ``scores``; the postings
        used, with the field and term of each."""
        field_postings = self.postings.get(field_name)
        if field_postings is None:
            return []
        docs = self.field_docs[field_name]
        avg = self.avg_length[field_name] or 1.0
        lengths = self.field_lengths[field_name]
        used = []
        for term, query_freq in terms.items():
            posting = field_postings.get(term)
            if posting is None:
                continue
            df = len(posting.units)
            idf = math.log(1.0 + (docs - df + 0.5) / (df + 0.5))
            tf = posting.freqs
            norm = _BM25_K1 * (1.0 - _BM25_B + _BM25_B * lengths[posting.units] / avg)
            scores[posting.units] += boost * query_freq * idf * tf * (_BM25_K1 + 1) / (tf + norm)
            used.append((field_name, term, posting))
        return used

    def semantic(
        self,
        vector: np.ndarray,
        kinds: Sequence[UnitKind],
        filters: Filters | None,
        top_k: int,
    ) -> list[ScoredUnit]:
        if not len(self.units) or top_k <= 0:
            return []
        return self._nearest(self.vectors, vector, self.mask(kinds, filters), top_k)

    def crosslingual(
        self,
        vector: np.ndarray,
        model: str,
        script: Script,
        kinds: Sequence[UnitKind],
        filters: Filters | None,
        top_k: int,
    ) -> list[ScoredUnit]:
        if self.cross_vectors is None or self.cross_model != model or top_k <= 0:
            return []
        other_script = ~self.cjk if script == "cjk" else self.cjk
        return self._nearest(
            self.cross_vectors, vector, self.mask(kinds, filters) & other_script, top_k
        )

    def _nearest(
        self, vectors: np.ndarray, vector: np.ndarray, mask: np.ndarray, top_k: int
    ) -> list[ScoredUnit]:
        """The ``top_k`` units of ``mask`` whose rows of ``vectors`` are nearest ``vector``."""
        dim = vectors.shape[1]
        if vector.shape != (dim,):
            msg = f"query vector has shape {vector.shape}, the index holds {dim}-d vectors"
            raise StoreError(msg)
        query = vector.astype(np.float32)
        query /= max(float(np.linalg.norm(query)), 1e-12)
        candidates = np.flatnonzero(mask)
        if not len(candidates):
            return []
        # A few candidates (one product's passages): gather their rows. Many: one product
        # over the whole matrix is cheaper than copying most of it first.
        sims = (
            vectors[candidates] @ query
            if len(candidates) * 4 < len(self.units)
            else (vectors @ query)[candidates]
        )
        order = _top_all(sims, top_k)
        return [ScoredUnit(self.units[candidates[i]], float(sims[i])) for i in order]


def _top(scores: np.ndarray, k: int) -> list[int]:
    """Indices of the k highest positive scores, best first, ties by index."""
    positive = np.flatnonzero(scores > 0)
    if len(positive) > k:
        part = np.argpartition(-scores[positive], k - 1)[:k]
        positive = positive[part]
    return sorted(positive.tolist(), key=lambda i: (-scores[i], i))


def _top_all(scores: np.ndarray, k: int) -> list[int]:
    """Indices of the k highest scores, best first, ties by index."""
    idx = np.arange(len(scores))
    if len(scores) > k:
        idx = np.argpartition(-scores, k - 1)[:k]
    return sorted(idx.tolist(), key=lambda i: (-scores[i], i))


def _unit_terms(unit: Unit) -> TermCounts:
    return {name: dict(Counter(tokenize(text))) for name, text in unit.fields.items() if text}


def _shown(matched: Mapping[str, list[str]]) -> dict[str, tuple[str, ...]]:
    """Matched terms per field, each once; a character only where no word or bigram of the
    same field that matched holds it."""
    shown = {f: list(dict.fromkeys(t)) for f, t in matched.items() if not f.endswith(_CHARS)}
    for sub_field, chars in matched.items():
        if sub_field.endswith(_CHARS):
            name = sub_field.removesuffix(_CHARS)
            words = "".join(shown.get(name, []))
            alone = [c for c in dict.fromkeys(chars) if c not in words]
            if alone:
                shown.setdefault(name, []).extend(alone)
    return {f: tuple(t) for f, t in shown.items()}


def _char_terms(unit: Unit) -> TermCounts:
    """The single Chinese characters of each field, as the field's ``.chars`` sub-field."""
    counts = {name + _CHARS: Counter(cjk_chars(text)) for name, text in unit.fields.items()}
    return {name: dict(chars) for name, chars in counts.items() if chars}


def _new_version() -> str:
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + uuid.uuid4().hex[:8]


def _empty_snapshot() -> _Snapshot:
    return _Snapshot(
        version="empty",
        embedding_model=None,
        dim=0,
        products={},
        units=[],
        vectors=np.zeros((0, 0), np.float32),
        terms=[],
    )


class EmbeddedStore:
    """In-process store; with ``data_dir`` it persists there, without it lives in memory."""

    def __init__(self, data_dir: Path | str | None = None, *, refresh_interval_s: float = 1.0):
        self._dir = Path(data_dir) if data_dir is not None else None
        self._lock = threading.RLock()
        self._refresh_interval = refresh_interval_s
        self._checked_at = 0.0
        self._snapshot = _empty_snapshot()
        if self._dir is not None:
            self._dir.mkdir(parents=True, exist_ok=True)
            loaded = self._load_current()
            if loaded is not None:
                self._snapshot = loaded

    # -- persistence -----------------------------------------------------------------------

    def _pointer(self) -> Path:
        assert self._dir is not None
        return self._dir / "CURRENT"

    def _current_name(self) -> str | None:
        try:
            return self._pointer().read_text(encoding="utf-8").strip() or None
        except FileNotFoundError:
            return None

    def _load_current(self) -> _Snapshot | None:
        name = self._current_name()
        for _ in range(3):
            if name is None:
                return None
            try:
                return self._load(name)
            except StoreError:
                # Another process committed after CURRENT was read and removed that folder:
                # load the one CURRENT names now.
                newer = self._current_name()
                if newer == name:
                    raise
                name = newer
        return None if name is None else self._load(name)

    def _load(self, name: str) -> _Snapshot:
        assert self._dir is not None
        folder = self._dir / name
        try:
            manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
            if manifest.get("format") != _FORMAT:
                msg = f"index format {manifest.get('format')} is not {_FORMAT}: re-index"
                raise StoreError(msg)
            with (folder / "products.jsonl").open(encoding="utf-8") as f:
                products = {p.id: p for p in (Product.model_validate_json(line) for line in f)}
            with (folder / "units.pkl").open("rb") as f:
                units, terms = pickle.load(f)  # noqa: S301 - our own file, written below
            vectors = _map_vectors(folder / "vectors.npy")
            cross_model = manifest.get("cross_embedding_model")
            cross_vectors = (
                _map_vectors(folder / "cross_vectors.npy") if cross_model is not None else None
            )
        except (OSError, ValueError, pickle.UnpicklingError, KeyError) as exc:
            msg = f"cannot load the index in {folder}: {exc}"
            raise StoreError(msg) from exc
        logger.info("loaded index %s: %d products, %d units", name, len(products), len(units))
        return _Snapshot(
            version=manifest["version"],
            embedding_model=manifest["embedding_model"],
            dim=manifest["dim"],
            products=products,
            units=units,
            vectors=vectors,
            terms=terms,
            cross_model=cross_model,
            cross_vectors=cross_vectors,
        )

    def _persist(self, snapshot: _Snapshot) -> None:
        if self._dir is None:
            return
        name = f"gen-{snapshot.version}"
        staging = self._dir / f".{name}.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        with (staging / "products.jsonl").open("w", encoding="utf-8") as f:
            for product in snapshot.products.values():
                f.write(product.model_dump_json() + "\n")
        with (staging / "units.pkl").open("wb") as f:
            pickle.dump((snapshot.units, snapshot.terms), f, protocol=pickle.HIGHEST_PROTOCOL)
        np.save(staging / "vectors.npy", snapshot.vectors)
        if snapshot.cross_vectors is not None:
            np.save(staging / "cross_vectors.npy", snapshot.cross_vectors)
        manifest = {
            "format": _FORMAT,
            "version": snapshot.version,
            "embedding_model": snapshot.embedding_model,
            "dim": snapshot.dim,
            "cross_embedding_model": snapshot.cross_model,
            "products": len(snapshot.products),
            "units": len(snapshot.units),
        }
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        for path in staging.iterdir():
            _fsync(path)
        staging.rename(self._dir / name)
        pointer_tmp = self._dir / "CURRENT.tmp"
        pointer_tmp.write_text(name + "\n", encoding="utf-8")
        _fsync(pointer_tmp)
        os.replace(pointer_tmp, self._pointer())
        _fsync(self._dir)
        for old in self._dir.glob("gen-*"):
            if old.name != name:
                shutil.rmtree(old, ignore_errors=True)

    def refresh(self) -> bool:
        """Load a newer index that another process committed; True when one was loaded."""
        if self._dir is None:
            return False
        now = time.monotonic()
        if now - self._checked_at < self._refresh_interval:
            return False
        self._checked_at = now
        name = self._current_name()
        if name is None or name == f"gen-{self._snapshot.version}":
            return False
        with self._lock:
            loaded = self._load_current()
            if loaded is None:
                return False
            self._snapshot = loaded
            return True

    # -- writes ----------------------------------------------------------------------------

    def writer(
        self,
        *,
        embedding_model: str,
        dim: int,
        prune: bool = False,
        cross_model: str | None = None,
        cross_dim: int = 0,
    ) -> EmbeddedWriter:
        """Start a write; see `DocumentStore.writer`."""
        current = self._snapshot
        if current.units and current.embedding_model != embedding_model and not prune:
            msg = (
                f"the index was built with the embedding model '{current.embedding_model}', "
                f"not '{embedding_model}': re-index the whole catalog with prune"
            )
            raise StoreError(msg)
        if current.units and not prune:
            held_dim = 0 if current.cross_vectors is None else current.cross_vectors.shape[1]
            cross_model = cross_write_model(
                current.cross_model,
                held_dim,
                cross_model,
                cross_dim,
                index=str(self._dir) if self._dir else "in memory",
            )
        return EmbeddedWriter(
            self,
            embedding_model=embedding_model,
            dim=dim,
            prune=prune,
            cross_model=cross_model,
            cross_dim=cross_dim if cross_model is not None else 0,
        )

    def _commit(
        self,
        records: Mapping[str, ProductRecord],
        terms: Mapping[str, list[TermCounts]],
        *,
        embedding_model: str,
        dim: int,
        prune: bool,
        cross_model: str | None,
        cross_dim: int,
        deleted: Iterable[str] = (),
    ) -> CommitReport:
        with self._lock:
            base = self._snapshot
            deleted = set(deleted)
            same_model = base.embedding_model in (None, embedding_model)
            keep = (
                []
                if prune or not same_model
                else [pid for pid in base.products if pid not in records and pid not in deleted]
            )
            products: dict[str, Product] = {}
            units: list[Unit] = []
            unit_terms: list[TermCounts] = []
            vector_rows: list[np.ndarray] = []
            cross_rows: list[np.ndarray] = []
            for pid in keep:
                products[pid] = base.products[pid]
                rows = base.by_product.get(pid, [])
                units.extend(base.units[i] for i in rows)
                unit_terms.extend(base.terms[i] for i in rows)
                if rows:
                    vector_rows.append(base.vectors[rows])
                    if cross_model is not None and base.cross_vectors is not None:
                        cross_rows.append(base.cross_vectors[rows])
            for pid, record in records.items():
                products[pid] = record.product
                units.extend(record.units)
                unit_terms.extend(terms[pid])
                if len(record.units):
                    vector_rows.append(normalized(record.embeddings))
                    if cross_model is not None and record.cross_embeddings is not None:
                        cross_rows.append(normalized(record.cross_embeddings))
            vectors = _stacked(vector_rows, dim)
            cross_vectors = _stacked(cross_rows, cross_dim) if cross_model is not None else None
            removed = len(set(base.products) - set(products))
            snapshot = _Snapshot(
                version=_new_version(),
                embedding_model=embedding_model,
                dim=dim,
                products=products,
                units=units,
                vectors=vectors,
                terms=unit_terms,
                cross_model=cross_model,
                cross_vectors=cross_vectors,
            )
            self._persist(snapshot)
            self._snapshot = snapshot
            logger.info(
                "committed index %s: %d products (%d written, %d removed)",
                snapshot.version,
                len(products),
                len(records),
                removed,
            )
            return CommitReport(
                version=snapshot.version,
                products=len(products),
                units=len(units),
                written=len(records),
                removed=removed,
            )

    def delete_products(self, product_ids: Sequence[str]) -> int:
        """Remove products and their units now; returns how many existed."""
        current = self._snapshot
        existing = [pid for pid in product_ids if pid in current.products]
        if existing:
            self._commit(
                {},
                {},
                embedding_model=current.embedding_model or "",
                dim=current.dim,
                prune=False,
                cross_model=current.cross_model,
                cross_dim=0 if current.cross_vectors is None else current.cross_vectors.shape[1],
                deleted=existing,
            )
        return len(existing)

    # -- reads -----------------------------------------------------------------------------

    def lexical(
        self,
        query: str,
        *,
        kinds: Sequence[UnitKind],
        filters: Filters | None,
        top_k: int,
        boosts: Mapping[str, float],
    ) -> list[ScoredUnit]:
        """BM25 over the fields in ``boosts``, best first."""
        self.refresh()
        return self._snapshot.lexical(query, kinds, filters, top_k, boosts)

    def semantic(
        self,
        vector: np.ndarray,
        *,
        kinds: Sequence[UnitKind],
        filters: Filters | None,
        top_k: int,
    ) -> list[ScoredUnit]:
        """Nearest units by cosine similarity, best first."""
        self.refresh()
        return self._snapshot.semantic(vector, kinds, filters, top_k)

    def crosslingual(
        self,
        vector: np.ndarray,
        *,
        model: str,
        script: Script,
        kinds: Sequence[UnitKind],
        filters: Filters | None,
        top_k: int,
    ) -> list[ScoredUnit]:
        """Nearest units in the cross-lingual space among those of the other script."""
        self.refresh()
        return self._snapshot.crosslingual(vector, model, script, kinds, filters, top_k)

    def hybrid(
        self,
        query: str,
        vector: np.ndarray | None,
        *,
        kinds: Sequence[UnitKind],
        filters: Filters | None,
        top_k: int,
        boosts: Mapping[str, float],
    ) -> tuple[list[ScoredUnit], list[ScoredUnit]]:
        """Both searches on one snapshot."""
        self.refresh()
        snapshot = self._snapshot
        return (
            snapshot.lexical(query, kinds, filters, top_k, boosts),
            [] if vector is None else snapshot.semantic(vector, kinds, filters, top_k),
        )

    def get_product(self, product_id: str) -> Product | None:
        """The product with this id, or None."""
        self.refresh()
        return self._snapshot.products.get(product_id)

    def get_products(self, product_ids: Sequence[str]) -> dict[str, Product]:
        """The products with these ids (unknown ids left out)."""
        self.refresh()
        products = self._snapshot.products
        return {i: products[i] for i in product_ids if i in products}

    def get_units(self, product_id: str, kinds: Sequence[UnitKind] | None = None) -> list[Unit]:
        """The product's units, optionally only these kinds."""
        snapshot = self._snapshot
        units = [snapshot.units[i] for i in snapshot.by_product.get(product_id, [])]
        return [u for u in units if kinds is None or u.kind in kinds]

    def known_vectors(
        self, units: Sequence[Unit], embedding_model: str, cross_model: str | None = None
    ) -> KnownVectors:
        """The stored vectors of the units whose text is unchanged (see `DocumentStore`)."""
        snapshot = self._snapshot
        same = snapshot.embedding_model == embedding_model
        cross = snapshot.cross_vectors if cross_model == snapshot.cross_model else None
        known = KnownVectors()
        if not same and cross is None:
            return known
        for unit in units:
            i = snapshot.unit_index.get(unit.id)
            if i is None or snapshot.units[i].text != unit.text:
                continue
            if same:
                known.embeddings[unit.id] = snapshot.vectors[i]
            if cross is not None:
                known.cross[unit.id] = cross[i]
        return known

    def product_vectors(self, product_ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored vectors of these products' own units (unknown ids left out)."""
        self.refresh()
        snapshot = self._snapshot
        found = {}
        for product_id in product_ids:
            i = snapshot.unit_index.get(product_id)
            if i is not None and snapshot.units[i].kind == "product":
                found[product_id] = np.array(snapshot.vectors[i])  # the caller's own row
        return found

    def brands(self) -> list[str]:
        """Every brand in the catalog."""
        return self._snapshot.brands

    def stats(self) -> StoreStats:
        """Counts and the catalog version."""
        self.refresh()
        snapshot = self._snapshot
        return StoreStats(
            backend="embedded",
            version=None if snapshot.version == "empty" else snapshot.version,
            products=len(snapshot.products),
            units=len(snapshot.units),
            embedding_model=snapshot.embedding_model,
            cross_embedding_model=snapshot.cross_model,
        )

    def close(self) -> None:
        """Nothing to release: every commit is already on disk."""


class EmbeddedWriter:
    """Stages products in memory; `commit` builds and persists the new snapshot."""

    def __init__(
        self,
        store: EmbeddedStore,
        *,
        embedding_model: str,
        dim: int,
        prune: bool,
        cross_model: str | None = None,
        cross_dim: int = 0,
    ):
        self._store = store
        self._embedding_model = embedding_model
        self._dim = dim
        self._prune = prune
        self._cross_model = cross_model
        self._cross_dim = cross_dim
        self._records: dict[str, ProductRecord] = {}
        self._terms: dict[str, list[TermCounts]] = {}
        self._closed = False

    def write(self, records: Sequence[ProductRecord]) -> list[WriteFailure]:
        """Stage products; a product id written again replaces the earlier one."""
        if self._closed:
            msg = "this writer has already been committed or aborted"
            raise StoreError(msg)
        failures = []
        for record in records:
            problem = (
                vectors_problem(record.embeddings, len(record.units), self._dim)
                if len(record.units)
                else None
            )
            if problem is not None:
                failures.append(WriteFailure(record.product.id, problem))
                continue
            problem = (
                None
                if self._cross_model is None or not len(record.units)
                else cross_vectors_problem(record, self._cross_model, self._cross_dim)
            )
            if problem is not None:
                failures.append(WriteFailure(record.product.id, problem))
                continue
            self._records[record.product.id] = record
            self._terms[record.product.id] = [_unit_terms(u) for u in record.units]
        return failures

    def commit(self) -> CommitReport:
        """Make the staged products visible, atomically."""
        if self._closed:
            msg = "this writer has already been committed or aborted"
            raise StoreError(msg)
        self._closed = True
        return self._store._commit(
            self._records,
            self._terms,
            embedding_model=self._embedding_model,
            dim=self._dim,
            prune=self._prune,
            cross_model=self._cross_model,
            cross_dim=self._cross_dim,
        )

    def abort(self) -> None:
        """Drop the staged products."""
        self._closed = True
        self._records.clear()
        self._terms.clear()


def _map_vectors(path: Path) -> np.ndarray:
    """The saved vectors, memory-mapped read-only (an empty matrix, which cannot be mapped, is
    read); a plain read-only ndarray view, so results of arithmetic on it are ndarrays."""
    mapped = np.load(path, mmap_mode="r")
    vectors = np.asarray(mapped) if mapped.size else np.array(mapped)
    vectors.flags.writeable = False
    return vectors


def _stacked(rows: list[np.ndarray], dim: int) -> np.ndarray:
    return np.vstack(rows).astype(np.float32) if rows else np.zeros((0, dim), np.float32)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = ["EmbeddedStore", "EmbeddedWriter"]
