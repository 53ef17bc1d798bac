"""Builds the backends and pipelines that the settings choose, in one place."""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from app.caching import ResultCache
from app.settings import Settings
from generation.admission import Admission
from generation.answers import AnswerService
from generation.conversation import ConversationStore
from generation.llm.base import LLM, GenerationOptions
from generation.llm.deferred import DeferredLLM
from generation.prompts import PROMPT_VERSION
from personalization.events import EventWindow
from personalization.ranking import PersonalConfig
from personalization.service import Personalization
from personalization.spool import EventSpool
from personalization.stores.base import DAY_S, IngestReport, ProfileStore
from personalization.stores.file import FileProfileStore
from recommendation.complements import Complements
from recommendation.for_you import ForYou
from recommendation.similar import SimilarProducts
from recommendation.stores.base import PairCounts, TrendingConfig, TrendingStore
from recommendation.stores.memory import MemoryPairCounts, MemoryTrendingStore
from recommendation.trending import Trending
from retrieval import text
from retrieval.caches.base import Cache
from retrieval.caches.memory import MemoryCache
from retrieval.embedders.base import Embedder
from retrieval.embedders.cached import CachedEmbedder
from retrieval.embedders.hashing import HashingEmbedder
from retrieval.embedders.onnx_sentence import OnnxSentenceEmbedder
from retrieval.embedders.sentence_transformers import SentenceTransformerEmbedder
from retrieval.embedders.use_onnx import PACKAGED_NAME as USE_PACKAGED
from retrieval.embedders.use_onnx import UseOnnxEmbedder
from retrieval.fusion import WeakMatch
from retrieval.rankers.base import Reranker
from retrieval.rankers.cross_encoder import CrossEncoderReranker
from retrieval.rankers.manifest import read_manifest
from retrieval.rankers.nanoranker import NanoReranker
from retrieval.rankers.onnx_cross_encoder import ONNX_FP32, ONNX_INT8, OnnxCrossEncoderReranker
from retrieval.schema import Product
from retrieval.search import HybridSearch, SearchConfig
from retrieval.stores.base import DocumentStore, StoreError, StoreUnavailable
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
    cache: Cache | None
    results: ResultCache | None
    personalization: Personalization
    # the last catalog version read: (version,), None before the first read
    _catalog_seen: tuple[str | None] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.personalization.on_applied is None:  # events applied from the spool count too
            self.personalization.on_applied = self._count_applied

    def _count_applied(self, report: IngestReport, products: Mapping[str, Product]) -> None:
        """Count applied events in trending and the pairs bought together (as POST /events)."""
        self.trending.record(report.applied, products)
        self.complements.record(report.applied, self.personalization.history)

    def close(self) -> None:
        """Release models and connections."""
        self.llm.close()
        self.personalization.close()  # before the store: it may be applying queued events
        self.store.close()
        if self.cache is not None:
            self.cache.close()
        if "trending" in self.__dict__:  # built on first use
            self.trending.counts.close()
        if "complements" in self.__dict__:
            self.complements.pairs.close()

    @functools.cached_property
    def trending(self) -> Trending:
        """Trending products, counted from the events where profiles live."""
        return Trending(build_trending_counts(self.settings), self.store)

    @functools.cached_property
    def complements(self) -> Complements:
        """What goes with a product, counted from the events where profiles live."""
        return Complements(build_pair_counts(self.settings), self.store)

    @functools.cached_property
    def for_you(self) -> ForYou:
        """Recommendations for a shopper, trending ones without a profile."""
        return ForYou(self.store, self.trending, self.personalization.config)

    @functools.cached_property
    def similar(self) -> SimilarProducts:
        """Similar products, from the store's vectors."""
        return SimilarProducts(self.store)

    def catalog_version(self) -> str | None:
        """The version of the catalog behind the index (part of every cache key); while the
        store is unavailable, the last one read, so that cached results are still served."""
        try:
            version = self.store.stats().version
        except StoreUnavailable:
            if self._catalog_seen is None:
                raise
            return self._catalog_seen[0]
        self._catalog_seen = (version,)
        return version

    @functools.cached_property
    def _config_key(self) -> dict[str, object]:
        config = self.search.config
        return {
            "embedder": self.embedder.name,
            "cross_embedder": self.search.cross_embedder.name
            if self.search.cross_embedder
            else None,
            "reranker": self.reranker.name if self.reranker else None,
            "llm": self.llm.name,
            "prompt": PROMPT_VERSION,
            "search": search_config_key(config),
            "personal": asdict(self.personalization.config),
            "sources": [
                self.settings.advice_sources,
                self.settings.ask_sources,
                self.settings.llm_max_tokens,
                self.settings.llm_constrained,
            ],
        }

    def config_key(self) -> dict[str, object]:
        """Everything besides the request that changes a search result or an answer (fixed
        once the services are built: computed once, not per request)."""
        return self._config_key


