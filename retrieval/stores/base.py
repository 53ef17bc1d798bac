"""The document store interface that the retrievers and the indexer speak.

Two implementations: `EmbeddedStore` (in-process, persisted to a folder; the default) and the
Elasticsearch store. Errors: `StoreError` for anything a store cannot do, with the subclass
`StoreUnavailable` when its server cannot be reached (the API answers 503).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from retrieval.schema import Filters, Product, Unit, UnitKind
from retrieval.text import Script, script_of

logger = logging.getLogger(__name__)


class StoreError(RuntimeError):
    """A store operation failed."""


class StoreUnavailable(StoreError):
    """The store's server cannot be reached."""


# A ``boosts`` key of `DocumentStore.lexical`, not a field: how much a matching single Chinese
# character counts against the field's words and bigrams. Characters carry over to queries that a
# segmenter cuts differently from the catalog (BENCHMARKS.md, issue 18).
CJK_CHARS = "cjk_chars"


def unit_script(unit: Unit) -> Script:
    """The script a unit is written in: its title's (product units), else its text's. Cross-lingual
    search (`DocumentStore.crosslingual`) looks only at units of the other script."""
    return script_of(unit.fields.get("title") or unit.text)


@dataclass(frozen=True)
class ScoredUnit:
    """A unit a retriever found, with its score and, for lexical search, the matched terms."""

    unit: Unit
    score: float
    matched: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class ProductRecord:
    """A product ready to store: its units and one embedding row per unit; with a cross-lingual
    embedder, also one row per unit of its vectors (``cross_embeddings``)."""

    product: Product
    units: Sequence[Unit]
    embeddings: np.ndarray
    cross_embeddings: np.ndarray | None = None


def vectors_problem(
    vectors: np.ndarray, units: int, dim: int | None, what: str = "embeddings"
) -> str | None:
    """Why ``vectors`` are not one usable row per unit (``dim`` wide when given: finite, each
    with a direction), or None; every store's writer asks, so both refuse the same records."""
    vectors = np.asarray(vectors)
    if (
        vectors.ndim != 2
        or vectors.shape[0] != units
        or (dim is not None and vectors.shape[1] != dim)
    ):
        wide = "" if dim is None else f" of dim {dim}"
        return f"{what} of shape {vectors.shape} for {units} units{wide}"
    if not np.isfinite(vectors).all():
        return f"{what} hold NaN or infinite values"
    if units and (np.linalg.norm(vectors, axis=1) == 0).any():
        return f"a row of the {what} is all zeros (cosine similarity needs a direction)"
    return None


def cross_vectors_problem(record: ProductRecord, cross_model: str, cross_dim: int) -> str | None:
    """Why a record's cross-lingual vectors do not fit a write of ``cross_model`` vectors
    (``cross_dim``-d, finite, each with a direction), or None."""
    if record.cross_embeddings is None:
        return f"no cross-lingual vectors ({cross_model}) for its units"
    return vectors_problem(
        record.cross_embeddings, len(record.units), cross_dim, "cross-lingual vectors"
    )


