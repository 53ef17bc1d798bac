"""ONNX export of a cross-encoder folder, its check against torch, and the commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.cli import main
from retrieval.rankers.onnx_cross_encoder import ONNX_FP32, ONNX_INT8, OnnxCrossEncoderReranker
from tests.conftest import SAMPLE_CATALOG
from tests.tiny_cross_encoder import PAIRS, save_tiny_cross_encoder
from training.adapt import MANIFEST
from training.cross_encoder import TrainingPair, write_pairs
from training.errors import TrainingError
from training.onnx_export import DEFAULT_PAIRS, check_pairs, export_onnx, rank_agreement


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_cross_encoder(tmp_path_factory.mktemp("export") / "model")


class TestExportOnnx:
    def test_writes_both_files_and_checks_them(self, model_dir: Path, tmp_path: Path) -> None:
        out = tmp_path / "onnx"
        report = export_onnx(model_dir, out, pairs=PAIRS)
        for name in (ONNX_FP32, ONNX_INT8, "tokenizer.json", "config.json"):
            assert (out / name).is_file(), name
        assert not (model_dir / ONNX_FP32).exists()  # the model folder is left as it was
        fp32, int8 = report.checks
        assert fp32.file == ONNX_FP32 and int8.file == ONNX_INT8
        assert fp32.max_abs_logit_diff < 1e-4 and fp32.spearman > 0.999 and fp32.kendall > 0.99
        # int8 kernels round differently on each CPU: what holds everywhere is the ranking
        # (Spearman measured 0.997 on two machines); the difference is reported, not bounded.
        assert int8.spearman > 0.9 and int8.max_abs_logit_diff > 0
        assert int8.megabytes < fp32.megabytes / 2
        assert report.pairs == 30 and report.max_length == 64  # the model's saved maximum
        assert OnnxCrossEncoderReranker(str(out)).score("kettle", ["kettle"])

    def test_records_the_check_in_the_manifest(self, model_dir: Path, tmp_path: Path) -> None:
        folder = tmp_path / "run"
        save_tiny_cross_encoder(folder)
        (folder / MANIFEST).write_text(json.dumps({"status": "complete"}))
        pairs = [TrainingPair(q, t, 1.0, "u", "p", "positive", "t") for q, t in PAIRS]
        write_pairs(folder / "pairs.jsonl", pairs)
        (folder / ONNX_INT8).write_bytes(b"an earlier export")
        report = export_onnx(folder, int8=False)
        assert [c.file for c in report.checks] == [ONNX_FP32]
        assert not (folder / ONNX_INT8).exists()
        manifest = json.loads((folder / MANIFEST).read_text())
        assert manifest["status"] == "complete"
        onnx = manifest["onnx"]
        assert onnx["pairs"] == 30 and onnx["opset"] == 17
        assert onnx["files"][ONNX_FP32]["max_abs_logit_diff"] < 1e-4

    def test_check_pairs(self, tmp_path: Path) -> None:
        assert check_pairs(tmp_path) == list(DEFAULT_PAIRS)
        pairs = [TrainingPair(f"q{i}", f"t{i}", 0.0, "u", "p", "hard", "t") for i in range(100)]
        write_pairs(tmp_path / "pairs.jsonl", pairs)
        sample = check_pairs(tmp_path, 10)
        assert len(sample) == 10 and sample == check_pairs(tmp_path, 10)
        assert all(q[1:] == t[1:] for q, t in sample)

    def test_not_a_model_folder(self, tmp_path: Path) -> None:
        with pytest.raises(TrainingError, match="not a model folder"):
            export_onnx(tmp_path)


def test_rank_agreement() -> None:
    assert rank_agreement([1, 2, 3], [10, 20, 30]) == (1.0, 1.0)
    assert rank_agreement([1, 2, 3], [3, 2, 1]) == (-1.0, -1.0)
    assert rank_agreement([1, 1, 1], [2, 2, 2]) == (1.0, 1.0)
    assert rank_agreement([1, 2, 3], [2, 2, 2]) == (0.0, 0.0)


@pytest.mark.usefixtures("cli_env")
class TestCommands:
    def test_export_reranker(
        self, model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        out = tmp_path / "exported"
        assert main(["export-reranker", str(model_dir), "--out", str(out), "--no-int8"]) == 0
        printed = capsys.readouterr().out
        assert f"onnx: {out}, checked against torch on {len(DEFAULT_PAIRS)} pairs" in printed
        assert "model.onnx: 4.0 MB, max |logit difference|" in printed
        assert "Spearman 1.000, Kendall 1.000" in printed
        assert f"SHOPGUIDE_RERANKER={out.resolve()} SHOPGUIDE_RERANKER_RUNTIME=onnx " in printed
        assert not (out / ONNX_INT8).exists()

        assert main(["export-reranker", str(tmp_path / "nothing")]) == 2
        assert "not a model folder" in capsys.readouterr().out

    def test_adapt_reranker_then_export(
        self, tmp_path: Path, tiny_model: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        out = tmp_path / "reranker"
        args = ["adapt-reranker", str(SAMPLE_CATALOG), "--out", str(out), "--base-model"]
        args += [tiny_model, "--max-steps", "1", "--batch-size", "4", "--max-length", "32"]
        assert main([*args, "--max-queries", "20", "--onnx"]) == 0
        printed = capsys.readouterr().out
        assert "training: step 1 of 1" in printed
        assert "pairs (32 tokens)" in printed and "model.int8.onnx:" in printed
        assert (out / ONNX_FP32).is_file() and (out / ONNX_INT8).is_file()
        manifest = json.loads((out / MANIFEST).read_text())
        assert manifest["status"] == "complete" and set(manifest["onnx"]["files"]) == {
            ONNX_FP32,
            ONNX_INT8,
        }
