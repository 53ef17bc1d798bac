"""The ONNX cross-encoder re-ranker against the torch one, on a tiny exported BERT."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from retrieval.rankers.cross_encoder import CrossEncoderReranker
from retrieval.rankers.onnx_cross_encoder import ONNX_FP32, ONNX_INT8, OnnxCrossEncoderReranker
from tests.tiny_cross_encoder import PAIRS, QUERIES, TEXTS, save_tiny_cross_encoder
from training.onnx_export import export_onnx, rank_agreement

LONG = "wireless over-ear headphones with long battery life " * 20


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = save_tiny_cross_encoder(tmp_path_factory.mktemp("onnx") / "model")
    export_onnx(folder, pairs=PAIRS[:4])
    return folder


def _scores(reranker: CrossEncoderReranker | OnnxCrossEncoderReranker) -> np.ndarray:
    return np.array([s for q in QUERIES for s in reranker.score(q, list(TEXTS))])


class TestOnnxCrossEncoderReranker:
    def test_fp32_scores_are_the_torch_scores(self, model_dir: Path) -> None:
        torch_scores = _scores(CrossEncoderReranker(str(model_dir)))
        onnx_scores = _scores(OnnxCrossEncoderReranker(str(model_dir)))
        assert np.abs(onnx_scores - torch_scores).max() < 1e-4
        assert onnx_scores.min() > 0 and onnx_scores.max() < 1  # the sigmoid, as CrossEncoder
        assert np.ptp(onnx_scores) > 0.05  # the pairs are told apart, not near-ties (0.15)

    def test_int8_keeps_the_ranking(self, model_dir: Path) -> None:
        fp32 = _scores(OnnxCrossEncoderReranker(str(model_dir)))
        int8 = _scores(OnnxCrossEncoderReranker(str(model_dir), file_name=ONNX_INT8))
        spearman, kendall = rank_agreement(fp32, int8)
        # What search relies on is the order. int8 kernels round differently on each CPU (the
        # largest score difference was 0.062 on two machines, and may be more on others), so
        # the scores themselves are not bounded here. Measured: Spearman 0.997, Kendall 0.97.
        assert spearman > 0.9 and kendall > 0.7

    def test_loads_from_a_folder_or_a_file(self, model_dir: Path) -> None:
        by_folder = OnnxCrossEncoderReranker(str(model_dir), file_name=ONNX_INT8)
        by_file = OnnxCrossEncoderReranker(str(model_dir / ONNX_INT8))
        assert by_folder.name == by_file.name == str(model_dir / ONNX_INT8)
        assert OnnxCrossEncoderReranker(str(model_dir)).name == str(model_dir / ONNX_FP32)
        assert by_folder.score("kettle", TEXTS[:2]) == by_file.score("kettle", TEXTS[:2])
        assert by_file.score("kettle", []) == []

    @pytest.mark.parametrize("max_length", [256, 16])
    def test_truncates_as_the_cross_encoder(self, model_dir: Path, max_length: int) -> None:
        """The saved 64 tokens, or a shorter configured maximum: the same token ids as
        sentence-transformers' own pre-processing, and the same scores."""
        pairs = [("sony headphones", LONG), (LONG, "short text"), (LONG, LONG), ("x", "")]
        torch_reranker = CrossEncoderReranker(str(model_dir), max_length=max_length)
        torch_reranker.warm_up()
        assert torch_reranker._model is not None
        expected = torch_reranker._model.preprocess(pairs)
        reranker = OnnxCrossEncoderReranker(str(model_dir), max_length=max_length)
        features = reranker.encode(pairs)
        assert reranker.seq_length == min(64, max_length)
        assert features["input_ids"].shape == (4, min(64, max_length))
        for name, array in features.items():
            assert (array == expected[name].numpy()).all(), name
        texts = [LONG, "short text", LONG + " and more"]
        onnx_scores = reranker.score(LONG, texts)
        assert np.allclose(onnx_scores, torch_reranker.score(LONG, texts), atol=1e-4)

    def test_a_saved_identity_activation_gives_logits(
        self, model_dir: Path, tmp_path: Path
    ) -> None:
        folder = tmp_path / "identity"
        shutil.copytree(model_dir, folder)
        path = folder / "config_sentence_transformers.json"
        config = json.loads(path.read_text())
        path.write_text(json.dumps({**config, "activation_fn": "torch.nn.modules.linear.Identity"}))
        reranker = OnnxCrossEncoderReranker(str(folder))
        scores = reranker.score("kettle", TEXTS)
        assert reranker.activation == "identity"
        assert np.allclose(scores, reranker.logits([("kettle", t) for t in TEXTS]))
        assert np.allclose(
            scores, CrossEncoderReranker(str(folder)).score("kettle", TEXTS), atol=1e-4
        )

    def test_a_folder_without_an_export_fails_clearly(self, tmp_path: Path) -> None:
        reranker = OnnxCrossEncoderReranker(str(tmp_path), file_name=ONNX_INT8)
        with pytest.raises(
            ValueError, match=r"no ONNX model at .*model\.int8\.onnx.*export-reranker"
        ):
            reranker.warm_up()
