"""Index settings and mappings, the documents, generations (index names, ``_meta``) and the
format and embedding-model checks of a write."""

from __future__ import annotations

import base64
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from retrieval.schema import Product, Unit, split_category
from retrieval.stores.base import unit_script

# 2: attribute facets, highlighting offsets; 3: vectors out of _source, .chars;
# 4: script keyword, cross-lingual vectors
INDEX_FORMAT = 4
DEFAULT_URL = "http://localhost:9200"

# Unit field (the names `DEFAULT_BOOSTS` uses) -> Elasticsearch text field.
TEXT_FIELDS: Mapping[str, str] = {
    "title": "title",
    "brand": "brand_text",
    "category": "category_text",
    "attributes": "attributes",
    "description": "description",
    "body": "body",
}
_CJK_TYPES = ["<IDEOGRAPHIC>", "<HIRAGANA>", "<KATAKANA>", "<HANGUL>"]
# Plain HNSW: 8.14+ would default to int8 and change the scores.
_HNSW = {"type": "hnsw", "m": 16, "ef_construction": 100}


# The cross-lingual vector's float32 bytes, read back to reuse on re-index (`cross_vector_of`).
# Not in indexes of format 4 written before it: the store's writer adds it (a new field).
CROSS_SOURCE: Mapping[str, Any] = {"cross_vector": {"type": "binary"}}


def _vector_field(dims: int) -> dict[str, Any]:
    return {
        "type": "dense_vector",
        "dims": dims,
        "index": True,
        "similarity": "cosine",
        "index_options": dict(_HNSW),
    }


