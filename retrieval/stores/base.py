"""The document store interface that the retrievers and the indexer speak.

Two implementations: `EmbeddedStore` (in-process, persisted to a folder; the default) and the
Elasticsearch store. Errors: `StoreError` for anything a store cannot do, with the subclass
`StoreUnavailable` when its server cannot be reached (the API answers 503).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from retrieval.schema import Filters, Product, Unit, UnitKind
from retrieval.text import Script, script_of


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


def cross_vectors_problem(record: ProductRecord, cross_model: str, cross_dim: int) -> str | None:
    """Why a record's cross-lingual vectors do not fit a write of ``cross_model`` vectors
    (``cross_dim``-d, finite, each with a direction), or None; every store's writer asks."""
    if record.cross_embeddings is None:
        return f"no cross-lingual vectors ({cross_model}) for its units"
    vectors = np.asarray(record.cross_embeddings)
    if vectors.shape != (len(record.units), cross_dim):
        return (
            f"cross-lingual vectors of shape {vectors.shape} for {len(record.units)} units "
            f"of dim {cross_dim}"
        )
    if not np.isfinite(vectors).all():
        return "cross-lingual vectors hold NaN or infinite values"
    if (np.linalg.norm(vectors, axis=1) == 0).any():
        return "a cross-lingual vector is all zeros (cosine similarity needs a direction)"
    return None


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

    def known_embeddings(
        self, units: Sequence[Unit], embedding_model: str
    ) -> dict[str, np.ndarray]:
        """Stored vectors of the units whose text is unchanged, by unit id (saves re-embedding)."""
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
