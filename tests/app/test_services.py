import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from app.services import (
    RerankScope,
    build_answers,
    build_cache,
    build_embedder,
    build_reranker,
    configure_threads,
    rerank_scope,
    search_config,
    search_config_key,
)
from app.settings import Settings
from generation.llm.fake import RecordingLLM
from retrieval.caches.memory import MemoryCache
from retrieval.caches.redis import RedisCache
from retrieval.embedders.hashing import HashingEmbedder
from retrieval.embedders.onnx_sentence import OnnxSentenceEmbedder, usable_cores
from retrieval.embedders.sentence_transformers import SentenceTransformerEmbedder
from retrieval.embedders.use_onnx import UseOnnxEmbedder
from retrieval.fusion import WeakMatch
from retrieval.rankers.cross_encoder import CrossEncoderReranker
from retrieval.rankers.nanoranker import NanoReranker
from retrieval.rankers.onnx_cross_encoder import OnnxCrossEncoderReranker
from retrieval.search import HybridSearch, SearchConfig


def _settings(**values: object) -> Settings:
    return Settings(**values, _env_file=None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("spec", "runtime", "kind", "name"),
    [
        ("hashing-64", "onnx-int8", HashingEmbedder, "hashing-64"),
        ("packaged:use-multilingual", "onnx-int8", UseOnnxEmbedder, "packaged:use-multilingual"),
        ("/models/use.onnx", "torch", UseOnnxEmbedder, "/models/use.onnx"),
        (
            "packaged:all-minilm-l6-v2",
            "onnx-int8",
            OnnxSentenceEmbedder,
            "packaged:all-minilm-l6-v2@128-tokens@onnx-int8",
        ),
        (
            "packaged:all-minilm-l6-v2",
            "torch",
            SentenceTransformerEmbedder,
            "packaged:all-minilm-l6-v2@128-tokens",
        ),
        (
            "sentence-transformers/all-MiniLM-L6-v2",
            "torch",
            SentenceTransformerEmbedder,
            "sentence-transformers/all-MiniLM-L6-v2@128-tokens",
        ),
    ],
)
def test_the_embedder_setting_picks_the_backend(
    spec: str, runtime: str, kind: type, name: str | None
) -> None:
    embedder = build_embedder(_settings(embedder=spec, embedder_runtime=runtime))  # no load yet
    assert isinstance(embedder, kind)
    assert embedder.name == (name or spec)


def test_the_default_embedder_runs_int8_on_onnx_runtime() -> None:
    embedder = build_embedder(_settings())
    assert isinstance(embedder, OnnxSentenceEmbedder)
    assert embedder.name == "packaged:all-minilm-l6-v2@128-tokens@onnx-int8"


@pytest.mark.parametrize(
    ("max_tokens", "name"),
    [(256, "packaged:all-minilm-l6-v2"), (512, "packaged:all-minilm-l6-v2@512-tokens")],
)
@pytest.mark.parametrize("runtime", ["torch", "onnx"])
def test_the_token_limit_is_part_of_the_vectors_name(
    runtime: str, max_tokens: int, name: str
) -> None:
    """256 (indexes built before the setting) is left out; torch and ONNX fp32 agree."""
    settings = _settings(embedder_runtime=runtime, embedder_max_tokens=max_tokens)
    embedder = build_embedder(settings)
    assert embedder.name == name
    assert embedder.max_seq_length == max_tokens  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("runtime", "serving", "configured", "name", "threads"),
    [
        ("onnx", True, None, "packaged:all-minilm-l6-v2@128-tokens", 1),
        ("onnx", False, None, "packaged:all-minilm-l6-v2@128-tokens", None),
        ("onnx-int8", True, 3, "packaged:all-minilm-l6-v2@128-tokens@onnx-int8", 3),
        ("onnx-int8", False, 2, "packaged:all-minilm-l6-v2@128-tokens@onnx-int8", 2),
    ],
)
def test_the_embedder_runtime_picks_torch_or_onnx(
    tmp_path: Path,
    runtime: str,
    serving: bool,
    configured: int | None,
    name: str,
    threads: int | None,
) -> None:
    settings = _settings(
        embedder="packaged:all-minilm-l6-v2",
        embedder_runtime=runtime,
        torch_threads=configured,
        data_dir=tmp_path,
    )
    embedder = build_embedder(settings, serving=serving)  # nothing loads or exports yet
    assert isinstance(embedder, OnnxSentenceEmbedder)
    assert embedder.name == name and embedder.int8 == (runtime == "onnx-int8")
    assert embedder.threads == (threads or usable_cores())
    assert embedder.export_dir == tmp_path / "models" / "embedders"
    assert not (tmp_path / "models").exists()
    for spec in ("hashing-64", "packaged:use-multilingual"):  # not sentence-transformers
        other = build_embedder(_settings(embedder=spec, embedder_runtime=runtime))
        assert not isinstance(other, OnnxSentenceEmbedder)


