"""The Elasticsearch store's request bodies and documents, without a server."""

from __future__ import annotations

import numpy as np
import pytest

from indexer.units import product_units
from retrieval.schema import Filters, Product
from retrieval.stores.base import CJK_CHARS
from retrieval.stores.elasticsearch.mapping import (
    Generation,
    cross_vector_of,
    index_body,
    unit_document,
    vector_of,
)
from retrieval.stores.elasticsearch.queries import (
    crosslingual_body,
    filter_clauses,
    lexical_body,
    matched_terms,
    semantic_body,
)

BOOSTS = {"title": 3.0, "description": 0.5}


def _fields(query: str, boosts: dict[str, float] = BOOSTS) -> tuple[list[str], list[str]]:
    body = lexical_body(query, ("product",), None, 10, boosts)
    assert body is not None
    fields = body["query"]["bool"]["must"][0]["multi_match"]["fields"]
    return fields, list(body["highlight"]["fields"])


@pytest.mark.parametrize("query", ["wireless earbuds", "café crème 100%", "Ünïcode ß"])
def test_a_query_without_cjk_characters_leaves_the_cjk_sub_fields_out(query: str) -> None:
    fields, highlighted = _fields(query)
    assert fields == ["title^3", "description^0.5"]
    assert highlighted == ["title", "description"]


@pytest.mark.parametrize("query", ["降噪耳机", "sony 耳机", "イヤホン", "이어폰", "ｲﾔﾎﾝ"])
def test_a_query_with_cjk_characters_searches_both(query: str) -> None:
    fields, highlighted = _fields(query)
    assert fields == [
        "title^3",
        "title.cjk^3",
        "title.chars^3",
        "description^0.5",
        "description.cjk^0.5",
        "description.chars^0.5",
    ]
    assert highlighted == [f.partition("^")[0] for f in fields]


def test_the_character_weight_applies_to_the_chars_sub_fields() -> None:
    boosts = {**BOOSTS, CJK_CHARS: 4.0}
    fields, _ = _fields("降噪耳机", boosts)
    assert fields[:3] == ["title^3", "title.cjk^3", "title.chars^12"]
    assert _fields("earbuds", boosts)[0] == ["title^3", "description^0.5"]
    fields, highlighted = _fields("耳机", {**BOOSTS, CJK_CHARS: 0.0})
    assert fields == ["title^3", "title.cjk^3", "description^0.5", "description.cjk^0.5"]
    assert highlighted == ["title", "title.cjk", "description", "description.cjk"]


def test_characters_are_shown_only_where_no_word_holds_them() -> None:
    def marked(*tokens: str) -> list[str]:
        return ["".join(f"\ue000{t}\ue001 " for t in tokens)]

    highlight = {
        "title.cjk": marked("耳机"),
        "title.chars": marked("耳", "机", "降"),
        "description.chars": marked("电"),
    }
    assert matched_terms(highlight) == {"title": ("耳机", "降"), "description": ("电",)}


def test_the_vector_leaves_source_and_comes_back_bit_for_bit() -> None:
    product = Product(id="p", title="Tent")
    (unit,) = product_units(product)[:1]
    vector = np.random.default_rng(0).standard_normal(384).astype(np.float32)
    doc = unit_document(product, unit, vector, position=0, embedding_model="m")
    assert index_body(embedding_model="m", dim=384)["mappings"]["_source"] == {
        "excludes": ["embedding", "cross_embedding"]
    }
    stored = {k: v for k, v in doc.items() if k != "embedding"}  # what _source keeps
    np.testing.assert_array_equal(vector_of(stored), vector)


def test_vectors_of_an_older_index_are_read_from_embedding() -> None:
    assert vector_of({"embedding": [0.5, -1.0]}).tolist() == [0.5, -1.0]  # type: ignore[union-attr]
    assert vector_of({"kind": "product"}) is None