def build_cache(settings: Settings) -> Cache | None:
    """The configured cache: in-process, Redis, or none."""
    if settings.cache == "none":
        return None
    if settings.cache == "redis":
        from retrieval.caches.redis import RedisCache

        return RedisCache(
            settings.redis_url,
            socket_timeout_s=settings.redis_timeout_s,
            retry_after_s=settings.redis_retry_after_s,
        )
    return MemoryCache()


def build_profiles(settings: Settings, store: DocumentStore | None = None) -> ProfileStore | None:
    """The configured shopper-profile store: a file per shopper, Redis, or none; with the
    catalog's ``store``, a profile that does not load is rebuilt from the shopper's events."""
    if settings.profiles == "none":
        return None
    half_life_s = settings.profile_half_life_days * DAY_S
    ttl_s = settings.profile_ttl_days * DAY_S
    max_events = settings.profile_max_events
    catalog = None if store is None else functools.partial(_catalog_of, store)
    if settings.profiles == "redis":
        from personalization.stores.redis import RedisProfileStore

        return RedisProfileStore(
            settings.profiles_redis_url or settings.redis_url,
            half_life_s=half_life_s,
            ttl_s=ttl_s,
            max_events=max_events,
            catalog=catalog,
        )
    return FileProfileStore(
        settings.profiles_dir,
        half_life_s=half_life_s,
        ttl_s=ttl_s,
        max_events=max_events,
        catalog=catalog,
    )


def _catalog_of(
    store: DocumentStore, product_ids: Sequence[str]
) -> tuple[Mapping[str, Product], Mapping[str, np.ndarray]]:
    """The products and their vectors, for rebuilding a damaged profile."""
    return store.get_products(product_ids), store.product_vectors(product_ids)


def build_personalization(
    settings: Settings,
    store: DocumentStore,
    profiles: ProfileStore | None,
    caches: Sequence[Cache] = (),
) -> Personalization:
    """What POST /events and personalized ranking use: ``profiles`` over the catalog ``store``,
    with the configured event window and, when there are profiles, the event spool."""
    return Personalization(
        profiles,
        store,
        personal_config(settings),
        caches=caches,
        window=EventWindow(
            clock_skew_s=settings.event_clock_skew_s,
            retention_s=settings.profile_ttl_days * DAY_S,
        ),
        spool=build_event_spool(settings) if profiles is not None else None,
    )


def build_event_spool(settings: Settings) -> EventSpool | None:
    """The spool of events waiting for a store that is down (None: EVENT_SPOOL_MAX_EVENTS
    is 0, or its folder cannot be written: logged, outages are then a 503)."""
    if settings.event_spool_max_events == 0:
        return None
    try:
        return EventSpool(settings.event_spool_path, max_events=settings.event_spool_max_events)
    except OSError as exc:
        logger.error("no event spool (POST /events is a 503 while a store is down): %s", exc)
        return None


def _counts_in_redis(settings: Settings) -> bool:
    """Whether trending and pair counts live in Redis: where the profiles do, and also with
    profiles in files and several workers, whose in-memory counts would each miss the others'
    events and overwrite one another's file (several workers require a Redis cache)."""
    return settings.profiles == "redis" or (settings.profiles == "file" and settings.workers > 1)


def build_trending_counts(settings: Settings) -> TrendingStore:
    """Where trending counts live: where the profiles do (Redis, a file under DATA_DIR), in
    Redis when several workers share file profiles, in memory when profiles are off."""
    config = TrendingConfig(
        half_life_days=settings.trending_half_life_days,
        window_days=settings.trending_window_days,
    )
    if _counts_in_redis(settings):
        from recommendation.stores.redis import RedisTrendingStore

        return RedisTrendingStore(settings.profiles_redis_url or settings.redis_url, config)
    path = settings.data_dir / "trending.json" if settings.profiles == "file" else None
    return MemoryTrendingStore(config, path)


