from pathlib import Path

from indexer.indexer import index_catalog
from indexer.reader import read_catalog
from retrieval.embedders.hashing import HashingEmbedder
from retrieval.stores.embedded import EmbeddedStore
from tests.conftest import PRODUCTS, SAMPLE_CATALOG, write_jsonl


def test_counts_and_bad_rows(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "c.jsonl", [*PRODUCTS[:3], "{oops", {"id": "x"}])
    store = EmbeddedStore()
    report = index_catalog(
        read_catalog(path), store, HashingEmbedder(), progress=False, batch_size=2
    )
    assert (report.read, report.indexed, report.skipped) == (5, 3, 2)
    assert report.ok
    assert len(report.errors) == 2 and ":4: invalid JSON" in report.errors[0]
    assert store.stats().products == 3


def test_nothing_indexable_is_not_ok_and_keeps_the_old_index(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "idx")
    good = write_jsonl(tmp_path / "good.jsonl", PRODUCTS[:2])
    index_catalog(read_catalog(good), store, HashingEmbedder(), progress=False)
    version = store.stats().version
    bad = write_jsonl(tmp_path / "bad.jsonl", ["{", {"title": "no id"}])
    report = index_catalog(read_catalog(bad), store, HashingEmbedder(), prune=True, progress=False)
    assert not report.ok
    assert report.indexed == 0
    assert store.stats().version == version
    assert store.stats().products == 2


def test_repeated_id_later_row_wins(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "c.jsonl", [{"id": "a", "title": "First"}, {"id": "a", "title": "Second"}]
    )
    store = EmbeddedStore()
    report = index_catalog(
        read_catalog(path), store, HashingEmbedder(), progress=False, batch_size=1
    )
    assert report.indexed == 1
    assert store.get_product("a").title == "Second"


def test_the_shipped_sample_catalog_indexes_cleanly() -> None:
    store = EmbeddedStore()
    report = index_catalog(read_catalog(SAMPLE_CATALOG), store, HashingEmbedder(), progress=False)
    assert report.skipped == 0, report.errors
    assert report.indexed >= 30
    products = [store.get_product(f"p{i:03d}") for i in range(1, 45)]
    assert sum(1 for p in products if p and p.currency == "CNY") >= 8


def test_an_empty_file_never_prunes_the_index(tmp_path: Path) -> None:
    store = EmbeddedStore()
    index_catalog(
        read_catalog(write_jsonl(tmp_path / "c.jsonl", PRODUCTS)),
        store,
        HashingEmbedder(),
        progress=False,
    )
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    report = index_catalog(
        read_catalog(empty), store, HashingEmbedder(), prune=True, progress=False
    )
    assert not report.ok
    assert store.stats().products == len(PRODUCTS)


class CountingEmbedder(HashingEmbedder):
    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []

    def embed_documents(self, texts, *, progress=False):  # type: ignore[no-untyped-def]
        self.texts.extend(texts)
        return super().embed_documents(texts, progress=progress)


def test_a_text_repeated_in_a_batch_is_embedded_once(tmp_path: Path) -> None:
    shared = "Same stainless steel body and the same long description for both variants."
    rows = [
        {"id": "red", "title": "Kettle, red", "description": shared},
        {"id": "blue", "title": "Kettle, blue", "description": shared},
    ]
    embedder = CountingEmbedder()
    store = EmbeddedStore()
    report = index_catalog(
        read_catalog(write_jsonl(tmp_path / "c.jsonl", rows)), store, embedder, progress=False
    )
    assert embedder.texts.count(shared) == 1
    assert report.embedded == len(embedder.texts) == report.units - 1
    assert report.reused_embeddings == 1
    hits = store.semantic(
        embedder.embed_query(shared), kinds=("description",), filters=None, top_k=2
    )
    assert sorted(h.unit.product_id for h in hits) == ["blue", "red"]
    assert hits[0].score == hits[1].score
