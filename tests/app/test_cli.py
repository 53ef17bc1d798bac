import json
from pathlib import Path

import pytest

from app.cli import main
from retrieval.stores.embedded import EmbeddedStore
from tests.conftest import PRODUCTS, write_jsonl


@pytest.fixture(autouse=True)
def _settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("SHOPGUIDE_DATA_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("SHOPGUIDE_EMBEDDER", "hashing-256")
    monkeypatch.setenv("SHOPGUIDE_LOG_JSON", "false")


def test_index_reports_counts_and_bad_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_jsonl(tmp_path / "c.jsonl", [*PRODUCTS, "{bad", {"id": "no-title"}])
    assert main(["index", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"read {len(PRODUCTS) + 2}, indexed {len(PRODUCTS)}, skipped 2" in out
    assert f"{path}:{len(PRODUCTS) + 1}: invalid JSON" in out
    assert EmbeddedStore(tmp_path / "state" / "index").stats().products == len(PRODUCTS)


def test_prune_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["index", str(write_jsonl(tmp_path / "all.jsonl", PRODUCTS))])
    assert main(["index", "--prune", str(write_jsonl(tmp_path / "one.jsonl", PRODUCTS[:1]))]) == 0
    assert f"removed {len(PRODUCTS) - 1}" in capsys.readouterr().out


def test_nothing_indexable_exits_non_zero(tmp_path: Path) -> None:
    assert main(["index", str(write_jsonl(tmp_path / "bad.jsonl", ["{", "{"]))]) == 1


def test_missing_catalog_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["index", str(tmp_path / "missing.jsonl")]) == 2
    assert "catalog not found" in capsys.readouterr().out


def test_bad_setting_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SHOPGUIDE_RERANK_DEPTH", "lots")
    assert main(["serve"]) == 2
    assert "rerank_depth" in capsys.readouterr().out


def test_search_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    main(["index", str(write_jsonl(tmp_path / "all.jsonl", PRODUCTS))])
    capsys.readouterr()
    # The search command builds every service, the generator included: point it at a server
    # that is never called.
    monkeypatch.setenv("SHOPGUIDE_LLM_BACKEND", "openai")
    monkeypatch.setenv("SHOPGUIDE_LLM_BASE_URL", "http://127.0.0.1:9/v1")
    assert main(["search", "cast iron skillet", "--size", "1"]) == 0
    assert '"id": "pan-lodge"' in capsys.readouterr().out


def test_ask_command_prints_the_answer_with_its_quotes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from app import cli
    from app.services import build_services
    from tests.quoting import QuotingLLM

    main(["index", str(write_jsonl(tmp_path / "all.jsonl", PRODUCTS))])
    capsys.readouterr()
    llm = QuotingLLM(['[?] "Yes, cast iron works on induction" Yes, it works on induction.'])
    monkeypatch.setattr(cli, "_services", lambda settings: build_services(settings, llm=llm))
    assert main(["ask", "pan-lodge", "does it work on induction?"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["answer"] == "Yes. It works on induction [1]."
    assert (body["kind"], body["verdict"]) == ("yes_no", "yes")
    [claim] = body["claims"]
    start, end = claim["quote_span"]
    assert body["citations"][0]["text"][start:end] == claim["quote"]


def test_export_embedder_then_index_with_the_onnx_runtime(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.tiny_bi_encoder import save_tiny_bi_encoder

    model = save_tiny_bi_encoder(tmp_path / "model")
    monkeypatch.setenv("SHOPGUIDE_EMBEDDER", str(model))
    monkeypatch.setenv("SHOPGUIDE_EMBEDDER_RUNTIME", "onnx")  # fp32 only: int8 is made later
    assert main(["export-embedder"]) == 0
    out = capsys.readouterr().out
    exports = tmp_path / "state" / "models" / "embedders"
    (folder,) = [p for p in exports.iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert folder.name.endswith("_model-" + folder.name[-16:])
    assert f"onnx: {folder} (32-d, mean pooling, 64 tokens)" in out
    assert "model.onnx: 4.1 MB, cosine to torch min 1.0000" in out
    assert "model.int8.onnx" not in out
    monkeypatch.setenv("SHOPGUIDE_EMBEDDER_RUNTIME", "onnx-int8")
    assert main(["index", str(write_jsonl(tmp_path / "c.jsonl", PRODUCTS))]) == 0
    assert (folder / "model.int8.onnx").is_file()  # quantised on first use
    stats = EmbeddedStore(tmp_path / "state" / "index").stats()
    assert stats.embedding_model == f"{model}@128-tokens@onnx-int8"


def test_export_embedder_needs_a_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export-embedder"]) == 2
    assert "hashing-256 has no torch model to export" in capsys.readouterr().out


def test_start_reindexes_when_the_embedder_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    served: list[str] = []
    monkeypatch.setattr("app.cli._serve", lambda settings: served.append(settings.embedder) or 0)
    catalog = str(write_jsonl(tmp_path / "c.jsonl", PRODUCTS))
    index = tmp_path / "state" / "index"
    assert main(["start", catalog]) == 0  # empty: indexed
    first = EmbeddedStore(index).stats()
    assert first.embedding_model == "hashing-256"
    assert main(["start", catalog]) == 0  # same embedder: served as it is
    assert EmbeddedStore(index).stats().version == first.version
    monkeypatch.setenv("SHOPGUIDE_EMBEDDER", "hashing-64")  # an upgrade changed the embedder
    capsys.readouterr()
    assert main(["start", catalog]) == 0
    assert "holds vectors of 'hashing-256', the embedder is 'hashing-64'" in capsys.readouterr().out
    stats = EmbeddedStore(index).stats()
    assert (stats.embedding_model, stats.products) == ("hashing-64", len(PRODUCTS))
    assert served == ["hashing-256", "hashing-256", "hashing-64"]


def test_start_reindexes_an_index_without_cross_lingual_vectors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("app.cli._serve", lambda settings: 0)
    catalog = str(write_jsonl(tmp_path / "c.jsonl", PRODUCTS))
    index = tmp_path / "state" / "index"
    monkeypatch.setenv("SHOPGUIDE_CROSS_EMBEDDER", "none")  # as indexes before the setting
    assert main(["start", catalog]) == 0
    assert EmbeddedStore(index).stats().cross_embedding_model is None
    monkeypatch.setenv("SHOPGUIDE_CROSS_EMBEDDER", "packaged:use-multilingual")  # the default
    capsys.readouterr()
    assert main(["start", catalog]) == 0
    out = capsys.readouterr().out
    assert "holds no cross-lingual vectors, the cross-lingual embedder is 'packaged:use" in out
    stats = EmbeddedStore(index).stats()
    assert (stats.cross_embedding_model, stats.products) == (
        "packaged:use-multilingual",
        len(PRODUCTS),
    )