class TestCrossLingual:
    def test_the_body_searches_the_cross_vectors_of_the_other_script(self) -> None:
        filters = Filters(price_max=100.0)
        body = crosslingual_body(np.array([3.0, 4.0]), "cjk", ("product",), filters, 5)
        assert body is not None
        knn = body["knn"]
        assert knn["field"] == "cross_embedding"
        assert knn["query_vector"] == pytest.approx([0.6, 0.8])
        assert knn["k"] == 5 and body["size"] == 5
        assert knn["filter"] == {
            "bool": {
                "filter": filter_clauses(("product",), filters),
                "must_not": [{"term": {"script": "cjk"}}],
            }
        }
        semantic = semantic_body(np.array([3.0, 4.0]), ("product",), filters, 5)
        assert semantic is not None and semantic["knn"]["field"] == "embedding"
        assert "must_not" not in semantic["knn"]["filter"]["bool"]

    @pytest.mark.parametrize(
        ("vector", "top_k"), [(np.zeros(4), 5), (np.full(4, np.nan), 5), (np.ones(4), 0)]
    )
    def test_no_direction_or_no_room_is_no_search(self, vector: np.ndarray, top_k: int) -> None:
        assert crosslingual_body(vector, "latin", ("product",), None, top_k) is None

    def test_the_mapping_has_cross_vectors_only_with_a_cross_model(self) -> None:
        plain = index_body(embedding_model="m", dim=8)["mappings"]
        assert "cross_embedding" not in plain["properties"]
        assert plain["properties"]["script"] == {"type": "keyword"}
        assert plain["_meta"]["cross_embedding_model"] is None
        assert plain["_meta"]["cross_dim"] == 0
        cross = index_body(embedding_model="m", dim=8, cross_model="x", cross_dim=16)["mappings"]
        field = cross["properties"]["cross_embedding"]
        assert field["dims"] == 16 and field["similarity"] == "cosine"
        assert field["index_options"] == cross["properties"]["embedding"]["index_options"]
        assert (cross["_meta"]["cross_embedding_model"], cross["_meta"]["cross_dim"]) == ("x", 16)
        with pytest.raises(ValueError, match="dimension"):
            index_body(embedding_model="m", dim=8, cross_model="x", cross_dim=0)

    def test_a_unit_document_carries_its_script_and_cross_vector(self) -> None:
        english = Product(id="en", title="Noise cancelling headphones")
        chinese = Product(id="zh", title="降噪耳机", description="Bluetooth 5.3")
        vector = np.ones(4, np.float32)
        doc = unit_document(
            english, product_units(english)[0], vector, position=0, embedding_model="m"
        )
        assert doc["script"] == "latin" and "cross_embedding" not in doc
        doc = unit_document(
            chinese,
            product_units(chinese)[0],
            vector,
            position=0,
            embedding_model="m",
            cross_vector=np.array([0.5, -0.5], np.float32),
        )
        assert doc["script"] == "cjk"
        assert doc["cross_embedding"] == [0.5, -0.5]

    def test_older_indexes_read_as_without_cross_lingual_vectors(self) -> None:
        meta = {"embedding_model": "m", "dim": 8}
        older = Generation("i", meta)  # format 3: no cross fields in _meta
        held = Generation("i", {**meta, "cross_embedding_model": "x", "cross_dim": 16})
        assert older.cross_embedding_model is None and held.cross_embedding_model == "x"

    def test_a_unit_document_keeps_its_cross_vector_readable(self) -> None:
        product = Product(id="p", title="耳机")
        (unit,) = [u for u in product_units(product) if u.kind == "product"]
        cross = np.array([0.6, -0.8], np.float32)
        doc = unit_document(
            product,
            unit,
            np.ones(2, np.float32),
            position=0,
            embedding_model="m",
            cross_vector=cross,
        )
        np.testing.assert_array_equal(cross_vector_of(doc), cross)
        assert cross_vector_of({"text": "x"}) is None