def build_pair_counts(settings: Settings) -> PairCounts:
    """Where the counts of what goes together live: as the trending counts do."""
    if _counts_in_redis(settings):
        from recommendation.stores.redis import RedisPairCounts

        return RedisPairCounts(settings.profiles_redis_url or settings.redis_url)
    path = settings.data_dir / "together.json" if settings.profiles == "file" else None
    return MemoryPairCounts(path)


def personal_config(settings: Settings) -> PersonalConfig:
    """Personalized ranking and diversity from the settings."""
    return PersonalConfig(
        weight=settings.personalize_weight,
        depth=settings.personalize_depth,
        half_life_days=settings.profile_half_life_days,
        brand_cap=settings.brand_cap,
        dedupe_similarity=settings.dedupe_similarity,
    )


def build_store(settings: Settings, *, serving: bool = False) -> DocumentStore:
    """The configured document store (Elasticsearch connects lazily, on first use). While
    ``serving``, Elasticsearch calls have ELASTICSEARCH_TIMEOUT_S as deadline and go through a
    circuit breaker (ELASTICSEARCH_RETRY_AFTER_S); indexing keeps the client's longer
    timeouts and tries every call."""
    if settings.store == "elasticsearch":
        from retrieval.breaker import CircuitBreaker
        from retrieval.stores.elasticsearch import ElasticsearchStore

        store = functools.partial(
            ElasticsearchStore,
            settings.elasticsearch_url,
            alias=settings.elasticsearch_alias,
            shards=settings.elasticsearch_shards,
            replicas=settings.elasticsearch_replicas,
        )
        if not serving:
            return store()
        pause = settings.elasticsearch_retry_after_s
        return store(
            request_timeout_s=settings.elasticsearch_timeout_s,
            breaker=CircuitBreaker("Elasticsearch", retry_after_s=pause),
        )
    return EmbeddedStore(settings.index_dir)


def build_embedder(settings: Settings, *, serving: bool = False) -> Embedder:
    """The configured embedder; nothing loads yet. An ONNX embedder runs TORCH_THREADS
    intra-op threads, else one while ``serving`` (a request at a time per thread, as
    `configure_threads` sets torch) and every usable core for indexing."""
    return _embedder(settings.embedder, settings, serving=serving)


def build_cross_embedder(settings: Settings, *, serving: bool = False) -> Embedder | None:
    """The cross-lingual embedder, or None: 'none', or the same model as EMBEDDER (which is
    then multilingual itself)."""
    spec = settings.cross_embedder
    if spec.casefold() in ("", "none", "off") or spec == settings.embedder:
        return None
    return _embedder(spec, settings, serving=serving)


def _embedder(spec: str, settings: Settings, *, serving: bool) -> Embedder:
    if spec.startswith("hashing"):
        _, _, dim = spec.partition("-")
        return HashingEmbedder(int(dim) if dim else 256)
    if spec == USE_PACKAGED or spec.endswith(".onnx"):
        return UseOnnxEmbedder(spec)
    if settings.embedder_runtime != "torch":
        return OnnxSentenceEmbedder(
            spec,
            int8=settings.embedder_runtime == "onnx-int8",
            export_dir=embedder_exports(settings),
            threads=settings.torch_threads or (1 if serving else None),
            max_seq_length=settings.embedder_max_tokens,
        )
    return SentenceTransformerEmbedder(
        spec, device=settings.device, max_seq_length=settings.embedder_max_tokens
    )


def embedder_exports(settings: Settings) -> Path:
    """Where ONNX exports of embedders are kept (one folder per source model)."""
    return settings.models_dir / "embedders"


def build_reranker(settings: Settings) -> Reranker | None:
    """The configured re-ranker, or None when re-ranking is off."""
    if settings.reranker.casefold() in ("", "none", "off"):
        return None
    if settings.reranker.casefold() == "nanoranker":
        return NanoReranker()
    if settings.reranker.endswith(".onnx") or settings.reranker_runtime != "torch":
        # One intra-op thread while serving unless configured, as for torch.
        return OnnxCrossEncoderReranker(
            settings.reranker,
            file_name=ONNX_INT8 if settings.reranker_runtime == "onnx-int8" else ONNX_FP32,
            threads=settings.torch_threads or 1,
        )
    return CrossEncoderReranker(settings.reranker, device=settings.device)


def llm_name(settings: Settings) -> str:
    """The configured generator's name, known before it loads."""
    if settings.llm_backend == "openai":
        return settings.llm_model
    from generation.llm.gguf import model_file_name

    return model_file_name(settings.llm_model)