def test_an_onnx_path_that_does_not_exist_fails_clearly(tmp_path: Path) -> None:
    embedder = build_embedder(_settings(embedder=str(tmp_path / "missing.onnx")))
    with pytest.raises(ValueError, match=r"no ONNX model at .*missing\.onnx"):
        embedder.warm_up()


def test_reranker_off_and_nanoranker() -> None:
    assert build_reranker(_settings(reranker="none")) is None
    assert isinstance(build_reranker(_settings(reranker="nanoranker")), NanoReranker)


@pytest.mark.parametrize(
    ("spec", "runtime", "name"),
    [
        ("var/reranker", "torch", None),
        ("var/reranker", "onnx", "var/reranker/model.onnx"),
        ("var/reranker", "onnx-int8", "var/reranker/model.int8.onnx"),
        ("var/reranker/model.int8.onnx", "torch", "var/reranker/model.int8.onnx"),
        ("/m/custom.onnx", "onnx-int8", "/m/custom.onnx"),
    ],
)
def test_the_reranker_runtime_picks_torch_or_onnx(
    spec: str, runtime: str, name: str | None
) -> None:
    reranker = build_reranker(_settings(reranker=spec, reranker_runtime=runtime, torch_threads=2))
    if name is None:
        assert isinstance(reranker, CrossEncoderReranker) and reranker.name == spec
        return
    assert isinstance(reranker, OnnxCrossEncoderReranker)  # nothing loads yet
    assert reranker.name == name and reranker.threads == 2
    assert build_reranker(_settings(reranker=spec, reranker_runtime=runtime)).threads == 1  # type: ignore[union-attr]


def _adapted(folder: Path, queries: dict[str, object]) -> str:
    folder.mkdir()
    (folder / "training.json").write_text(json.dumps({"queries": queries}))
    return str(folder)


def test_the_rerank_scope_follows_what_the_reranker_was_trained_for(tmp_path: Path) -> None:
    english_products = _adapted(tmp_path / "en", {"by_template": {"title_short": 9}, "cjk": 0})
    everything = _adapted(
        tmp_path / "all", {"by_template": {"qa_question": 3}, "passages": 3, "cjk": 2}
    )
    assert rerank_scope(_settings(reranker=english_products)) == RerankScope(False, False)
    onnx_file = _settings(reranker=f"{english_products}/model.int8.onnx")
    assert rerank_scope(onnx_file) == RerankScope(False, False)  # the folder's manifest
    assert rerank_scope(_settings(reranker=everything)) == RerankScope(True, True)
    # a hub model has no manifest: the shop chose it for everything; nanoranker hurt Chinese
    assert rerank_scope(_settings(reranker="cross-encoder/x")) == RerankScope(True, True)
    assert rerank_scope(_settings(reranker="nanoranker")) == RerankScope(False, True)
    # the settings decide when given
    forced = _settings(reranker=english_products, rerank_cjk=True, rerank_passages=True)
    assert rerank_scope(forced) == RerankScope(True, True)
    config = search_config(_settings(reranker="nanoranker", rerank_hybrid_weight=0.5))
    assert (config.rerank_cjk, config.rerank_passages) == (False, True)
    assert config.rerank_hybrid_weight == 0.5


