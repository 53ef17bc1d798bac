"""A tiny BERT cross-encoder (as `tests/training/conftest.py`'s, with MiniLM's tokenizer) saved
as a `CrossEncoder` folder, and pairs to score with it.

Its weights are drawn with a seed and ten times the usual spread (``initializer_range`` 0.2):
with BERT's 0.02 a one-layer random model gives every pair nearly the same logit (differences
around 1e-4, below int8's rounding), so only a model whose scores differ can show that int8
keeps a ranking.
"""

from __future__ import annotations

from pathlib import Path

from retrieval.models import resolve_model_source

QUERIES = (
    "sony headphones",
    "cast iron pan",
    "tent for two",
    "降噪耳机",
    "running shoes",
    "kettle",
)
TEXTS = (
    "Sony WH-1000XM5 wireless noise cancelling headphones",
    "Lodge cast iron skillet, 12 inch, pre-seasoned",
    "MSR Hubba Hubba two person backpacking tent",
    "索尼 无线降噪耳机 30小时续航",
    "Women's lightweight road running shoes",
)
PAIRS = [(q, t) for q in QUERIES for t in TEXTS]  # 30


def save_tiny_cross_encoder(folder: Path, *, max_length: int = 64, seed: int = 1) -> Path:
    """Write the tiny cross-encoder to ``folder`` (its saved maximum length ``max_length``)."""
    import torch
    from sentence_transformers import CrossEncoder
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    base = folder.with_name(folder.name + "-base")
    config = BertConfig(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=1,
        initializer_range=0.2,
    )
    torch.manual_seed(seed)
    BertForSequenceClassification(config).save_pretrained(base)
    AutoTokenizer.from_pretrained(
        resolve_model_source("packaged:all-minilm-l6-v2")
    ).save_pretrained(base)
    CrossEncoder(str(base), num_labels=1, max_length=max_length).save_pretrained(str(folder))
    return folder
