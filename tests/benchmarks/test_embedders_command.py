"""Smoke test of ``python -m benchmarks.embedders`` with the tiny bi-encoder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import embedders
from retrieval.embedders.onnx_export import ensure_export
from tests.benchmarks.test_indexing_command import CSV
from tests.tiny_bi_encoder import save_tiny_bi_encoder


def test_compares_the_runtimes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SHOPGUIDE_DATA_DIR", str(tmp_path / "state"))
    model = save_tiny_bi_encoder(tmp_path / "model")
    # exported here, once, so that the runtimes' processes only load it
    ensure_export(str(model), tmp_path / "state" / "models" / "embedders", int8=True)
    (tmp_path / "train.csv").write_text(CSV, encoding="utf-8")
    out = tmp_path / "embedders.json"
    argv = ["--embedder", str(model), "--runtimes", "torch,onnx,onnx-int8", "--rounds", "1"]
    code = embedders.main([*argv, "--catalog", str(tmp_path / "train.csv"), "--out", str(out)])
    assert code == 0
    result = json.loads(out.read_text())
    torch_run, fp32, int8 = result["runs"]
    assert [r["runtime"] for r in result["runs"]] == ["torch", "onnx", "onnx-int8"]
    assert torch_run["name"] == fp32["name"] == f"{model}@128-tokens"
    assert int8["name"] == f"{model}@128-tokens@onnx-int8"
    assert torch_run["documents"] == fp32["documents"] == 5  # 3 titles, 2 descriptions
    assert torch_run["document_cos_min"] == 1.0 and fp32["document_cos_min"] > 0.9999
    assert fp32["top10_overlap"] == 1.0 and int8["query_cos_min"] > 0.9
    assert fp32["query_ms"]["n"] == 3
    assert "onnx-int8" in capsys.readouterr().out