def index_body(
    *,
    embedding_model: str,
    dim: int,
    shards: int = 1,
    replicas: int = 0,
    cross_model: str | None = None,
    cross_dim: int = 0,
) -> dict[str, Any]:
    """Settings and mappings of one catalog generation (pass to ``indices.create``); the
    ``cross_embedding`` field (``cross_dim``-d) only with a ``cross_model``.

    Text fields are analysed three times: the field itself in English (lower-cased, stop words
    out, plurals stemmed; CJK characters left to the sub-fields), ``.cjk`` with the same chain as
    the built-in ``cjk`` analyzer (width folding, lower-casing, CJK bigrams) keeping only CJK
    tokens, so a Latin word is not counted twice, and ``.chars``: the single Chinese characters
    (weighted by the `CJK_CHARS` boost, as the embedded store's character field).
    """
    # Offsets in the postings let the unified highlighter (matched terms for explanations)
    # skip re-analysing every hit's text.
    text = {
        "type": "text",
        "analyzer": "shopguide_english",
        "index_options": "offsets",
        "fields": {
            "cjk": {"type": "text", "analyzer": "shopguide_cjk", "index_options": "offsets"},
            "chars": {"type": "text", "analyzer": "shopguide_chars", "index_options": "offsets"},
        },
    }
    if cross_model is not None and cross_dim <= 0:
        msg = f"cross-lingual vectors of '{cross_model}' need a dimension, not {cross_dim}"
        raise ValueError(msg)
    cross = (
        {} if cross_model is None else {"cross_embedding": _vector_field(cross_dim), **CROSS_SOURCE}
    )
    keyword = {"type": "keyword"}
    folded = {"type": "keyword", "normalizer": "shopguide_lowercase"}
    return {
        "settings": {
            "index": {
                "number_of_shards": shards,
                "number_of_replicas": replicas,
                "refresh_interval": "-1",  # the store refreshes on commit
            },
            "analysis": {
                "normalizer": {
                    "shopguide_lowercase": {"type": "custom", "filter": ["lowercase"]},
                },
                "filter": {
                    "shopguide_possessive": {"type": "stemmer", "language": "possessive_english"},
                    "shopguide_stop": {"type": "stop", "stopwords": "_english_"},
                    "shopguide_plural": {"type": "stemmer", "language": "minimal_english"},
                    "shopguide_no_cjk": {
                        "type": "keep_types",
                        "mode": "exclude",
                        "types": _CJK_TYPES,
                    },
                    "shopguide_ideographs": {
                        "type": "keep_types",
                        "mode": "include",
                        "types": ["<IDEOGRAPHIC>"],
                    },
                    "shopguide_cjk_only": {
                        "type": "keep_types",
                        "mode": "include",
                        "types": ["<DOUBLE>", "<SINGLE>", *_CJK_TYPES],
                    },
                },
                "analyzer": {
                    "shopguide_english": {
                        "type": "custom",
                        "tokenizer": "standard",
                        "filter": [
                            "shopguide_possessive",
                            "lowercase",
                            "shopguide_no_cjk",
                            "shopguide_stop",
                            "shopguide_plural",
                        ],
                    },
                    "shopguide_cjk": {
                        "type": "custom",
                        "tokenizer": "standard",
                        "filter": ["cjk_width", "lowercase", "cjk_bigram", "shopguide_cjk_only"],
                    },
                    # The standard tokenizer gives each Chinese character as a token.
                    "shopguide_chars": {
                        "type": "custom",
                        "tokenizer": "standard",
                        "filter": ["cjk_width", "lowercase", "shopguide_ideographs"],
                    },
                },
            },
        },
        "mappings": {
            "dynamic": "strict",
            # Every search hit parses its _source: 384 floats as JSON cost more than the rest of
            # a unit. The vector is read back (personalization, re-use on re-index) from the
            # float32 bytes in ``vector`` instead (`vector_of`).
            "_source": {"excludes": ["embedding", "cross_embedding"]},
            "_meta": {
                "format": INDEX_FORMAT,
                "embedding_model": embedding_model,
                "dim": dim,
                "cross_embedding_model": cross_model,
                "cross_dim": cross_dim if cross_model is not None else 0,
                "writes": 0,
            },
            "properties": {
                "unit_id": keyword,
                "product_id": keyword,
                "kind": keyword,
                "script": keyword,
                "position": {"type": "integer"},
                **{es: text for es in TEXT_FIELDS.values()},
                "brand": folded,
                "brand_display": keyword,
                "category_path": folded,
                "facets": {**folded, "ignore_above": 256},
                "currency": keyword,
                "price": {"type": "double"},
                "rating": {"type": "double"},
                "in_stock": {"type": "boolean"},
                "text": {"type": "text", "index": False},
                "product": {"type": "object", "enabled": False},
                "embedding": _vector_field(dim),
                **cross,
                "vector": {"type": "binary"},
                "embedding_model": {"type": "keyword", "index": False, "doc_values": False},
            },
        },
    }


def _packed(vector: np.ndarray) -> str:
    return base64.b64encode(np.asarray(vector, "<f4").tobytes()).decode("ascii")


def _unpacked(encoded: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(encoded), "<f4").astype(np.float32)


def vector_of(source: Mapping[str, Any]) -> np.ndarray | None:
    """The stored vector of a unit's ``_source`` (``vector``, or ``embedding`` in indexes of
    format 2); None when it holds neither."""
    encoded = source.get("vector")
    if isinstance(encoded, str):
        return _unpacked(encoded)
    if source.get("embedding") is not None:
        return np.asarray(source["embedding"], np.float32)
    return None


def cross_vector_of(source: Mapping[str, Any]) -> np.ndarray | None:
    """The stored cross-lingual vector of a unit's ``_source``; None when it has none."""
    encoded = source.get("cross_vector")
    return _unpacked(encoded) if isinstance(encoded, str) else None


def attribute_facets(attributes: Mapping[str, Any]) -> list[str]:
    """``name=value`` keywords of a product's attributes (one per item of a list), for facet
    counts and exact attribute filters: ``{"color": "Teal", "ipx": 7}`` -> ``["color=teal",
    "ipx=7"]``. Booleans read ``true``/``false``."""
    facets: list[str] = []
    for name, value in attributes.items():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, bool):
                text = "true" if item else "false"
            elif isinstance(item, float) and item.is_integer():
                text = str(int(item))
            elif isinstance(item, (str, int, float)):
                text = str(item).strip()
            else:
                continue
            if text:
                facets.append(f"{name}={text}".casefold())
    return facets


