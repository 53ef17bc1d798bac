"""The Elasticsearch store's request bodies and documents, without a server."""

from __future__ import annotations

import numpy as np
import pytest

from indexer.units import product_units
from retrieval.schema import Product
from retrieval.stores.base import CJK_CHARS
from retrieval.stores.elasticsearch.mapping import index_body, unit_document, vector_of
from retrieval.stores.elasticsearch.queries import lexical_body, matched_terms

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
        "excludes": ["embedding"]
    }
    stored = {k: v for k, v in doc.items() if k != "embedding"}  # what _source keeps
    np.testing.assert_array_equal(vector_of(stored), vector)


def test_vectors_of_an_older_index_are_read_from_embedding() -> None:
    assert vector_of({"embedding": [0.5, -1.0]}).tolist() == [0.5, -1.0]  # type: ignore[union-attr]
    assert vector_of({"kind": "product"}) is None
