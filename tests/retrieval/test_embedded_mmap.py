"""The embedded store maps its vectors read-only, and a re-index never breaks an open mapping."""

from pathlib import Path

import numpy as np
import pytest

from indexer.indexer import index_catalog
from indexer.reader import read_catalog
from retrieval.embedders.hashing import HashingEmbedder
from retrieval.stores import embedded
from retrieval.stores.embedded import EmbeddedStore
from tests.conftest import PRODUCTS, write_jsonl

BOOSTS = {"title": 3.0, "brand": 2.0, "category": 1.5, "attributes": 1.0, "description": 0.5}
QUERIES = ["wireless headphones", "cast iron skillet", "running shoes", "espresso"]


def _mapped(array: np.ndarray) -> bool:
    base: np.ndarray | None = array
    while base is not None:
        if isinstance(base, np.memmap):
            return True
        base = base.base
    return False


def _results(store: EmbeddedStore, embedder: HashingEmbedder) -> list[object]:
    found: list[object] = []
    for query in QUERIES:
        vector = embedder.embed_query(query)
        lexical, semantic = store.hybrid(
            query, vector, kinds=("product", "review"), filters=None, top_k=10, boosts=BOOSTS
        )
        found.append([(h.unit.id, round(h.score, 6)) for h in lexical])
        found.append([(h.unit.id, round(h.score, 6)) for h in semantic])
    return found


def test_vectors_are_mapped_read_only_and_search_as_a_full_load(
    store: EmbeddedStore, embedder: HashingEmbedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened = EmbeddedStore(tmp_path / "index")
    vectors = opened._snapshot.vectors
    assert _mapped(vectors)
    assert not vectors.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        vectors[0, 0] = 1.0
    assert type(vectors @ embedder.embed_query("x")) is np.ndarray  # no memmap results

    monkeypatch.setattr(embedded, "_map_vectors", lambda path: np.load(path))
    loaded = EmbeddedStore(tmp_path / "index")
    assert not _mapped(loaded._snapshot.vectors)
    np.testing.assert_array_equal(loaded._snapshot.vectors, vectors)
    assert _results(opened, embedder) == _results(loaded, embedder)
    # the store that wrote the index holds its vectors in memory: the same results
    assert _results(opened, embedder) == _results(store, embedder)


def test_product_vectors_are_the_callers_own(store: EmbeddedStore, tmp_path: Path) -> None:
    opened = EmbeddedStore(tmp_path / "index")
    pid = PRODUCTS[0]["id"]
    vector = opened.product_vectors([pid])[pid]
    row = opened._snapshot.unit_index[pid]
    before = np.array(opened._snapshot.vectors[row])
    vector /= 2  # the caller may normalise in place: the index is untouched
    np.testing.assert_array_equal(opened._snapshot.vectors[row], before)


def test_a_reindex_is_seen_and_the_open_mapping_stays_valid(
    store: EmbeddedStore, embedder: HashingEmbedder, tmp_path: Path
) -> None:
    server = EmbeddedStore(tmp_path / "index", refresh_interval_s=0.0)
    old_snapshot = server._snapshot
    old_version = old_snapshot.version
    expected_old = _results(server, embedder)
    old_folder = tmp_path / "index" / f"gen-{old_version}"
    assert (old_folder / "vectors.npy").exists()

    # Another process (the indexer) re-indexes a smaller catalog with prune.
    smaller = write_jsonl(tmp_path / "smaller.jsonl", PRODUCTS[:3])
    indexer = EmbeddedStore(tmp_path / "index")
    report = index_catalog(read_catalog(smaller), indexer, embedder, prune=True, progress=False)
    assert report.version != old_version
    assert not old_folder.exists()  # the old generation is removed, not rewritten

    # The old snapshot (a search in flight) still reads its unlinked mapping, unchanged.
    assert _mapped(old_snapshot.vectors)
    query = embedder.embed_query("wireless headphones")
    old_hits = old_snapshot.semantic(query, ("product", "review"), None, 10)
    assert [(h.unit.id, round(h.score, 6)) for h in old_hits] == expected_old[1]

    # A fresh search loads the new version.
    assert server.stats().version == report.version
    assert server.stats().products == 3
    assert _results(server, embedder) == _results(indexer, embedder)
    assert _mapped(server._snapshot.vectors)


def test_a_generation_removed_between_pointer_and_load_is_retried(
    store: EmbeddedStore, embedder: HashingEmbedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = EmbeddedStore(tmp_path / "index", refresh_interval_s=0.0)
    indexer = EmbeddedStore(tmp_path / "index")
    real_load = EmbeddedStore._load
    calls: list[str] = []

    def racing_load(self: EmbeddedStore, name: str) -> object:
        calls.append(name)
        if len(calls) == 1:  # the indexer commits after CURRENT was read: the folder is gone
            smaller = write_jsonl(tmp_path / "smaller.jsonl", PRODUCTS[:2])
            index_catalog(read_catalog(smaller), indexer, embedder, prune=True, progress=False)
        return real_load(self, name)

    # make the first load see a folder that the commit then removes
    old_name = (tmp_path / "index" / "CURRENT").read_text(encoding="utf-8").strip()
    monkeypatch.setattr(server, "_current_name", lambda: _current(tmp_path, calls, old_name))
    monkeypatch.setattr(EmbeddedStore, "_load", racing_load)
    assert server._load_current() is not None
    assert len(calls) == 2 and calls[0] == old_name and calls[1] != old_name
    reloaded = server._load_current()
    assert reloaded is not None
    assert reloaded.products.keys() == {p["id"] for p in PRODUCTS[:2]}


def _current(tmp_path: Path, calls: list[str], old_name: str) -> str:
    if not calls:
        return old_name
    return (tmp_path / "index" / "CURRENT").read_text(encoding="utf-8").strip()


def test_an_empty_index_loads(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "index")
    store.writer(embedding_model="hashing-256", dim=256, prune=True).commit()
    reopened = EmbeddedStore(tmp_path / "index")
    assert reopened.stats().products == 0
    assert (
        reopened.semantic(np.ones(256, np.float32), kinds=("product",), filters=None, top_k=5) == []
    )