def normalized(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (float32), as both stores keep them for cosine similarity."""
    vectors = np.asarray(vectors, np.float32)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def cross_write_model(
    held: str | None, held_dim: int, wanted: str | None, wanted_dim: int, *, index: str
) -> str | None:
    """The cross-lingual model a write without prune into the non-empty ``index`` writes, given
    the model its vectors are of (``held``, ``held_dim``-d) and the write's (``wanted``).

    The same model: that one. An index without cross-lingual vectors takes the write without
    them: None, logged. Another model (or none for an index that has them): `StoreError`, as
    for the embedding model."""
    if held is None:
        if wanted is not None:
            logger.warning(
                "the index %s has no cross-lingual vectors: this write adds none (re-index the "
                "whole catalog with prune to search across languages)",
                index,
            )
        return None
    if held == wanted and held_dim == wanted_dim:
        return held
    other = f"'{wanted}' ({wanted_dim}-d)" if wanted is not None else "none"
    msg = (
        f"the index {index} holds cross-lingual vectors of '{held}' ({held_dim}-d), not "
        f"{other}: re-index the whole catalog with prune"
    )
    raise StoreError(msg)


@dataclass(frozen=True)
class KnownVectors:
    """Stored vectors a write may reuse, by unit id: those of units whose text is unchanged,
    written by the same model (``embeddings``) and cross-lingual model (``cross``)."""

    embeddings: dict[str, np.ndarray] = field(default_factory=dict)
    cross: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class WriteFailure:
    """A product the store refused, and why."""

    product_id: str
    reason: str


@dataclass(frozen=True)
class CommitReport:
    """What a committed write changed."""

    version: str
    products: int
    units: int
    written: int
    removed: int


@dataclass(frozen=True)
class StoreStats:
    """What a store holds now."""

    backend: str
    version: str | None
    products: int
    units: int
    embedding_model: str | None
    cross_embedding_model: str | None = None


class IndexWriter(Protocol):
    """A batch of writes that becomes visible to searches only on `commit`."""

    def write(self, records: Sequence[ProductRecord]) -> list[WriteFailure]:
        """Stage products (a product id written again replaces the earlier one)."""
        ...

    def commit(self) -> CommitReport:
        """Make the staged products visible, atomically."""
        ...

    def abort(self) -> None:
        """Drop the staged products; searches keep the previous index."""
        ...


class DocumentStore(Protocol):
    """Products and their units, searchable lexically and by vector, with filters."""

    def writer(
        self,
        *,
        embedding_model: str,
        dim: int,
        prune: bool = False,
        cross_model: str | None = None,
        cross_dim: int = 0,
    ) -> IndexWriter:
        """Start a write. With ``prune`` every product not written is removed on commit.

        ``cross_model`` (``cross_dim``-d) names the cross-lingual vectors of the records
        (`ProductRecord.cross_embeddings`). A write without ``prune`` keeps the index's
        cross-lingual model: to an index without one, the records' cross vectors are dropped
        (logged; a pruning re-index adds them); to an index with another one, it is a
        `StoreError`, as for the embedding model."""
        ...

    def delete_products(self, product_ids: Sequence[str]) -> int:
        """Remove products and their units now; returns how many existed."""
        ...

    def lexical(
        self,
        query: str,
        *,
        kinds: Sequence[UnitKind],
        filters: Filters | None,
        top_k: int,
        boosts: Mapping[str, float],
    ) -> list[ScoredUnit]:
        """BM25 over the fields in ``boosts`` (field → weight), best first. The key `CJK_CHARS`
        weighs the single Chinese characters of each field against its words and bigrams
        (default 1; 0 leaves them out)."""
        ...

    def semantic(
        self,
        vector: np.ndarray,
        *,
        kinds: Sequence[UnitKind],
        filters: Filters | None,
        top_k: int,
    ) -> list[ScoredUnit]:
        """Nearest units by cosine similarity, best first."""
        ...

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
        """`lexical` and `semantic` with the same filters, in one round trip where the store
        has a server; returns (lexical hits, semantic hits). With no ``vector`` only
        `lexical` runs and the semantic hits are empty."""
        ...

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
        """Nearest units by cosine similarity in the cross-lingual space, among the units
        written in another script than ``script`` (the query's), best first; empty when the
        index holds no cross-lingual vectors of ``model``."""
        ...

    def get_product(self, product_id: str) -> Product | None:
        """The product with this id, or None."""
        ...

    def get_products(self, product_ids: Sequence[str]) -> dict[str, Product]:
        """The products with these ids (unknown ids left out), in one round trip."""
        ...

    def get_units(self, product_id: str, kinds: Sequence[UnitKind] | None = None) -> list[Unit]:
        """The product's units, optionally only these kinds."""
        ...

    def known_vectors(
        self, units: Sequence[Unit], embedding_model: str, cross_model: str | None = None
    ) -> KnownVectors:
        """The stored vectors of the units whose text is unchanged, of ``embedding_model`` and
        of the cross-lingual ``cross_model`` (saves re-embedding them)."""
        ...

    def product_vectors(self, product_ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored vectors of these products' own units (unknown ids left out), in one
        round trip: what personalization compares with a shopper's preference."""
        ...

    def brands(self) -> list[str]:
        """Every brand in the catalog."""
        ...

    def stats(self) -> StoreStats:
        """Counts and the catalog version."""
        ...

    def close(self) -> None:
        """Release resources."""
        ...
