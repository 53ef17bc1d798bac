"""The ONNX bi-encoder embedder against the torch one, on a tiny exported BERT."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import numpy as np
import pytest

from indexer.indexer import index_catalog
from indexer.reader import read_catalog
from retrieval.embedders.base import DEFAULT_MAX_TOKENS, tokens_suffix
from retrieval.embedders.onnx_export import (
    ensure_export,
    export_folder,
    source_checksum,
)
from retrieval.embedders.onnx_sentence import (
    CONFIG,
    INT8_SUFFIX,
    ONNX_FP32,
    ONNX_INT8,
    OnnxSentenceEmbedder,
    length_batches,
    pool,
    usable_cores,
)
from retrieval.embedders.sentence_transformers import SentenceTransformerEmbedder
from retrieval.stores.base import StoreError
from retrieval.stores.embedded import EmbeddedStore
from tests.conftest import SAMPLE_CATALOG
from tests.tiny_bi_encoder import TEXTS, save_tiny_bi_encoder

TOKENS = tokens_suffix(DEFAULT_MAX_TOKENS)  # "@128-tokens"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_bi_encoder(tmp_path_factory.mktemp("bi-encoder") / "model")


@pytest.fixture(scope="module")
def exports(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("exports")
    ensure_export(str(model_dir), folder, int8=True)
    return folder


@pytest.fixture(scope="module")
def torch_vectors(model_dir: Path) -> np.ndarray:
    return SentenceTransformerEmbedder(str(model_dir)).embed_documents(list(TEXTS))


def _onnx(model_dir: Path, exports: Path, **options: object) -> OnnxSentenceEmbedder:
    return OnnxSentenceEmbedder(str(model_dir), export_dir=exports, **options)  # type: ignore[arg-type]


class TestVectors:
    def test_fp32_vectors_are_torchs(
        self, model_dir: Path, exports: Path, torch_vectors: np.ndarray
    ) -> None:
        embedder = _onnx(model_dir, exports)
        documents = embedder.embed_documents(list(TEXTS))
        queries = np.vstack([embedder.embed_query(t) for t in TEXTS])
        assert documents.dtype == np.float32 and documents.shape == (len(TEXTS), 32)
        assert embedder.dim == 32
        assert (documents * torch_vectors).sum(axis=1).min() > 0.99999
        assert (queries * torch_vectors).sum(axis=1).min() > 0.99999
        # the texts are told apart (a random model could map everything alike)
        similarities = documents @ documents.T
        assert similarities[np.triu_indices(len(TEXTS), 1)].min() < 0.9

    @pytest.mark.parametrize(("batch_size", "max_tokens"), [(1, 4096), (3, 4096), (64, 100)])
    def test_batches_return_rows_in_input_order(
        self, model_dir: Path, exports: Path, batch_size: int, max_tokens: int
    ) -> None:
        texts = [*TEXTS, TEXTS[2], "Headphones"]
        random.Random(batch_size).shuffle(texts)
        unbatched = _onnx(model_dir, exports)
        expected = np.vstack([unbatched.embed_query(t) for t in texts])
        embedder = _onnx(model_dir, exports, batch_size=batch_size, max_tokens=max_tokens)
        vectors = embedder.embed_documents(texts, progress=False)
        np.testing.assert_allclose(vectors, expected, atol=2e-6)
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
        assert embedder.embed_documents([]).shape == (0, 32)

    def test_texts_past_the_maximum_length_are_truncated(
        self, model_dir: Path, exports: Path
    ) -> None:
        embedder = _onnx(model_dir, exports)
        embedder.warm_up()
        assert embedder.seq_length == 64  # the model's own, under the 256 cap
        longer = TEXTS[-1] + " and a charging case"
        np.testing.assert_allclose(
            embedder.embed_query(longer), embedder.embed_query(TEXTS[-1]), atol=1e-6
        )

    def test_int8_keeps_the_order(self, model_dir: Path, exports: Path) -> None:
        fp32 = _onnx(model_dir, exports).embed_documents(list(TEXTS))
        int8 = _onnx(model_dir, exports, int8=True).embed_documents(list(TEXTS))
        # int8 kernels round differently on each CPU: the cosines to fp32 are not pinned, only
        # that each text stays nearest its own fp32 vector (measured: 0.9997 at least).
        assert (int8 * fp32).sum(axis=1).min() > 0.95
        assert ((int8 @ fp32.T).argmax(axis=1) == np.arange(len(TEXTS))).all()

    def test_threads(self, model_dir: Path, exports: Path) -> None:
        assert _onnx(model_dir, exports).threads == usable_cores()
        embedder = _onnx(model_dir, exports, threads=1)
        embedder.warm_up()
        assert embedder.threads == 1
        assert embedder.embed_documents(list(TEXTS[:3])).shape == (3, 32)


class TestNames:
    def test_fp32_keeps_the_torch_name_and_int8_has_its_own(
        self, model_dir: Path, exports: Path
    ) -> None:
        torch_name = SentenceTransformerEmbedder(str(model_dir)).name
        assert _onnx(model_dir, exports).name == torch_name == str(model_dir) + TOKENS
        assert _onnx(model_dir, exports, int8=True).name == str(model_dir) + TOKENS + INT8_SUFFIX

    def test_an_export_folder_goes_by_its_model_name(self, model_dir: Path, exports: Path) -> None:
        (folder,) = [p for p in exports.iterdir() if p.is_dir() and not p.name.startswith(".")]
        assert OnnxSentenceEmbedder(str(folder)).name == str(model_dir) + TOKENS
        int8 = OnnxSentenceEmbedder(str(folder), int8=True)
        assert int8.name == str(model_dir) + TOKENS + INT8_SUFFIX
        by_folder = OnnxSentenceEmbedder(str(folder)).embed_query("kettle")
        np.testing.assert_array_equal(by_folder, _onnx(model_dir, exports).embed_query("kettle"))

    def test_the_store_refuses_vectors_of_another_runtime(
        self, model_dir: Path, exports: Path, tmp_path: Path
    ) -> None:
        store = EmbeddedStore(tmp_path / "index")
        fp32 = _onnx(model_dir, exports)
        index_catalog(read_catalog(SAMPLE_CATALOG), store, fp32, progress=False)
        assert store.stats().embedding_model == str(model_dir) + TOKENS
        # torch's vectors are fp32's: the same index takes them
        torch_embedder = SentenceTransformerEmbedder(str(model_dir))
        report = index_catalog(read_catalog(SAMPLE_CATALOG), store, torch_embedder, progress=False)
        assert report.indexed > 0
        with pytest.raises(StoreError, match=r"@onnx-int8.*re-index the whole catalog"):
            index_catalog(
                read_catalog(SAMPLE_CATALOG),
                store,
                _onnx(model_dir, exports, int8=True),
                progress=False,
            )


class TestExport:
    def test_the_export_is_made_once_per_source_model(self, model_dir: Path, exports: Path) -> None:
        folder = export_folder(str(model_dir), exports, source_checksum(model_dir))
        config = json.loads((folder / CONFIG).read_text())
        assert config["name"] == str(model_dir) and config["pooling"] == "mean"
        assert config["dim"] == 32 and config["max_seq_length"] == 64
        assert config["checks"][ONNX_FP32]["min_cosine"] > 0.9999
        assert config["checks"][ONNX_INT8]["megabytes"] < config["checks"][ONNX_FP32]["megabytes"]
        before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
        assert ensure_export(str(model_dir), exports, int8=True) == folder
        assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before
        assert not [p for p in exports.iterdir() if p.name.startswith(".") and p.is_dir()]

    def test_a_changed_model_gets_a_new_export(self, tmp_path: Path) -> None:
        model = save_tiny_bi_encoder(tmp_path / "model", seed=2)
        first = ensure_export(str(model), tmp_path / "exports")
        assert (first / ONNX_FP32).is_file() and not (first / ONNX_INT8).exists()
        assert ensure_export(str(model), tmp_path / "exports", int8=True) == first
        assert (first / ONNX_INT8).is_file()  # added to the existing export
        (model / "README.md").write_text("fine-tuned further")  # any file of the model
        second = ensure_export(str(model), tmp_path / "exports")
        assert second != first and second.parent == first.parent

    def test_a_model_with_other_modules_needs_torch(self, tmp_path: Path) -> None:
        from sentence_transformers import SentenceTransformer
        from sentence_transformers.sentence_transformer.modules import Dense

        tiny = SentenceTransformer(str(save_tiny_bi_encoder(tmp_path / "tiny")))
        model = tmp_path / "model"
        SentenceTransformer(modules=[tiny[0], tiny[1], Dense(32, 16)]).save(str(model))
        with pytest.raises(ValueError, match="EMBEDDER_RUNTIME=torch"):
            ensure_export(str(model), tmp_path / "exports")
        assert not [p for p in (tmp_path / "exports").iterdir() if p.is_dir()]

    def test_an_embedder_without_an_export_folder_fails_clearly(self, model_dir: Path) -> None:
        with pytest.raises(ValueError, match="no export folder"):
            OnnxSentenceEmbedder(str(model_dir)).warm_up()


class TestBatching:
    def test_longest_first_within_the_limits(self) -> None:
        lengths = [5, 40, 12, 40, 3, 100, 7, 12]
        batches = length_batches(lengths, batch_size=3, max_tokens=100)
        flat = np.concatenate(batches)
        assert sorted(flat.tolist()) == list(range(len(lengths)))
        assert [lengths[i] for i in flat] == sorted(lengths, reverse=True)
        for batch in batches:
            assert len(batch) <= 3
            assert len(batch) == 1 or len(batch) * max(lengths[i] for i in batch) <= 100
        assert [len(b) for b in batches] == [1, 2, 3, 2]
        assert length_batches([], 8, 100) == []
        assert [b.tolist() for b in length_batches([0, 0], 8, 100)] == [[0, 1]]

    def test_pooling(self) -> None:
        hidden = np.arange(2 * 3 * 2, dtype=np.float32).reshape(2, 3, 2) - 5
        mask = np.array([[1, 1, 0], [1, 1, 1]])
        mean = pool(hidden, mask, "mean")
        expected = np.array([hidden[0, :2].mean(0), hidden[1].mean(0)])
        np.testing.assert_allclose(
            mean, expected / np.linalg.norm(expected, axis=1, keepdims=True), rtol=1e-6
        )
        cls = pool(hidden, mask, "cls")
        np.testing.assert_allclose(cls[0], hidden[0, 0] / np.linalg.norm(hidden[0, 0]))
        top = pool(hidden, mask, "max")
        np.testing.assert_allclose(top[0], hidden[0, 1] / np.linalg.norm(hidden[0, 1]))
        with pytest.raises(ValueError, match="unsupported pooling"):
            pool(hidden, mask, "lasttoken")


def test_the_export_folder_is_readable_by_others(model_dir: Path, exports: Path) -> None:
    folder = export_folder(str(model_dir), exports, source_checksum(model_dir))
    assert os.stat(folder).st_mode & 0o755 == 0o755
    assert os.stat(folder / ONNX_INT8).st_mode & 0o644 == 0o644
