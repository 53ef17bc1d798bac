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
