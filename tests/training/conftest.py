"""A tiny randomly initialised BERT with MiniLM's tokenizer: real training code, in seconds."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrieval.models import resolve_model_source


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    folder: Path = tmp_path_factory.mktemp("tiny-bert")
    config = BertConfig(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=1,
    )
    BertForSequenceClassification(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(
        resolve_model_source("packaged:all-minilm-l6-v2")
    ).save_pretrained(folder)
    return str(folder)


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The command line run in a temporary folder with its own state, the model-free
    embedder and plain log lines."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SHOPGUIDE_DATA_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("SHOPGUIDE_EMBEDDER", "hashing-256")
    monkeypatch.setenv("SHOPGUIDE_LOG_JSON", "false")
