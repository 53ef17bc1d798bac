"""MemoEmbedder: embed once per run, and once across runs with an on-disk cache."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from benchmarks.embedders import MemoEmbedder, model_folder
from retrieval.embedders.hashing import HashingEmbedder

TEXTS = ["wireless headphones", "cast iron skillet", "跑步鞋", "wireless headphones"]


class CountingEmbedder:
    """A hashing embedder under any name that counts the texts it embeds."""

    def __init__(self, name: str = "counting", dim: int = 32) -> None:
        self.inner = HashingEmbedder(dim)
        self._name = name
        self.documents = 0
        self.queries = 0

    @property
    def name(self) -> str:
        return self._name

    @property
    def dim(self) -> int:
        return self.inner.dim

    def warm_up(self) -> None:
        pass

    def embed_documents(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        self.documents += len(texts)
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> np.ndarray:
        self.queries += 1
        return self.inner.embed_query(text)


def cache_file(root: Path, model: str, space: str = "documents") -> Path:
    return root / model_folder(model) / f"{space}.v1.npz"


class TestMemoEmbedder:
    def test_without_a_cache_each_text_is_embedded_once_per_run(self) -> None:
        model = CountingEmbedder()
        memo = MemoEmbedder(model)
        first = memo.embed_documents(TEXTS)
        again = memo.embed_documents(TEXTS[:2])
        assert model.documents == 3 and memo.embedded == 3
        assert first.shape == (4, 32) and first.dtype == np.float32
        np.testing.assert_array_equal(first[0], first[3])
        np.testing.assert_array_equal(again, first[:2])
        memo.embed_query("kettle")
        memo.embed_query("kettle")
        assert model.queries == 2  # queries are embedded afresh unless memo_queries
        assert memo.embed_documents([]).shape == (0, 32)
        memo.flush()  # nothing to write: no error

    def test_a_second_embedder_on_the_same_cache_computes_nothing(self, tmp_path: Path) -> None:
        first_model = CountingEmbedder()
        first = MemoEmbedder(first_model, cache_dir=tmp_path)
        vectors = first.embed_documents(TEXTS)
        first.flush()
        assert first_model.documents == 3
        assert cache_file(tmp_path, "counting").exists()

        second_model = CountingEmbedder()
        second = MemoEmbedder(second_model, cache_dir=tmp_path)
        np.testing.assert_array_equal(second.embed_documents(TEXTS), vectors)
        assert second_model.documents == 0 and second.embedded == 0
        # a new text is computed, the known ones still come from the cache
        mixed = second.embed_documents(["kettle", TEXTS[1]])
        assert second_model.documents == 1
        np.testing.assert_array_equal(mixed[1], vectors[1])

    def test_queries_are_cached_apart_from_documents(self, tmp_path: Path) -> None:
        model = CountingEmbedder()
        memo = MemoEmbedder(model, cache_dir=tmp_path, memo_queries=True)
        memo.embed_documents(["kettle"])
        query = memo.embed_query("kettle")
        memo.embed_query("kettle")
        assert model.queries == 1  # not served from the document vectors, then remembered
        query[:] = 0  # a caller changing its copy does not change the cache
        memo.flush()
        assert cache_file(tmp_path, "counting", "queries").exists()

        again_model = CountingEmbedder()
        again = MemoEmbedder(again_model, cache_dir=tmp_path, memo_queries=True)
        np.testing.assert_array_equal(
            again.embed_query("kettle"), HashingEmbedder(32).embed_query("kettle")
        )
        assert again_model.queries == 0

    def test_another_model_does_not_share_vectors(self, tmp_path: Path) -> None:
        first = MemoEmbedder(CountingEmbedder("model-a"), cache_dir=tmp_path)
        first.embed_documents(TEXTS)
        first.flush()
        other_model = CountingEmbedder("model-b")
        MemoEmbedder(other_model, cache_dir=tmp_path).embed_documents(TEXTS)
        assert other_model.documents == 3

    def test_a_model_name_with_slashes_gets_a_safe_folder(self) -> None:
        folder = model_folder("sentence-transformers/all-MiniLM-L6-v2")
        assert "/" not in folder and folder.startswith("sentence-transformers_all-MiniLM")
        assert model_folder("a/b") != model_folder("a_b")

    def test_a_corrupt_file_is_ignored_and_replaced(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        path = cache_file(tmp_path, "counting")
        path.parent.mkdir(parents=True)
        path.write_bytes(b"not a numpy file")
        model = CountingEmbedder()
        memo = MemoEmbedder(model, cache_dir=tmp_path)
        vectors = memo.embed_documents(TEXTS)
        assert model.documents == 3
        assert "unreadable embedding cache" in caplog.text
        memo.flush()
        again_model = CountingEmbedder()
        again = MemoEmbedder(again_model, cache_dir=tmp_path)
        np.testing.assert_array_equal(again.embed_documents(TEXTS), vectors)
        assert again_model.documents == 0
        assert not list(path.parent.glob("*.tmp"))  # no temporary file left behind

    def test_a_wrong_dimension_is_ignored(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        small = MemoEmbedder(CountingEmbedder(dim=16), cache_dir=tmp_path)
        small.embed_documents(TEXTS)
        small.flush()
        model = CountingEmbedder(dim=32)  # same name, another size
        vectors = MemoEmbedder(model, cache_dir=tmp_path).embed_documents(TEXTS)
        assert model.documents == 3 and vectors.shape == (4, 32)
        assert "the model gives 32" in caplog.text

    def test_vectors_are_written_every_flush_every(self, tmp_path: Path) -> None:
        memo = MemoEmbedder(CountingEmbedder(), cache_dir=tmp_path, flush_every=2)
        memo.embed_documents(["a b c"])
        assert not cache_file(tmp_path, "counting").exists()
        memo.embed_documents(["d e f"])
        assert cache_file(tmp_path, "counting").exists()  # without a flush

    def test_an_unwritable_cache_is_logged_not_raised(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        blocker = tmp_path / "file"
        blocker.write_text("a file where the cache folder should be")
        model = CountingEmbedder()
        memo = MemoEmbedder(model, cache_dir=blocker)
        memo.embed_documents(TEXTS)
        memo.flush()
        assert "cannot write the embedding cache" in caplog.text
        assert model.documents == 3