def category_prefixes(category: str | None) -> list[str]:
    """Every prefix of a category path, case-folded: ``["a", "a > b", "a > b > c"]``."""
    levels = [level.casefold() for level in split_category(category)]
    return [" > ".join(levels[: i + 1]) for i in range(len(levels))]


def unit_document(
    product: Product,
    unit: Unit,
    vector: np.ndarray,
    *,
    position: int,
    embedding_model: str,
    cross_vector: np.ndarray | None = None,
) -> dict[str, Any]:
    """The indexed document of one unit (with its cross-lingual vector when given); the
    product's facets go on every unit."""
    doc: dict[str, Any] = {
        "unit_id": unit.id,
        "product_id": unit.product_id,
        "kind": unit.kind,
        "script": unit_script(unit),
        "position": position,
        "text": unit.text,
        "currency": product.currency,
        "embedding": vector.tolist(),
        "vector": _packed(vector),
        "embedding_model": embedding_model,
    }
    if cross_vector is not None:
        doc["cross_embedding"] = cross_vector.tolist()
        doc["cross_vector"] = _packed(cross_vector)
    for name, value in unit.fields.items():
        if value:
            doc[TEXT_FIELDS[name]] = value
    if product.brand:
        doc["brand"] = product.brand.casefold()
        doc["brand_display"] = product.brand
    prefixes = category_prefixes(product.category)
    if prefixes:
        doc["category_path"] = prefixes
    facets = attribute_facets(product.attributes)
    if facets:
        doc["facets"] = facets
    if product.price is not None:
        doc["price"] = product.price
    if product.rating is not None:
        doc["rating"] = product.rating
    if product.in_stock is not None:
        doc["in_stock"] = product.in_stock
    if unit.kind == "product":
        doc["product"] = product.model_dump(mode="json")
    return doc


@dataclass(frozen=True)
class Generation:
    """The index behind the alias now."""

    index: str
    meta: Mapping[str, Any]

    @property
    def version(self) -> str:
        return f"{self.index}@{int(self.meta.get('writes', 0))}"

    @property
    def embedding_model(self) -> str | None:
        model = self.meta.get("embedding_model")
        return str(model) if model is not None else None

    @property
    def cross_embedding_model(self) -> str | None:
        """The model of the cross-lingual vectors; None in an index without them."""
        model = self.meta.get("cross_embedding_model")
        return str(model) if model is not None else None


def new_index_name(alias: str) -> str:
    """A fresh generation's index name, ``{alias}-{YYYYmmddtHHMMSS}-{8 hex}``."""
    # Index names must be lower-case: 20240131t120000, not 20240131T120000.
    stamp = time.strftime("%Y%m%dt%H%M%S", time.gmtime())
    return f"{alias}-{stamp}-{uuid.uuid4().hex[:8]}"


def generation_pattern(alias: str) -> re.Pattern[str]:
    """The names of this alias's generations (not those of aliases sharing the prefix)."""
    return re.compile(rf"{re.escape(alias)}-\d{{8}}t\d{{6}}-[0-9a-f]{{8}}")


def format_problem(current: Generation) -> str | None:
    """Why the index behind the alias cannot take a partial write: another index format."""
    if current.meta.get("format") == INDEX_FORMAT:
        return None
    return (
        f"the index {current.index} has format {current.meta.get('format')}, this "
        f"version writes format {INDEX_FORMAT}: re-index the whole catalog with prune"
    )


def model_problem(current: Generation, embedding_model: str, dim: int) -> str | None:
    """Why the index behind the alias does not fit a write's vectors (another model)."""
    if current.embedding_model == embedding_model and current.meta.get("dim") == dim:
        return None
    return (
        f"the index was built with the embedding model "
        f"'{current.embedding_model}' ({current.meta.get('dim')}-d), not "
        f"'{embedding_model}' ({dim}-d): re-index the whole catalog with prune"
    )
