"""The textbook peer: hybrid retrieval built the way Haystack's documentation shows it.

Indexing: ``DocumentEmbedder → DocumentWriter`` into an ``InMemoryDocumentStore``. Querying::

    text ─▶ text_embedder ─▶ embedding_retriever ─┐
    text ─────────────────▶ bm25_retriever ───────┴▶ joiner (reciprocal_rank_fusion)

``InMemoryBM25Retriever``, ``InMemoryEmbeddingRetriever`` and ``DocumentJoiner`` are Haystack's
own, with their defaults (BM25L, dot-product similarity, RRF with k=61 and equal weights).
haystack-ai 3.4 core ships no sentence-transformers embedders (they moved to an integration
package), so the two embedder components here wrap the project's `Embedder` with Haystack's
embedder interface: the same model as the project's systems, loaded the same way.

Per-stage latency comes from a Haystack tracer that times each component's run span.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from haystack import Document, Pipeline, component, tracing
from haystack.components.joiners import DocumentJoiner
from haystack.components.retrievers.in_memory import (
    InMemoryBM25Retriever,
    InMemoryEmbeddingRetriever,
)
from haystack.components.writers import DocumentWriter
from haystack.document_stores.in_memory import InMemoryDocumentStore
from tqdm import tqdm

from retrieval.embedders.base import Embedder
from retrieval.schema import Unit

# component name in the query pipeline -> stage name in the benchmark's latency table
STAGES = {
    "text_embedder": "embedding",
    "bm25_retriever": "bm25",
    "embedding_retriever": "knn",
    "joiner": "fusion",
}


@component
class TextEmbedder:
    """Haystack's text-embedder interface (``text`` → ``embedding``) around an `Embedder`."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    def warm_up(self) -> None:
        """Load the model."""
        self.embedder.warm_up()

    @component.output_types(embedding=list[float])
    def run(self, text: str) -> dict[str, Any]:
        """Embed the query."""
        return {"embedding": [float(x) for x in self.embedder.embed_query(text)]}


@component
class DocumentEmbedder:
    """Haystack's document-embedder interface (documents in, documents with embeddings out)."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    def warm_up(self) -> None:
        """Load the model."""
        self.embedder.warm_up()

    @component.output_types(documents=list[Document])
    def run(self, documents: list[Document]) -> dict[str, Any]:
        """Embed each document's content."""
        vectors = self.embedder.embed_documents([d.content or "" for d in documents])
        return {
            "documents": [
                dataclasses.replace(d, embedding=[float(x) for x in v])
                for d, v in zip(documents, vectors, strict=True)
            ]
        }


class _ComponentClock(tracing.Tracer):
    """A Haystack tracer that records how long each component's run span took."""

    def __init__(self) -> None:
        self.took_ms: dict[str, float] = {}

    @contextlib.contextmanager
    def trace(
        self,
        operation_name: str,
        tags: dict[str, Any] | None = None,
        parent_span: tracing.Span | None = None,
    ) -> Iterator[tracing.Span]:
        """Time the block; component spans are recorded under the component's name."""
        start = time.perf_counter()
        try:
            yield _Span()
        finally:
            if operation_name == "haystack.component.run" and tags:
                name = str(tags.get("haystack.component.name"))
                self.took_ms[name] = (time.perf_counter() - start) * 1000

    def current_span(self) -> tracing.Span | None:
        """No span context is kept."""
        return None


class _Span(tracing.Span):
    def set_tag(self, key: str, value: Any) -> None:
        """Tags are not kept."""


@dataclass(frozen=True)
class TextbookResult:
    """Fused documents, best first, and milliseconds per stage (plus ``total``)."""

    documents: list[Document]
    timings_ms: dict[str, float]


def documents_from_units(units: Sequence[Unit]) -> list[Document]:
    """One Haystack document per indexed unit: same id and text, product id and kind in meta."""
    return [
        Document(
            id=unit.id,
            content=unit.text,
            meta={"product_id": unit.product_id, "kind": unit.kind},
        )
        for unit in units
    ]


def product_filter(product_id: str) -> dict[str, Any]:
    """Haystack's metadata filter for the documents of one product."""
    return {"field": "meta.product_id", "operator": "==", "value": product_id}


class TextbookHybrid:
    """The documented Haystack hybrid pipeline over an in-memory store."""

    def __init__(self, embedder: Embedder) -> None:
        self.store = InMemoryDocumentStore()
        self.indexing = Pipeline()
        self.indexing.add_component("embedder", DocumentEmbedder(embedder))
        self.indexing.add_component("writer", DocumentWriter(document_store=self.store))
        self.indexing.connect("embedder.documents", "writer.documents")

        self.pipeline = Pipeline()
        self.pipeline.add_component("text_embedder", TextEmbedder(embedder))
        self.pipeline.add_component(
            "embedding_retriever", InMemoryEmbeddingRetriever(document_store=self.store)
        )
        self.pipeline.add_component(
            "bm25_retriever", InMemoryBM25Retriever(document_store=self.store)
        )
        self.pipeline.add_component("joiner", DocumentJoiner(join_mode="reciprocal_rank_fusion"))
        self.pipeline.connect("text_embedder.embedding", "embedding_retriever.query_embedding")
        self.pipeline.connect("bm25_retriever", "joiner")
        self.pipeline.connect("embedding_retriever", "joiner")

    def warm_up(self) -> None:
        """Load the embedder."""
        self.indexing.warm_up()
        self.pipeline.warm_up()

    def index(
        self, documents: Sequence[Document], *, batch_size: int = 256, progress: bool = True
    ) -> int:
        """Embed and write the documents in batches; returns how many the store holds."""
        with tqdm(total=len(documents), desc="textbook indexing", disable=not progress) as bar:
            for start in range(0, len(documents), batch_size):
                batch = list(documents[start : start + batch_size])
                self.indexing.run({"embedder": {"documents": batch}})
                bar.update(len(batch))
        return self.store.count_documents()

    def search(
        self, query: str, *, top_k: int, filters: dict[str, Any] | None = None
    ) -> TextbookResult:
        """The fused top ``top_k`` (each retriever also returns ``top_k``), with stage times."""
        clock = _ComponentClock()
        previous = tracing.tracer.actual_tracer
        tracing.enable_tracing(clock)
        start = time.perf_counter()
        try:
            result = self.pipeline.run(
                {
                    "text_embedder": {"text": query},
                    "bm25_retriever": {"query": query, "top_k": top_k, "filters": filters},
                    "embedding_retriever": {"top_k": top_k, "filters": filters},
                    "joiner": {"top_k": top_k},
                }
            )
        finally:
            total = (time.perf_counter() - start) * 1000
            tracing.tracer.actual_tracer = previous
        timings = {stage: clock.took_ms.get(name, 0.0) for name, stage in STAGES.items()}
        timings["total"] = total
        return TextbookResult(result["joiner"]["documents"], timings)
