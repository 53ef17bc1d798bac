"""`EmbeddedStore`: the store contract (tests/retrieval/store_contract.py) and what only the
embedded store does: its files, reloading, and scoring every candidate."""

import pickle
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from indexer.indexer import index_catalog
from indexer.reader import read_catalog
from indexer.units import product_units
from retrieval.embedders.hashing import HashingEmbedder
from retrieval.schema import PASSAGE_KINDS, Filters, Product
from retrieval.stores.base import CJK_CHARS, ProductRecord
from retrieval.stores.embedded import EmbeddedStore
from tests.conftest import PRODUCTS, write_jsonl
from tests.retrieval.store_contract import ALL_FILTERS, StoreContract


class TestEmbeddedStoreContract(StoreContract):
    @pytest.fixture
    def contract_store(self, store: EmbeddedStore) -> EmbeddedStore:
        return store

    @pytest.fixture
    def empty_store(self, tmp_path: Path) -> Iterator[EmbeddedStore]:
        empty = EmbeddedStore(tmp_path / "empty")
        yield empty
        empty.close()


class TestPersistence:
    def test_restart_loads_without_re_embedding(
        self, tmp_path: Path, store: EmbeddedStore, catalog_path: Path, embedder: HashingEmbedder
    ) -> None:
        reopened = EmbeddedStore(tmp_path / "index")
        assert reopened.stats().products == len(PRODUCTS)
        assert reopened.stats().version == store.stats().version
        report = index_catalog(read_catalog(catalog_path), reopened, embedder, progress=False)
        assert report.embedded == 0
        assert report.reused_embeddings == report.units

    def test_changed_text_is_re_embedded(
        self, tmp_path: Path, store: EmbeddedStore, embedder: HashingEmbedder
    ) -> None:
        changed = dict(PRODUCTS[0], title="Sony WH-1000XM6 Headphones")
        path = write_jsonl(tmp_path / "one.jsonl", [changed])
        report = index_catalog(read_catalog(path), store, embedder, progress=False)
        assert report.embedded == 1  # only the product unit's text changed
        assert store.get_product("hp-sony").title == "Sony WH-1000XM6 Headphones"
        assert store.stats().products == len(PRODUCTS)

    def test_crash_mid_index_keeps_previous_index(
        self,
        tmp_path: Path,
        store: EmbeddedStore,
        embedder: HashingEmbedder,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        before = store.stats().version
        path = write_jsonl(tmp_path / "new.jsonl", [{"id": "new", "title": "New thing"}])

        def crash(*args: object, **kwargs: object) -> None:
            raise OSError("disk full")

        monkeypatch.setattr(np, "save", crash)
        with pytest.raises(OSError, match="disk full"):
            index_catalog(read_catalog(path), store, embedder, progress=False)
        monkeypatch.undo()
        assert store.stats().version == before
        reopened = EmbeddedStore(tmp_path / "index")
        assert reopened.stats().version == before
        assert reopened.get_product("new") is None
        assert reopened.stats().products == len(PRODUCTS)

    def test_another_process_commit_is_picked_up(
        self, tmp_path: Path, store: EmbeddedStore, embedder: HashingEmbedder
    ) -> None:
        reader = EmbeddedStore(tmp_path / "index", refresh_interval_s=0)
        path = write_jsonl(tmp_path / "add.jsonl", [{"id": "added", "title": "Camping tent"}])
        index_catalog(read_catalog(path), store, embedder, progress=False)
        assert reader.get_product("added") is not None

    def test_in_memory_store_writes_nothing(
        self, tmp_path: Path, embedder: HashingEmbedder, catalog_path: Path
    ) -> None:
        memory = EmbeddedStore()
        index_catalog(read_catalog(catalog_path), memory, embedder, progress=False)
        assert memory.stats().products == len(PRODUCTS)


class TestWrites:
    def test_wrong_embedding_shape_is_reported_not_written(
        self, store: EmbeddedStore, embedder: HashingEmbedder
    ) -> None:
        product = Product(id="bad-vectors", title="Bad vectors")
        record = ProductRecord(product, product_units(product), np.zeros((1, 3), np.float32))
        writer = store.writer(embedding_model=embedder.name, dim=embedder.dim)
        failures = writer.write([record])
        assert [f.product_id for f in failures] == ["bad-vectors"]
        writer.commit()
        assert store.get_product("bad-vectors") is None


@pytest.mark.parametrize("filters", [None, Filters(product_ids=["hp-sony"]), *ALL_FILTERS])
def test_knn_scores_every_candidate_whatever_the_share_filtered(
    store: EmbeddedStore, embedder: HashingEmbedder, filters: Filters | None
) -> None:
    """Few candidates are gathered, many are scored over the whole matrix: same results."""
    vector = embedder.embed_query("wireless noise cancelling headphones")
    for kinds in (("product",), PASSAGE_KINDS):
        found = store.semantic(vector, kinds=kinds, filters=filters, top_k=50)
        snapshot = store._snapshot
        allowed = np.flatnonzero(snapshot.mask(kinds, filters))
        query = vector / np.linalg.norm(vector)
        expected = sorted(
            ((float(snapshot.vectors[i] @ query), snapshot.units[i].id) for i in allowed),
            key=lambda pair: -pair[0],
        )[:50]
        assert [hit.unit.id for hit in found] == [unit_id for _, unit_id in expected]
        assert [hit.score for hit in found] == pytest.approx([score for score, _ in expected])


class TestChineseCharacters:
    def test_matched_terms_show_words_not_the_characters_inside_them(
        self, store: EmbeddedStore
    ) -> None:
        boosts = {"title": 3.0, CJK_CHARS: 4.0}
        (hit,) = store.lexical("降噪耳机", kinds=("product",), filters=None, top_k=1, boosts=boosts)
        assert "耳机" in hit.matched["title"]
        assert not {"耳", "机", "降", "噪"} & set(hit.matched["title"])
        (hit,) = store.lexical("机耳", kinds=("product",), filters=None, top_k=1, boosts=boosts)
        assert hit.matched == {"title": ("机", "耳")}  # no word holds them: the characters

    def test_characters_are_derived_on_load_not_stored(
        self, tmp_path: Path, store: EmbeddedStore
    ) -> None:
        """So an index written before they existed searches them without re-indexing."""
        (generation,) = [p for p in (tmp_path / "index").iterdir() if p.is_dir()]
        with (generation / "units.pkl").open("rb") as f:
            _, terms = pickle.load(f)
        assert not any(name.endswith(".chars") for unit in terms for name in unit)
        reloaded = EmbeddedStore(tmp_path / "index")
        found = reloaded.lexical(
            "机耳", kinds=("product",), filters=None, top_k=1, boosts={"title": 1.0}
        )
        assert [h.unit.product_id for h in found] == ["zh-huawei"]
