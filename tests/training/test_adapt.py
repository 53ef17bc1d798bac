"""The adapt-reranker job and command, end to end on the sample catalog with a tiny BERT."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from transformers import TrainerCallback

from app.cli import main
from generation.llm.fake import RecordingLLM
from retrieval.embedders.hashing import HashingEmbedder
from retrieval.rankers.cross_encoder import CrossEncoderReranker
from retrieval.rankers.manifest import MANIFEST
from retrieval.search import HybridSearch, SearchConfig
from retrieval.stores.embedded import EmbeddedStore
from tests.conftest import SAMPLE_CATALOG, write_jsonl
from training.adapt import PAIRS, AdaptOptions, adapt_reranker
from training.cross_encoder import CHECKPOINTS, TrainingOptions
from training.errors import TrainingError


class Killed(Exception):
    """Stands in for a process killed mid-training."""


class KillAt(TrainerCallback):  # type: ignore[misc]
    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step == self.step:
            raise Killed


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EmbeddedStore]:
    store = EmbeddedStore(tmp_path / "index")
    yield store
    store.close()


def _adapt(
    store: EmbeddedStore, out: Path, tiny_model: str, *, max_queries: int = 5000, **kwargs: Any
) -> Any:
    embedder = HashingEmbedder(256)
    options = AdaptOptions(
        queries_per_product=2,
        max_queries=max_queries,
        llm_queries=3,
        training=TrainingOptions(
            base_model=tiny_model, max_steps=4, batch_size=4, save_steps=2, max_length=64
        ),
    )
    return adapt_reranker(
        SAMPLE_CATALOG,
        out,
        store=store,
        embedder=embedder,
        search=HybridSearch(store, embedder, config=SearchConfig(min_similarity=0.2)),
        options=options,
        progress=False,
        **kwargs,
    )


class TestAdaptReranker:
    def test_indexes_when_needed_then_trains(
        self, tmp_path: Path, store: EmbeddedStore, tiny_model: str
    ) -> None:
        report = _adapt(store, tmp_path / "a", tiny_model)
        assert report.indexed == 44 and store.stats().products == 44
        assert report.training.complete and report.training.steps == 4
        manifest = json.loads((tmp_path / "a" / MANIFEST).read_text())
        assert manifest["status"] == "complete"
        assert manifest["catalog"]["products"] == 44 and len(manifest["catalog"]["sha256"]) == 64
        assert manifest["queries"]["total"] == sum(manifest["queries"]["by_template"].values())
        assert manifest["queries"]["by_template"]["qa_question"] == 23
        # what the model covers, for `rerank_scope`: passage queries and Chinese ones
        assert manifest["queries"]["passages"] == 23
        assert 0 < manifest["queries"]["cjk"] < manifest["queries"]["total"]
        pairs = manifest["pairs"]
        assert pairs["total"] == pairs["positive"] + pairs["hard"] + pairs["random"]
        assert pairs["positive"] == manifest["queries"]["total"]
        assert manifest["training"]["steps"] == 4 and manifest["seed"] == 42
        assert manifest["versions"]["sentence-transformers"]
        # a second run over the same store does not index again
        again = _adapt(store, tmp_path / "b", tiny_model)
        assert again.indexed is None
        assert (tmp_path / "b" / PAIRS).read_text() == (tmp_path / "a" / PAIRS).read_text()

    def test_resume_goes_on_from_the_last_checkpoint(
        self, tmp_path: Path, store: EmbeddedStore, tiny_model: str
    ) -> None:
        out = tmp_path / "run"
        with pytest.raises(Killed):
            _adapt(store, out, tiny_model, callbacks=[KillAt(3)])
        assert (out / CHECKPOINTS / "checkpoint-2").is_dir()
        assert json.loads((out / MANIFEST).read_text())["status"] == "training"
        pairs = (out / PAIRS).read_text()
        (out / "model.onnx").write_bytes(b"an export of the stopped run's model")

        report = _adapt(store, out, tiny_model, resume=True)
        assert not (out / "model.onnx").exists()  # stale once training goes on
        assert report.reused_pairs
        assert report.training.resumed_from == 2 and report.training.steps == 4
        assert (out / PAIRS).read_text() == pairs
        manifest = json.loads((out / MANIFEST).read_text())
        assert manifest["status"] == "complete"
        assert [r["resumed_from_step"] for r in manifest["runs"]] == [2]
        assert not (out / CHECKPOINTS).exists()
        with pytest.raises(TrainingError, match="complete"):
            _adapt(store, out, tiny_model, resume=True)

    @pytest.mark.slow
    def test_the_packaged_minilm_trains(self, tmp_path: Path, store: EmbeddedStore) -> None:
        report = _adapt(store, tmp_path / "minilm", "packaged:all-minilm-l6-v2", max_queries=20)
        assert report.training.steps == 4
        scores = CrossEncoderReranker(str(tmp_path / "minilm")).score(
            "tent", ["MSR tent", "kettle"]
        )
        assert len(scores) == 2

    def test_llm_queries_come_on_top_of_the_capped_template_queries(
        self, tmp_path: Path, store: EmbeddedStore, tiny_model: str
    ) -> None:
        llm = RecordingLLM(default="budget gadget\nsomething nice")
        report = _adapt(store, tmp_path / "llm", tiny_model, max_queries=10, llm=llm)
        assert len(llm.calls) == 3
        assert report.queries["llm"] == 6
        assert sum(report.queries.values()) == 16
        assert report.manifest["queries"]["llm"] == {"products": 3, "failures": 0}


@pytest.mark.usefixtures("cli_env")
class TestCommand:
    def test_adapt_reranker(
        self, tmp_path: Path, tiny_model: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        out = tmp_path / "reranker"
        args = ["adapt-reranker", str(SAMPLE_CATALOG), "--out", str(out), "--base-model"]
        args += [tiny_model, "--max-steps", "2", "--batch-size", "4", "--max-length", "64"]
        assert main(args) == 0
        printed = capsys.readouterr().out
        assert "catalog: 44 products, 0 skipped; indexed 44 products first" in printed
        assert "training: step 2 of 2" in printed and "complete" in printed
        assert f"SHOPGUIDE_RERANKER={out.resolve()}" in printed
        scores = CrossEncoderReranker(str(out)).score("tent", ["MSR tent", "coffee grinder"])
        assert len(scores) == 2

        assert main(args) == 2  # the folder holds a run: --resume or another folder
        assert "already holds a training run" in capsys.readouterr().out

    def test_bad_rows_are_reported_and_skipped(
        self, tmp_path: Path, tiny_model: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        rows = [json.loads(line) for line in SAMPLE_CATALOG.read_text().splitlines()[:6]]
        catalog = write_jsonl(tmp_path / "c.jsonl", [*rows, "{broken", {"id": "x"}])
        args = ["adapt-reranker", str(catalog), "--out", str(tmp_path / "m"), "--base-model"]
        assert main([*args, tiny_model, "--max-steps", "1", "--batch-size", "2"]) == 0
        printed = capsys.readouterr().out
        assert "catalog: 6 products, 2 skipped" in printed
        assert f"{catalog}:7: invalid JSON" in printed

    def test_errors_are_clear(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        missing = tmp_path / "missing.jsonl"
        assert main(["adapt-reranker", str(missing), "--out", str(tmp_path / "m")]) == 2
        assert "catalog not found" in capsys.readouterr().out
        bad = write_jsonl(tmp_path / "bad.jsonl", ["{", {"id": "no-title"}])
        assert main(["adapt-reranker", str(bad), "--out", str(tmp_path / "m")]) == 2
        assert "no valid product" in capsys.readouterr().out
        with pytest.raises(SystemExit):
            main(["adapt-reranker", str(bad), "--out", "m", "--batch-size", "0"])
