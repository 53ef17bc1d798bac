"""All configuration, read once from the environment (prefix ``SHOPGUIDE_``) or a ``.env`` file.

Only the `app` package reads settings; every other package receives plain arguments.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from personalization.events import MAX_CLOCK_SKEW_S
from retrieval.embedders.base import DEFAULT_MAX_TOKENS

ORIGIN_PATTERN = r"^(\*|https?://[^/\s?#]+)$"


class Settings(BaseSettings):
    """Settings of the service, the indexer and the CLI."""

    model_config = SettingsConfigDict(env_prefix="SHOPGUIDE_", env_file=".env", extra="ignore")

    data_dir: Path = Field(Path("var"), description="Index, assembled models and other state.")
    model_dir: Path | None = Field(None, description="Assembled models (default: DATA_DIR/models).")
    store: Literal["embedded", "elasticsearch"] = "embedded"
    elasticsearch_url: str = Field(
        "http://localhost:9200", description="Used when store=elasticsearch."
    )
    elasticsearch_alias: str = Field("shopguide-units", pattern=r"^[a-z0-9][a-z0-9_-]*$")
    elasticsearch_shards: int = Field(1, ge=1, le=64)
    elasticsearch_replicas: int = Field(0, ge=0, le=8)
    elasticsearch_timeout_s: float = Field(
        2.0,
        gt=0,
        le=60,
        description="Deadline of each search and document read the API sends Elasticsearch "
        "(not retried on timeout); index administration and bulk writes wait longer.",
    )
    elasticsearch_retry_after_s: float = Field(
        5.0,
        gt=0,
        le=300,
        description="After Elasticsearch times out or cannot be reached, the API answers 503 "
        "with this Retry-After at once, without calling it, for this long; then one request "
        "probes it (a circuit breaker).",
    )

    cache: Literal["memory", "redis", "none"] = "memory"
    redis_url: str = Field("redis://localhost:6379/0", description="Used when cache=redis.")
    redis_timeout_s: float = Field(
        0.1, gt=0, le=10, description="Bound on each Redis connect and reply."
    )
    redis_retry_after_s: float = Field(
        5.0, ge=0, description="After a Redis failure, serve without cache this long, then retry."
    )
    cache_search_ttl_s: float = Field(300.0, gt=0)
    cache_answer_ttl_s: float = Field(3600.0, gt=0)
    conversation_ttl_s: float = Field(
        1800.0, gt=0, description="How long an idle conversation is remembered."
    )
    conversation_turns: int = Field(6, ge=1, le=50, description="Turns a conversation keeps.")
    cache_embedding_ttl_s: float = Field(86400.0, gt=0)

    embedder: str = Field(
        "packaged:all-minilm-l6-v2",
        description="sentence-transformers model: hub name, local folder, packaged:<name>, "
        "or 'hashing' for the model-free embedder.",
    )
    embedder_runtime: Literal["torch", "onnx", "onnx-int8"] = Field(
        "onnx-int8",
        description="How a sentence-transformers EMBEDDER runs: exported to ONNX and run with "
        "ONNX Runtime, onnx-int8 (dynamic int8, 7-bit weights: the same vectors on every "
        "x86-64 CPU, ~8x torch's indexing speed, named <model>@onnx-int8) or onnx (fp32: "
        "torch's vectors, so a torch-built index stays valid); or torch, for models the ONNX "
        "path cannot run. Changing between int8 and the others means re-indexing. The export "
        "is made on first use into MODEL_DIR/embedders, once per source model (`shopguide "
        "export-embedder` makes it ahead). No effect on hashing or USE.",
    )
    embedder_max_tokens: int = Field(
        DEFAULT_MAX_TOKENS,
        ge=8,
        le=8192,
        description="Tokens of a text the sentence-transformers EMBEDDER reads (longer texts are "
        "cut; a model with a shorter limit keeps its own). 128, what MiniLM was trained on, "
        "keeps the benchmarks' relevance of 256 and indexes 1.37x as fast. Any value but 256 is "
        "part of the vectors' name (<model>@<N>-tokens): changing it means re-indexing.",
    )
    cross_embedder: str = Field(
        "packaged:use-multilingual",
        description="Multilingual embedder of the cross-lingual vector space, in which a "
        "Chinese query finds English products and an English query Chinese ones (only units of "
        "the other script are searched there, so a catalog in one language ranks as without "
        "it); 'none' for no cross-lingual space, or when EMBEDDER is multilingual itself. "
        "Changing it means re-indexing with prune.",
    )
    crosslingual_weight: float = Field(
        0.5,
        ge=0,
        description="RRF weight of the cross-lingual list (chosen on dev queries: BENCHMARKS.md, "
        "issue 18 second round); 0 turns cross-lingual search off at query time.",
    )
    crosslingual_weak_coverage: float = Field(
        0.5,
        ge=0,
        le=1,
        description="A query whose best BM25 hit holds fewer than this share of its terms is "
        "taken to be in another language than the catalog: its cross-lingual list then weighs "
        "CROSSLINGUAL_WEAK_FACTOR times its lexical and semantic lists together (if that is "
        "more than CROSSLINGUAL_WEIGHT). 0 turns the rule off. Chosen on dev queries: "
        "BENCHMARKS.md, issue 18 fourth round.",
    )
    crosslingual_weak_factor: float = Field(
        1.0,
        ge=0,
        description="See CROSSLINGUAL_WEAK_COVERAGE; at 1 the other language's results "
        "interleave with the query's own, above 1 they come first.",
    )
    crosslingual_min_similarity: float | None = Field(
        0.2,
        ge=-1,
        le=1,
        description="Leave out cross-lingual hits less similar than this (cosine of the "
        "CROSS_EMBEDDER; -1 keeps them all). 0.2, for USE, was the best on dev queries of "
        "0, 0.2 and 0.3 (BENCHMARKS.md, issue 18 fourth round); another CROSS_EMBEDDER needs "
        "its own.",
    )
    reranker: str = Field(
        "none",
        description="'none', 'nanoranker', or a CrossEncoder model (hub name, local folder, "
        "packaged:<name>).",
    )
    reranker_runtime: Literal["torch", "onnx", "onnx-int8"] = Field(
        "torch",
        description="How a cross-encoder folder runs: torch, or its ONNX export (`shopguide "
        "export-reranker`) with ONNX Runtime: model.onnx (fp32) or model.int8.onnx (dynamic "
        "int8). A RERANKER ending in .onnx always runs that file.",
    )
    device: str = "cpu"
    torch_threads: int | None = Field(None, ge=1)

    candidates: int = Field(100, ge=1, le=1000, description="Top k of each retriever.")
    rrf_k: float = Field(60.0, gt=0)
    lexical_weight: float = Field(1.0, ge=0)
    semantic_weight: float = Field(1.0, ge=0)
    semantic_weight_cjk: float | None = Field(
        None,
        ge=0,
        description="Vector-side weight for queries in Chinese, Japanese or Korean. Unset: 0 "
        "with the English-only default MiniLM (it lowered Chinese MRR@10 from 0.887 to 0.720), "
        "otherwise SEMANTIC_WEIGHT.",
    )
    rerank_depth: int = Field(20, ge=1, le=200)
    rerank_hybrid_weight: float = Field(
        1.0,
        ge=0,
        description="Weight of the hybrid's own order when it is fused (RRF) with the "
        "re-ranker's order over the re-ranked top; 0 keeps the re-ranker's order alone.",
    )
    rerank_cjk: bool | None = Field(
        None,
        description="Re-rank queries in Chinese, Japanese or Korean. Unset: only with a "
        "re-ranker whose training.json counts such queries (an adapted one trained on them) or "
        "a cross-encoder without a manifest; never nanoranker (it lowered Chinese MRR@10).",
    )
    rerank_passages: bool | None = Field(
        None,
        description="Re-rank passage searches (questions about a product). Unset: unless the "
        "re-ranker's training.json shows it was trained on product queries only.",
    )
    semantic_min_similarity: float | None = Field(
        0.3,
        ge=-1,
        le=1,
        description="Leave out vector hits less similar than this (cosine). 0.3 suits the "
        "default MiniLM, whose unrelated products score below about 0.25; set it per model.",
    )

    llm_backend: Literal["llama-cpp", "openai"] = "llama-cpp"
    llm_model: str = Field(
        "qwen2.5-coder-1.5b-instruct-q4_k_m",
        description="llama-cpp: a packaged model name, a .gguf path, or hf:<repo>/<file>; "
        "openai: the model name the server serves.",
    )
    llm_base_url: str | None = Field(None, description="OpenAI-compatible server, e.g. .../v1")
    llm_api_key: str | None = None
    llm_threads: int | None = Field(None, ge=1)
    llm_context: int = Field(4096, ge=512)
    llm_max_tokens: int = Field(256, ge=16, le=4096)
    llm_timeout_s: float = Field(120.0, gt=0)
    llm_constrained: bool = Field(
        True,
        description="Decode answers under a grammar that allows only claims citing the given "
        "sources (llama.cpp); other backends are validated and repaired afterwards.",
    )
    llm_grammar_field: str | None = Field(
        None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$",
        description="With LLM_BACKEND=openai: the request field the server reads a GBNF "
        "grammar from, so that answers are constrained there too ('grammar' for llama.cpp's "
        "server, 'guided_grammar' for vLLM). Unset: free text, validated afterwards.",
    )
    llm_prompt_cache_mb: int = Field(
        256,
        ge=0,
        description="llama.cpp's prompt cache: the model state after recent prompts, so that a "
        "prompt starting like an earlier one skips reading that prefix again (about 4 MB a "
        "prompt; 0: off).",
    )
    llm_prime: bool = Field(
        True, description="Read the prompts' fixed instructions into the cache at start-up."
    )
    advice_sources: int = Field(5, ge=1, le=20)
    ask_sources: int = Field(5, ge=1, le=20)
    ask_min_evidence: float | None = Field(
        0.416,
        ge=-1,
        le=1,
        description="Answer 'cannot answer' without asking the model when no statement (a "
        "sentence, a clause, an attribute) of the product's best passages is at least this "
        "similar to the question (cosine of the EMBEDDER; tuned for the "
        "default MiniLM on half of ePQA by `python -m benchmarks.answers --datasets gate`; "
        "retune it for another embedder). Unset: always ask the model.",
    )
    ask_min_quote_relevance: float | None = Field(
        0.35,
        ge=-1,
        le=1,
        description="A claim whose quote is less similar than this to the question (cosine of "
        "the EMBEDDER) and shares none of its words does not answer it, and is dropped. Unset: "
        "only the word overlap and the answer's kind are checked.",
    )
    llm_concurrency: int = Field(
        1,
        ge=1,
        le=256,
        description="Answers generated at once. 1 for the in-process model (it writes one at a "
        "time); an OpenAI-compatible server that batches (vLLM, TGI) takes more.",
    )
    llm_queue: int = Field(
        4,
        ge=0,
        le=10_000,
        description="Answers that may wait for the generator; an asker beyond that gets 503 "
        "with Retry-After at once instead of waiting minutes.",
    )

    profiles: Literal["file", "redis", "none"] = Field(
        "file",
        description="Shopper profiles from behaviour events (POST /events): a file per shopper "
        "under DATA_DIR/profiles, Redis, or none (personalization off).",
    )
    profiles_redis_url: str | None = Field(
        None,
        description="Redis of the profiles when profiles=redis (default: REDIS_URL). Profiles are "
        "state, not cache: give them a Redis that persists and does not evict.",
    )
    profile_half_life_days: float = Field(
        30.0, gt=0, description="An event counts half as much after this many days."
    )
    profile_ttl_days: float = Field(
        180.0, gt=0, description="A profile is forgotten this long after its last event."
    )
    profile_max_events: int = Field(1000, ge=1, le=100_000, description="Events kept per shopper.")
    event_clock_skew_s: float = Field(
        300.0,
        ge=0,
        le=MAX_CLOCK_SKEW_S,
        description="POST /events refuses (by position, with the reason) an event dated more "
        "than this many seconds after the server's time (a phone's clock ahead), and one older "
        "than PROFILE_TTL_DAYS.",
    )
    event_spool_dir: Path | None = Field(
        None,
        description="Where POST /events queues events while the profile store or the catalog "
        "is down, a file per API process, applied when it returns (default: "
        "DATA_DIR/event-spool).",
    )
    event_spool_max_events: int = Field(
        100_000,
        ge=0,
        le=10_000_000,
        description="Events one API process may queue while a store is down; beyond that, "
        "POST /events answers 503 with Retry-After (0: no spool, every outage is a 503).",
    )
    event_spool_drain_s: float = Field(
        5.0, gt=0, le=3600, description="How often queued events are tried again."
    )
    trending_half_life_days: float = Field(
        3.0,
        gt=0,
        le=365,
        description="GET /trending: a day's views, carts and purchases weigh half this many days "
        "later. The counts live where profiles do (DATA_DIR/trending.json, or Redis).",
    )
    trending_window_days: int = Field(
        14, ge=1, le=365, description="GET /trending: days of events counted at all."
    )
    personalize_weight: float = Field(
        0.3,
        ge=0,
        le=5,
        description="Weight of the personal score against relevance: a result rises at most about "
        "WEIGHT x DEPTH places (0: personalization off).",
    )
    personalize_depth: int = Field(
        20, ge=1, le=200, description="Only the best this many results by relevance re-order."
    )
    brand_cap: int | None = Field(
        None, ge=1, le=50, description="At most this many products of one brand on a page."
    )
    dedupe_similarity: float | None = Field(
        None,
        gt=0,
        le=1,
        description="Leave out a result whose vector is at least this similar (cosine) to one "
        "ranked above it, or whose title is the same (unset: keep near-duplicates).",
    )

    insecure_local: bool = Field(
        False,
        description="Let every request in as admin, without credentials: a laptop demo only "
        "(logged loudly at start). Otherwise every endpoint but /health and the docs needs an "
        "API key or a shopper token.",
    )
    local_key: bool = Field(
        True,
        description="On a start with no API key and no shopper-token key configured, make an "
        "admin key for this machine (saved in DATA_DIR/local-api-key, owner only). Off in the "
        "compose stack, which requires keys: until one is added, every request but /health and "
        "the docs is refused (401).",
    )
    api_keys: str = Field(
        "",
        description="API keys of the shop's services: a JSON list of {id, sha256, scopes} "
        "(`shopguide keys new` prints one). Scopes: search, events, profiles, admin.",
    )
    api_keys_file: Path | None = Field(
        None,
        description="A JSON file of more keys, in the same form, re-read when it changes (keys "
        "rotate without a restart). Default: DATA_DIR/api-keys.json.",
    )
    web_demo: bool = Field(
        True,
        description="Let the web page at / start demo sessions (POST /web/session: a token for "
        "a random demo shopper 'demo-…', 12 h, signed with a secret made on first use in "
        "DATA_DIR/web-demo-secret). Only while LOCAL_KEY is on and shoppers' tokens are not "
        "configured: a laptop or a trial, never the compose stack.",
    )
    shopper_token_secret: SecretStr | None = Field(
        None,
        description="HS256 secret (32 bytes or more) the shop signs shopper tokens with; the "
        "token's subject is the user id.",
    )
    shopper_token_public_key: Path | None = Field(
        None,
        description="PEM public key for shopper tokens signed RS256, ES256 or EdDSA (instead of "
        "SHOPPER_TOKEN_SECRET).",
    )
    shopper_token_issuer: str | None = Field(None, description="Required `iss` of shopper tokens.")
    shopper_token_audience: str | None = Field(
        None, description="Required `aud` of shopper tokens."
    )

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    workers: int = Field(
        1,
        ge=1,
        le=64,
        description="API worker processes (uvicorn's), each with its own models and services, "
        "sharing the port. More than 1 needs the state they must agree on shared: CACHE=redis "
        "(conversations, and a shopper's cached results that erasure deletes) and rate limits "
        "in Redis; profiles in files or Redis. Each worker loads its own llama.cpp generator.",
    )
    max_body_bytes: int = Field(
        1024 * 1024,
        ge=1024,
        description="A request body over this many bytes is a 413 (payload_too_large): from its "
        "Content-Length, or as a chunked body streams in. A full batch of 1000 events with long "
        "queries can pass the 1 MiB default.",
    )
    rate_limit_search_per_minute: int = Field(
        600,
        ge=0,
        description="Searches and product reads a minute per API key, shopper or local caller; "
        "beyond that, 429 with Retry-After (0: unlimited).",
    )
    rate_limit_answers_per_minute: int = Field(
        30,
        ge=0,
        description="Answers (ask, advice) a minute per API key, shopper or local caller; beyond "
        "that, 429 with Retry-After (0: unlimited).",
    )
    rate_limit_backend: Literal["memory", "redis"] | None = Field(
        None,
        description="Where rate limits are counted: in this process, or in Redis (REDIS_URL), "
        "shared by every API worker. Unset: redis when CACHE=redis, otherwise memory. A Redis "
        "that fails lets requests through (limits are protection, not correctness).",
    )
    cors_origins: Annotated[list[Annotated[str, Field(pattern=ORIGIN_PATTERN)]], NoDecode] = Field(
        default_factory=list,
        description="Origins whose pages may call the API from a browser (CORS), e.g. "
        "https://shop.example: comma-separated or a JSON list; '*' for any (credentials are "
        "never allowed: callers send an Authorization header). Empty: no CORS headers at all.",
    )
    log_level: str = "INFO"
    log_json: bool = True

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            value = json.loads(value) if value.lstrip().startswith("[") else value.split(",")
        if isinstance(value, list | tuple):
            value = [v.strip().rstrip("/") if isinstance(v, str) else v for v in value]
            value = [v for v in value if v != ""]
        return value

    @model_validator(mode="after")
    def _check_backend(self) -> Settings:
        if self.llm_backend == "openai" and not self.llm_base_url:
            msg = "SHOPGUIDE_LLM_BASE_URL is required when SHOPGUIDE_LLM_BACKEND=openai"
            raise ValueError(msg)
        problems = self.shared_state_problems()
        if problems:
            msg = f"SHOPGUIDE_WORKERS={self.workers} needs shared state: " + "; ".join(problems)
            raise ValueError(msg)
        return self

    def shared_state_problems(self) -> list[str]:
        """What keeps WORKERS processes from agreeing (empty with one worker): state that
        would live in each worker's memory, where a follow-up or an erasure misses it."""
        if self.workers == 1:
            return []
        problems = []
        if self.cache != "redis":
            problems.append(
                f"with SHOPGUIDE_CACHE={self.cache} conversations and a shopper's cached "
                "results live in each worker's memory (a follow-up question reaching another "
                "worker loses its conversation; erasing a shopper misses the other workers): "
                "set SHOPGUIDE_CACHE=redis and SHOPGUIDE_REDIS_URL"
            )
        limited = self.rate_limit_search_per_minute or self.rate_limit_answers_per_minute
        if self.rate_limit_store == "memory" and limited:
            problems.append(
                "with SHOPGUIDE_RATE_LIMIT_BACKEND=memory each worker counts its own limits "
                f"(a caller would get up to {self.workers} times each): leave it unset with "
                "SHOPGUIDE_CACHE=redis, set it to redis, or set the limits to 0"
            )
        return problems

    @property
    def shopper_tokens_configured(self) -> bool:
        """Whether the shop signs its shoppers' tokens (a secret or a public key is set)."""
        return self.shopper_token_secret is not None or self.shopper_token_public_key is not None

    @property
    def web_demo_sessions(self) -> bool:
        """Whether the web page may start demo shopper sessions (see ``web_demo``)."""
        return self.web_demo and self.local_key and not self.shopper_tokens_configured

    @property
    def web_demo_secret_file(self) -> Path:
        """The secret demo shopper tokens are signed with, made on first use."""
        return self.data_dir / "web-demo-secret"

    @property
    def keys_file(self) -> Path:
        """The file of API keys re-read while serving."""
        return self.api_keys_file or self.data_dir / "api-keys.json"

    @property
    def profiles_dir(self) -> Path:
        """Where the file profile store keeps one file per shopper."""
        return self.data_dir / "profiles"

    @property
    def event_spool_path(self) -> Path:
        """Where events wait while a store is down (EVENT_SPOOL_DIR, else under DATA_DIR)."""
        return self.event_spool_dir or self.data_dir / "event-spool"

    @property
    def index_dir(self) -> Path:
        """Where the embedded store keeps its index."""
        return self.data_dir / "index"

    @property
    def rate_limit_store(self) -> Literal["memory", "redis"]:
        """Where rate limits are counted: RATE_LIMIT_BACKEND, or else as the cache."""
        if self.rate_limit_backend is not None:
            return self.rate_limit_backend
        return "redis" if self.cache == "redis" else "memory"

    @property
    def models_dir(self) -> Path:
        """Where assembled model files are kept."""
        return self.model_dir or self.data_dir / "models"


@lru_cache
def get_settings() -> Settings:
    """The settings, read once."""
    return Settings()