def test_an_unreadable_manifest_falls_back_to_reranking_everything(tmp_path: Path) -> None:
    (tmp_path / "training.json").write_text("{not json")
    assert rerank_scope(_settings(reranker=str(tmp_path))) == RerankScope(True, True)


def test_every_search_setting_is_part_of_the_cache_key() -> None:
    """A cached result must not outlive a change to any field of the search configuration."""
    base = SearchConfig()
    key = json.dumps(search_config_key(base))
    for field in dataclasses.fields(SearchConfig):
        value = getattr(base, field.name)
        changed: Any
        if isinstance(value, bool):
            changed = not value
        elif isinstance(value, int | float):
            changed = value + 1
        elif value is None:
            changed = 0.5
        elif isinstance(value, WeakMatch):
            changed = dataclasses.replace(value, coverage=value.coverage / 2)
        else:
            changed = {**value, "extra": 2.0}
        other = dataclasses.replace(base, **{field.name: changed})
        assert json.dumps(search_config_key(other)) != key, field.name
    for rule in (None, WeakMatch(factor=2.0)):
        other = dataclasses.replace(base, weak_match=rule)
        assert json.dumps(search_config_key(other)) != key, rule


def test_cache_backends() -> None:
    assert build_cache(_settings(cache="none")) is None
    assert isinstance(build_cache(_settings(cache="memory")), MemoryCache)
    redis_cache = build_cache(
        _settings(cache="redis", redis_url="redis://127.0.0.1:1/0", redis_timeout_s=0.5)
    )
    assert isinstance(redis_cache, RedisCache)
    assert redis_cache.socket_timeout_s == 0.5
    redis_cache.close()


@pytest.mark.parametrize(
    ("values", "cjk_semantic"),
    [
        ({"embedder": "packaged:all-minilm-l6-v2"}, 0.0),  # English-only: BM25 for Chinese
        ({"embedder": "packaged:use-multilingual", "semantic_weight": 0.7}, 0.7),
        ({"embedder": "packaged:all-minilm-l6-v2", "semantic_weight_cjk": 0.5}, 0.5),
    ],
)
def test_vector_weight_for_chinese_queries(values: dict[str, object], cjk_semantic: float) -> None:
    config = search_config(_settings(**values))
    assert config.weights_for("降噪耳机")["semantic"] == cjk_semantic
    assert config.weights_for("headphones")["semantic"] == config.weights["semantic"]


@pytest.mark.parametrize(
    ("configured", "serving", "expected"),
    [(None, True, 1), (None, False, None), (2, True, 2), (3, False, 3)],
)
def test_threads(configured: int | None, serving: bool, expected: int | None) -> None:
    """One torch and one BLAS thread while serving unless configured; indexing keeps the
    libraries' own choice."""
    import torch
    from threadpoolctl import threadpool_limits

    def blas_threads() -> int:
        return threadpool_limits(user_api="blas").get_original_num_threads()["blas"]

    before = torch.get_num_threads()
    with threadpool_limits(limits=5, user_api="blas"):
        try:
            torch.set_num_threads(5)
            configure_threads(_settings(torch_threads=configured), serving=serving)
            assert torch.get_num_threads() == (expected or 5)
            assert blas_threads() == (expected or 5)
        finally:
            torch.set_num_threads(before)


def test_the_answer_service_follows_the_settings(search: HybridSearch) -> None:
    settings = _settings(
        llm_concurrency=2,
        llm_queue=7,
        llm_timeout_s=30,
        ask_min_quote_relevance=0.5,
        ask_min_evidence=None,
        ask_sources=4,
    )
    answers = build_answers(settings, search, RecordingLLM())
    assert answers.admission.state() == {
        "running": 0,
        "waiting": 0,
        "capacity": 2,
        "max_waiting": 7,
    }
    assert answers.queue_timeout_s == 30
    assert answers.min_quote_relevance == 0.5 and answers.ask_min_evidence is None
    assert answers.ask_sources == 4


def test_by_default_one_answer_runs_and_a_few_wait() -> None:
    settings = _settings()
    assert (settings.llm_concurrency, settings.llm_queue) == (1, 4)
    assert settings.ask_min_quote_relevance is not None
