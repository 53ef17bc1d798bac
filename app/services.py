"""Builds the backends and pipelines that the settings choose, in one place."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from app.settings import Settings
from generation.answers import AnswerService
from generation.llm.base import LLM, GenerationOptions
from retrieval import text
from retrieval.embedders.base import Embedder
from retrieval.embedders.hashing import HashingEmbedder
from retrieval.embedders.sentence_transformers import SentenceTransformerEmbedder
from retrieval.rankers.base import Reranker
from retrieval.rankers.cross_encoder import CrossEncoderReranker
from retrieval.rankers.nanoranker import NanoReranker
from retrieval.search import HybridSearch, SearchConfig
from retrieval.stores.base import DocumentStore
from retrieval.stores.embedded import EmbeddedStore

logger = logging.getLogger(__name__)


@dataclass
class Services:
    """Everything a request needs."""

    settings: Settings
    store: DocumentStore
    embedder: Embedder
    reranker: Reranker | None
    search: HybridSearch
    llm: LLM
    answers: AnswerService

    def close(self) -> None:
        """Release models and connections."""
        self.llm.close()
        self.store.close()


def build_store(settings: Settings) -> DocumentStore:
    """The configured document store."""
    return EmbeddedStore(settings.index_dir)


def build_embedder(settings: Settings) -> Embedder:
    """The configured embedder."""
    if settings.embedder.startswith("hashing"):
        _, _, dim = settings.embedder.partition("-")
        return HashingEmbedder(int(dim) if dim else 256)
    return SentenceTransformerEmbedder(settings.embedder, device=settings.device)


def build_reranker(settings: Settings) -> Reranker | None:
    """The configured re-ranker, or None when re-ranking is off."""
    if settings.reranker.casefold() in ("", "none", "off"):
        return None
    if settings.reranker.casefold() == "nanoranker":
        return NanoReranker()
    return CrossEncoderReranker(settings.reranker, device=settings.device)


def build_llm(settings: Settings) -> LLM:
    """The configured generator backend (the model file is assembled if needed)."""
    if settings.llm_backend == "openai":
        from generation.llm.openai_compat import OpenAICompatibleLLM

        assert settings.llm_base_url is not None
        return OpenAICompatibleLLM(
            settings.llm_base_url, settings.llm_model, api_key=settings.llm_api_key
        )
    from generation.llm.gguf import resolve_model_path
    from generation.llm.llama_cpp import LlamaCppLLM

    path = resolve_model_path(settings.llm_model, settings.models_dir)
    # llama.cpp would use half the cores by default; generation is the only heavy work then.
    threads = settings.llm_threads or os.cpu_count() or 1
    return LlamaCppLLM(str(path), n_ctx=settings.llm_context, n_threads=threads)


def search_config(settings: Settings) -> SearchConfig:
    """Retrieval tuning from the settings."""
    return SearchConfig(
        candidates=settings.candidates,
        rrf_k=settings.rrf_k,
        weights={"lexical": settings.lexical_weight, "semantic": settings.semantic_weight},
        rerank_depth=settings.rerank_depth,
        min_similarity=settings.semantic_min_similarity,
    )


def generation_options(settings: Settings) -> GenerationOptions:
    """Decoding options from the settings."""
    return GenerationOptions(max_tokens=settings.llm_max_tokens, timeout_s=settings.llm_timeout_s)


def configure_threads(settings: Settings) -> None:
    """Pin torch's thread count where the settings ask for it."""
    if settings.torch_threads:
        import torch

        torch.set_num_threads(settings.torch_threads)


def build_services(settings: Settings, *, llm: LLM | None = None) -> Services:
    """Every backend, loaded and warm."""
    configure_threads(settings)
    store = build_store(settings)
    embedder = build_embedder(settings)
    reranker = build_reranker(settings)
    search = HybridSearch(store, embedder, reranker, search_config(settings))
    prime = settings.llm_prime and settings.llm_backend == "llama-cpp" and llm is None
    llm = llm or build_llm(settings)
    answers = AnswerService(
        search,
        llm,
        options=generation_options(settings),
        advice_sources=settings.advice_sources,
        ask_sources=settings.ask_sources,
    )
    text.warm_up()
    search.warm_up()
    answers.warm_up(prime=prime)
    logger.info(
        "services ready: store=%s embedder=%s reranker=%s llm=%s",
        settings.store,
        embedder.name,
        reranker.name if reranker else "none",
        llm.name,
    )
    return Services(settings, store, embedder, reranker, search, llm, answers)