def build_llm(settings: Settings) -> LLM:
    """The configured generator backend (the model file is assembled if needed)."""
    if settings.llm_backend == "openai":
        from generation.llm.openai_compat import OpenAICompatibleLLM

        assert settings.llm_base_url is not None
        return OpenAICompatibleLLM(
            settings.llm_base_url,
            settings.llm_model,
            api_key=settings.llm_api_key,
            grammar_field=settings.llm_grammar_field,
        )
    from generation.llm.gguf import resolve_model_path
    from generation.llm.llama_cpp import LlamaCppLLM

    path = resolve_model_path(settings.llm_model, settings.models_dir)
    # llama.cpp would use half the cores by default; generation is the only heavy work then.
    threads = settings.llm_threads or os.cpu_count() or 1
    return LlamaCppLLM(
        str(path),
        n_ctx=settings.llm_context,
        n_threads=threads,
        prompt_cache_bytes=settings.llm_prompt_cache_mb << 20,
    )


# Embedders that only know English: their vectors for Chinese text are noise.
ENGLISH_ONLY_EMBEDDERS = frozenset(
    {"packaged:all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2", "all-minilm-l6-v2"}
)


def _cjk_semantic_weight(settings: Settings) -> float:
    if settings.semantic_weight_cjk is not None:
        return settings.semantic_weight_cjk
    if settings.embedder.casefold() in ENGLISH_ONLY_EMBEDDERS:
        return 0.0
    return settings.semantic_weight


@dataclass(frozen=True)
class RerankScope:
    """What a re-ranker is used for: queries in CJK languages, passage searches."""

    cjk: bool
    passages: bool


def rerank_scope(settings: Settings) -> RerankScope:
    """Which queries the configured re-ranker re-orders: the settings' choice, else what its
    training covered. Re-rankers measured to hurt Chinese queries (nanoranker, MiniLM adapted
    to English queries) are routed around them."""
    cjk, passages = True, True
    if settings.reranker.casefold() == "nanoranker":
        cjk = False
    else:
        manifest = read_manifest(settings.reranker)
        queries = (manifest or {}).get("queries", {})
        if manifest is not None:
            cjk = bool(queries.get("cjk", 0))
            # Older manifests lack the counts: a product-only template set tells.
            passage_queries = queries.get(
                "passages", queries.get("by_template", {}).get("qa_question", 0)
            )
            passages = bool(passage_queries)
    return RerankScope(
        cjk=settings.rerank_cjk if settings.rerank_cjk is not None else cjk,
        passages=settings.rerank_passages if settings.rerank_passages is not None else passages,
    )


def search_config_key(config: SearchConfig) -> dict[str, object]:
    """Every field of the search configuration, in a stable JSON-able form (mappings sorted)."""
    return {
        name: sorted(value.items()) if isinstance(value, Mapping) else value
        for name, value in sorted(asdict(config).items())
    }


def search_config(settings: Settings) -> SearchConfig:
    """Retrieval tuning from the settings."""
    scope = rerank_scope(settings)
    return SearchConfig(
        candidates=settings.candidates,
        rrf_k=settings.rrf_k,
        weights={
            "lexical": settings.lexical_weight,
            "semantic": settings.semantic_weight,
            "crosslingual": settings.crosslingual_weight,
        },
        cjk_weights={"semantic": _cjk_semantic_weight(settings)},
        rerank_depth=settings.rerank_depth,
        rerank_hybrid_weight=settings.rerank_hybrid_weight,
        rerank_cjk=scope.cjk,
        rerank_passages=scope.passages,
        min_similarity=settings.semantic_min_similarity,
        cross_min_similarity=settings.crosslingual_min_similarity,
        weak_match=WeakMatch(
            coverage=settings.crosslingual_weak_coverage, factor=settings.crosslingual_weak_factor
        )
        if settings.crosslingual_weak_coverage > 0
        else None,
    )


def build_answers(
    settings: Settings,
    search: HybridSearch,
    llm: LLM,
    conversations: ConversationStore | None = None,
) -> AnswerService:
    """The answer service over ``search`` and ``llm``, with the settings' sources, checks and
    admission control (the API's, the CLI's and the benchmarks')."""
    return AnswerService(
        search,
        llm,
        options=generation_options(settings),
        advice_sources=settings.advice_sources,
        ask_sources=settings.ask_sources,
        constrained=settings.llm_constrained,
        ask_min_evidence=settings.ask_min_evidence,
        min_quote_relevance=settings.ask_min_quote_relevance,
        admission=Admission(settings.llm_concurrency, settings.llm_queue),
        queue_timeout_s=settings.llm_timeout_s,
        conversations=conversations,
    )


