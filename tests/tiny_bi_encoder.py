"""A tiny BERT bi-encoder (MiniLM's tokenizer, two layers drawn with a seed) saved as a
`SentenceTransformer` folder: Transformer, Pooling, Normalize, as MiniLM is.

Its weights have ten times BERT's usual spread (``initializer_range`` 0.2), as
`tests.tiny_cross_encoder`'s, so that texts get clearly different vectors.
"""

from __future__ import annotations

from pathlib import Path

from retrieval.models import resolve_model_source

TEXTS = (
    "Sony WH-1000XM5 wireless noise cancelling headphones",
    "Lodge cast iron skillet, 12 inch, pre-seasoned",
    "kettle",
    "MSR Hubba Hubba two person backpacking tent with a footprint and a gear loft",
    "索尼 无线降噪耳机 30小时续航",
    "",
    "Women's lightweight road running shoes",
    "wireless over-ear headphones with long battery life " * 20,  # past the maximum length
)


def save_tiny_bi_encoder(
    folder: Path, *, max_seq_length: int = 64, seed: int = 1, pooling: str = "mean"
) -> Path:
    """Write the tiny bi-encoder to ``folder`` (its maximum length ``max_seq_length``)."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import (
        Normalize,
        Pooling,
        Transformer,
    )
    from transformers import AutoTokenizer, BertConfig, BertModel

    base = folder.with_name(folder.name + "-base")
    config = BertConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        initializer_range=0.2,
    )
    torch.manual_seed(seed)
    BertModel(config).save_pretrained(base)
    AutoTokenizer.from_pretrained(
        resolve_model_source("packaged:all-minilm-l6-v2")
    ).save_pretrained(base)
    transformer = Transformer(str(base), max_seq_length=max_seq_length)
    model = SentenceTransformer(modules=[transformer, Pooling(32, pooling), Normalize()])
    model.save(str(folder))
    return folder
