"""The real MiniLM exported to ONNX: fp32 gives torch's vectors, int8 keeps the ranking."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from indexer.reader import Row, read_catalog
from indexer.units import product_units
from retrieval.embedders.onnx_export import CHECK_TEXTS, ensure_export
from retrieval.embedders.onnx_sentence import INT8_SUFFIX, OnnxSentenceEmbedder
from retrieval.embedders.sentence_transformers import SentenceTransformerEmbedder
from tests.conftest import SAMPLE_CATALOG

pytestmark = pytest.mark.slow
MINILM = "packaged:all-minilm-l6-v2"
QUERIES = (
    "noise cancelling headphones for flights",
    "something to make espresso at home",
    "cast iron pan",
    "a tent for two people",
    "running shoes with good cushioning",
    "kettle that switches off by itself",
    "waterproof jacket for hiking",
    "gift for a coffee lover",
    "wireless earbuds with long battery",
    "blender for smoothies",
    "lightweight laptop for students",
    "robot vacuum for pet hair",
    "ergonomic office chair",
    "yoga mat",
    "smart watch with gps",
    "baby stroller",
)


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("exports")
    ensure_export(MINILM, folder, int8=True)
    return folder


@pytest.fixture(scope="module")
def units() -> list[str]:
    rows = [row for row in read_catalog(SAMPLE_CATALOG) if isinstance(row, Row)]
    return [unit.text for row in rows for unit in product_units(row.product)]


def test_fp32_vectors_are_torchs(exports: Path, units: list[str]) -> None:
    texts = [*CHECK_TEXTS, *units[::4], "x " * 400, "Bluetooth 5.3 — 40h — IPX4 — ¥199 / $29.99"]
    torch_embedder = SentenceTransformerEmbedder(MINILM)
    torch_vectors = torch_embedder.embed_documents(texts)
    onnx = OnnxSentenceEmbedder(MINILM, export_dir=exports)
    assert onnx.name == torch_embedder.name == MINILM + "@128-tokens"  # the same index
    documents = onnx.embed_documents(texts)
    assert (documents * torch_vectors).sum(axis=1).min() > 0.9999
    queries = np.vstack([onnx.embed_query(t) for t in texts[:20]])
    assert (queries * torch_vectors[:20]).sum(axis=1).min() > 0.9999


def test_int8_keeps_the_top_10(exports: Path, units: list[str]) -> None:
    """int8 kernels round differently on each CPU, so the bounds are on the order, with room:
    measured on an AVX512-VNNI EPYC, the top 10 over the sample catalog's 222 units kept
    0.94 of fp32's on average (0.8 at worst), and fp32's first hit was in int8's top 3 for
    every query."""
    fp32 = OnnxSentenceEmbedder(MINILM, export_dir=exports)
    int8 = OnnxSentenceEmbedder(MINILM, export_dir=exports, int8=True)
    assert int8.name == MINILM + "@128-tokens" + INT8_SUFFIX
    documents, documents_int8 = fp32.embed_documents(units), int8.embed_documents(units)
    overlaps, first_kept = [], 0
    for query in QUERIES:
        top = np.argsort(-(documents @ fp32.embed_query(query)))[:10]
        top_int8 = np.argsort(-(documents_int8 @ int8.embed_query(query)))[:10]
        overlaps.append(len(set(top) & set(top_int8)) / 10)
        first_kept += int(top[0] in top_int8[:3])
    assert np.mean(overlaps) >= 0.8, overlaps
    assert min(overlaps) >= 0.5, overlaps
    assert first_kept >= len(QUERIES) - 2