def generation_options(settings: Settings) -> GenerationOptions:
    """Decoding options from the settings."""
    return GenerationOptions(max_tokens=settings.llm_max_tokens, timeout_s=settings.llm_timeout_s)


def configure_threads(settings: Settings, *, serving: bool = False) -> None:
    """Set the thread count of torch and of numpy's BLAS: the configured one, else one while
    serving and the libraries' own choice (every core) for indexing's large batches.

    A query is a batch of one: a second thread gains nothing, and BLAS threads left spinning
    after the kNN product slow the next query's torch embedding by half (measured: hybrid
    search 48 ms median with two BLAS threads, 24 ms with one)."""
    threads = settings.torch_threads or (1 if serving else None)
    if threads:
        import torch
        from threadpoolctl import threadpool_limits

        torch.set_num_threads(threads)
        threadpool_limits(limits=threads, user_api="blas")


def build_services(
    settings: Settings, *, llm: LLM | None = None, background_generator: bool = False
) -> Services:
    """Every backend, loaded and warm; with ``background_generator`` the generator is built,
    loaded and primed in the background (`DeferredLLM`), so that search is served meanwhile."""
    configure_threads(settings, serving=True)
    store = build_store(settings, serving=True)
    cache = build_cache(settings)
    embedder = build_embedder(settings, serving=True)
    if cache is not None:
        embedder = CachedEmbedder(embedder, cache, ttl_s=settings.cache_embedding_ttl_s)
    cross_embedder = build_cross_embedder(settings, serving=True)
    if cache is not None and cross_embedder is not None:
        cross_embedder = CachedEmbedder(cross_embedder, cache, ttl_s=settings.cache_embedding_ttl_s)
    reranker = build_reranker(settings)
    search = HybridSearch(
        store, embedder, reranker, search_config(settings), cross_embedder=cross_embedder
    )
    prime = settings.llm_prime and settings.llm_backend == "llama-cpp" and llm is None
    deferred = None
    if llm is None and background_generator:
        llm = deferred = DeferredLLM(
            functools.partial(build_llm, settings), name=llm_name(settings)
        )
    llm = llm or build_llm(settings)
    # in the cache backend (Redis in the stack); in process when caching is off
    conversations = ConversationStore(
        cache if cache is not None else MemoryCache(),
        ttl_s=settings.conversation_ttl_s,
        max_turns=settings.conversation_turns,
    )
    answers = build_answers(settings, search, llm, conversations)
    personalization = build_personalization(
        settings,
        store,
        build_profiles(settings, store),
        caches=[conversations.cache],  # the result cache, when there is one, is this one
    )
    text.warm_up()
    search.warm_up()
    if deferred is None:
        answers.warm_up(prime=prime)
    else:
        deferred.on_ready = answers.prime if prime else None
        deferred.warm_up()
    logger.info(
        "services ready: store=%s embedder=%s (%s) reranker=%s llm=%s",
        settings.store,
        embedder.name,
        settings.embedder_runtime,
        reranker.name if reranker else "none",
        llm.name,
    )
    results = (
        ResultCache(
            cache,
            search_ttl_s=settings.cache_search_ttl_s,
            answer_ttl_s=settings.cache_answer_ttl_s,
        )
        if cache is not None
        else None
    )
    try:
        stats = store.stats()
        logger.info(
            "store %s: %d products, catalog %s", stats.backend, stats.products, stats.version
        )
        if stats.products and stats.embedding_model not in (None, embedder.name):
            logger.error(
                "the index holds vectors of '%s', the embedder is '%s': semantic search "
                "compares unlike vectors until the catalog is re-indexed (shopguide index "
                "--prune) or SHOPGUIDE_EMBEDDER(_RUNTIME) matches the index",
                stats.embedding_model,
                embedder.name,
            )
        cross_name = cross_embedder.name if cross_embedder is not None else None
        if stats.products and stats.cross_embedding_model != cross_name:
            logger.warning(
                "the index holds cross-lingual vectors of '%s', the cross-lingual embedder is "
                "'%s': queries find only products in their own language until the catalog is "
                "re-indexed (shopguide index --prune)",
                stats.cross_embedding_model,
                cross_name,
            )
    except StoreError as exc:
        logger.error("the %s store is not available yet: %s", settings.store, exc)
    return Services(
        settings, store, embedder, reranker, search, llm, answers, cache, results, personalization
    )
