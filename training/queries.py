"""Synthetic shopper queries built from a product's own structure: no labels, no model.

Each query names the unit it was built from, which is its positive: the product unit for the
product-search templates, the Q&A passage for the catalog's own questions. Queries are short
(2 to 6 words), lower-cased, in the product's language, and never the whole title: a copied
title would only teach the re-ranker to match words.

Templates (the name travels with each query and is counted in the manifest):

- ``title_short``: the title shortened, its head noun (the title words that name the category)
  kept, some modifiers dropped, word order kept, the brand dropped half of the time;
- ``brand_category``: brand and category leaf ("sony headphones", "华为耳机");
- ``category_attribute``: category leaf and one attribute ("over-ear headphones",
  "headphones 30 hours battery life", "256GB智能手机");
- ``title_feature``: a short title phrase and a feature word from the attributes, or a price
  phrase ("noise cancelling sony headphones", "headphones under $350");
- ``review_phrase``: a few words from one of the product's reviews, sometimes with the category
  leaf ("headphones long flights");
- ``qa_question``: the catalog's own Q&A questions, whose answer passage is the positive.

Everything is deterministic for a seed: each product draws from its own random generator
seeded with the seed and the product id, so a product's queries do not depend on the others.
"""

from __future__ import annotations

import logging
import math
import random
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from indexer.units import format_value, passage_units
from retrieval import text
from retrieval.schema import AttributeValue, Product, UnitKind

logger = logging.getLogger(__name__)

PRODUCT_TEMPLATES = (
    "title_short",
    "brand_category",
    "category_attribute",
    "title_feature",
    "review_phrase",
)
QA_TEMPLATE = "qa_question"
MAX_WORDS = 6

_PARENTHESES = re.compile(r"\([^)]*\)|（[^）]*）|\[[^\]]*\]|【[^】]*】")
_EDGE = " \t,.;:!?\"'“”‘’()[]{}<>、，。；：！？（）【】《》"
_CLAUSE = re.compile(r"[.!?;,:，。！？；：、\n]+")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
_LETTER = re.compile(r"[^\W\d_]")
_ITEM_SEPARATOR = re.compile(r"[、,，;；/]")
# A word at either end of a review phrase that makes it read like a sentence, not a query.
_EDGE_STOP = text.STOP_WORDS | {
    "very",
    "really",
    "just",
    "also",
    "too",
    "quite",
    "much",
    "if",
    "when",
    "than",
    "then",
    "after",
    "only",
    "很",
    "真的",
    "已经",
    "有点",
    "非常",
    "比较",
    "建议",
    "还",
    "但",
    "但是",
    "不过",
    "上",
}
# Last part of an attribute key that is a unit: "battery_life_hours" → 30 hours battery life.
_UNITS = frozenset(
    {
        *("hours", "hour", "h", "min", "minutes", "g", "kg", "mm", "cm", "m", "km"),
        *("inch", "inches", "in", "gb", "tb", "mb", "w", "watts", "mah", "l", "ml", "oz"),
        *("lb", "lbs", "db", "pieces", "pcs", "cups", "quart", "quarts", "mp", "hz", "v"),
        *("c", "f", "bar"),
    }
)


@dataclass(frozen=True)
class SyntheticQuery:
    """A query and the unit it was built from (its positive)."""

    text: str
    template: str
    product_id: str
    unit_id: str
    kind: UnitKind


def _segment(piece: str) -> list[str]:
    """A CJK run cut into words by jieba, a number kept with its unit ("480毫升") or the name
    it ends ("赤兔7"); Latin text is one word."""
    if not text.has_cjk(piece):
        word = piece.strip(_EDGE)
        return [word] if word else []
    text.warm_up()
    import jieba

    cut = [w for w in (p.strip(_EDGE) for p in jieba.lcut(piece)) if w]
    words: list[str] = []
    i = 0
    while i < len(cut):
        word = cut[i]
        if _NUMBER.fullmatch(word):
            following = cut[i + 1] if i + 1 < len(cut) else ""
            if following and text.has_cjk(following) and len(following) <= 2:
                words.append(word + following)
                i += 2
                continue
            if words and not following:
                words[-1] += word
                i += 1
                continue
        words.append(word)
        i += 1
    return words


def words_of(phrase: str) -> list[str]:
    """The words of a phrase: spaces split Latin text (a number and its unit stay one word:
    "128 GB"), jieba cuts Chinese runs."""
    words: list[str] = []
    for piece in phrase.split():
        for word in _segment(piece):
            if words and _NUMBER.fullmatch(words[-1]) and word.casefold() in _UNITS:
                words[-1] = f"{words[-1]} {word}"
            else:
                words.append(word)
    return words


def join_words(words: Iterable[str]) -> str:
    """Words as a query: a space between words unless both sides are Chinese."""
    out = ""
    for word in words:
        if out and not (text.has_cjk(out[-1]) and text.has_cjk(word[0])):
            out += " "
        out += word
    return out


def _norm(phrase: str) -> str:
    return re.sub(r"\s+", "", text.normalize(phrase))


def _lower(phrase: str) -> str:
    return phrase.casefold()


class _ProductView:
    """The parts of a product the templates draw on, computed once."""

    def __init__(self, product: Product) -> None:
        self.product = product
        self.cjk = text.has_cjk(product.title)
        path = product.category_path
        self.leaf = _lower(path[-1]) if path else None
        main = _PARENTHESES.sub(" ", product.title)
        if not self.cjk:
            main = main.split(",")[0]
        self.words = words_of(main)
        self.brand_words = self._leading_brand()
        self.head = self._head_span()

    def _leading_brand(self) -> list[int]:
        brand = self.product.brand
        if not brand:
            return []
        brand_words = [w.casefold() for w in words_of(brand)]
        title = [w.casefold() for w in self.words[: len(brand_words)]]
        return list(range(len(brand_words))) if title == brand_words else []

    def _matches_leaf(self, word: str) -> bool:
        if not self.leaf:
            return False
        if text.has_cjk(word):
            chars = set(word)
            leaf_chars = set(self.leaf)
            return chars <= leaf_chars or len(chars & leaf_chars) >= 2
        return bool(set(text.tokenize(word)) & set(text.tokenize(self.leaf)))

    def _head_span(self) -> range:
        """The title words that name the product's category; where none does, the first word
        after the brand (the product line: "Galaxy", "AirPods")."""
        candidates = [i for i in range(len(self.words)) if i not in self.brand_words]
        if not candidates:
            return range(0)
        matching = [i for i in candidates if self._matches_leaf(self.words[i])]
        end = matching[-1] if matching else candidates[0]
        start = end
        while start - 1 in matching:
            start -= 1
        return range(start, end + 1)

    def is_title(self, query: str) -> bool:
        title = _norm(self.product.title)
        return _norm(query) in (title, _norm(join_words(self.words)))


def _compose(view: _ProductView, indices: Iterable[int]) -> str:
    return _lower(join_words(view.words[i] for i in sorted(set(indices))))


def _modifier(word: str) -> bool:
    """Whether a title word can stand in a shortened title: not a stop word ("for"), not a
    lone Chinese character ("真")."""
    if word.casefold() in text.STOP_WORDS:
        return False
    return not (len(word) == 1 and text.has_cjk(word))


def _title_short(view: _ProductView, rng: random.Random) -> str | None:
    words = view.words
    core = set(view.head)
    if len(words) < 2 or not core:
        return None
    keep_brand = bool(view.brand_words) and rng.random() < 0.5
    brand = set(view.brand_words) if keep_brand else set()
    others = [
        i
        for i in range(len(words))
        if i not in core and i not in view.brand_words and _modifier(words[i])
    ]
    target = rng.randint(2, MAX_WORDS)
    budget = max(target - len(core) - len(brand), 0)
    chosen: set[int] = set()
    left = view.head.start - 1
    if budget and left in others and rng.random() < 0.6:  # compounds are right-headed
        chosen.add(left)
    rest = [i for i in others if i not in chosen]
    chosen.update(rng.sample(rest, min(budget - len(chosen), len(rest))))
    indices = core | chosen | brand
    if len(indices) >= len(words):  # never the whole title: drop a modifier
        droppable = sorted(indices - core)
        if not droppable:
            return None
        indices.discard(rng.choice(droppable))
    if len(indices) < 2 and others:
        indices.add(rng.choice(others))
    if len(indices) < 2 or len(indices) > MAX_WORDS + len(brand):
        return None
    return _compose(view, indices)


def _brand_category(view: _ProductView, rng: random.Random) -> str | None:
    brand = view.product.brand
    if not brand or not view.leaf:
        return None
    if _norm(view.leaf) in _norm(brand) or _norm(brand) in _norm(view.leaf):
        return None
    return _lower(join_words([*words_of(brand), view.leaf]))


def _key_words(key: str) -> list[str]:
    return [part for part in re.split(r"[_\s]+", key) if part]


def _attribute_phrase(view: _ProductView, key: str, value: AttributeValue) -> str | None:
    """The attribute with the category leaf, the way a shopper would combine them."""
    leaf = view.leaf or ""
    parts = _key_words(key)
    if isinstance(value, bool):
        return join_words([*parts, leaf]) if value and parts else None
    if isinstance(value, int | float):
        number = format_value(value)
        unit = parts[-1] if len(parts) >= 2 else None
        if view.cjk:
            if unit and (text.has_cjk(unit) or unit.casefold() in _UNITS):
                return f"{number}{unit}{leaf}"
            return join_words([leaf, f"{''.join(parts)}{number}"])
        if unit and unit.casefold() in _UNITS:
            return join_words([leaf, number, unit, *parts[:-1]])
        return join_words([leaf, *parts, number])
    item = _ITEM_SEPARATOR.split(value)[0].strip()
    if not item or len(words_of(item)) > 3:
        return None
    if _LETTER.search(item) and not item.replace(".", "").isdigit():
        return join_words([item, leaf])
    return join_words([leaf, *parts, item])


def _category_attribute(view: _ProductView, rng: random.Random) -> str | None:
    if not view.leaf:
        return None
    phrases = [
        phrase
        for key, value in view.product.attributes.items()
        if (phrase := _attribute_phrase(view, key, value))
    ]
    return _lower(rng.choice(phrases)) if phrases else None


def _nice_ceiling(price: float) -> int:
    step = 10 if price < 100 else 50 if price < 500 else 100 if price < 2000 else 500
    ceiling = math.ceil(price / step) * step
    return int(ceiling + step if ceiling == price else ceiling)


def _price_phrase(product: Product, cjk: bool) -> str | None:
    if product.price is None or product.price <= 0:
        return None
    amount = _nice_ceiling(product.price)
    currency = product.currency.upper()
    if cjk or currency in ("CNY", "RMB"):
        return f"{amount}元以下" if cjk else f"under {amount} yuan"
    symbol = {"USD": "$", "EUR": "€", "GBP": "£"}.get(currency)
    return f"under {symbol}{amount}" if symbol else f"under {amount} {currency.lower()}"


def _features(view: _ProductView) -> list[str]:
    """Feature words from the attributes: true flags and short text values."""
    found: list[str] = []
    for key, value in view.product.attributes.items():
        if isinstance(value, bool):
            if value:
                found.append(join_words(_key_words(key)))
        elif isinstance(value, str) and _LETTER.search(value):
            item = _ITEM_SEPARATOR.split(value)[0].strip()
            if item and len(words_of(item)) <= 2:
                found.append(item)
    return [_lower(f) for f in found]


def _title_feature(view: _ProductView, rng: random.Random) -> str | None:
    core = set(view.head)
    if not core:
        return None
    indices = set(core)
    left = view.head.start - 1
    if left >= 0 and left not in view.brand_words and rng.random() < 0.5:
        indices.add(left)
    if view.brand_words and rng.random() < 0.5:
        indices.update(view.brand_words)
    phrase = _compose(view, indices)
    taken = {w.casefold() for w in words_of(phrase)}
    features = [f for f in _features(view) if not taken & {w.casefold() for w in words_of(f)}]
    price = _price_phrase(view.product, view.cjk)
    if price and (not features or rng.random() < 0.3):
        return join_words([phrase, price])
    if not features:
        return None
    feature = rng.choice(features)
    if view.cjk or rng.random() < 0.5:
        return join_words([feature, phrase])
    return join_words([phrase, feature])


def _review_phrase(view: _ProductView, rng: random.Random) -> str | None:
    reviews = view.product.reviews
    if not reviews:
        return None
    clauses = [
        words
        for review in reviews
        for clause in _CLAUSE.split(review.text)
        if len(words := words_of(clause)) >= 2
    ]
    for _ in range(6):
        if not clauses:
            return None
        words = rng.choice(clauses)
        size = rng.randint(2, min(5, len(words)))
        start = rng.randint(0, len(words) - size)
        window = words[start : start + size]
        while window and window[0].casefold() in _EDGE_STOP:
            window = window[1:]
        while window and window[-1].casefold() in _EDGE_STOP:
            window = window[:-1]
        content = [w for w in window if w.casefold() not in _EDGE_STOP]
        if len(content) >= 2 or (len(content) == 1 and view.leaf):
            phrase = join_words(window)
            if view.leaf and (len(content) == 1 or rng.random() < 0.5):
                phrase = join_words([view.leaf, phrase])
            return _lower(phrase)
    return None


_BUILDERS: dict[str, Callable[[_ProductView, random.Random], str | None]] = {
    "title_short": _title_short,
    "brand_category": _brand_category,
    "category_attribute": _category_attribute,
    "title_feature": _title_feature,
    "review_phrase": _review_phrase,
}


def qa_queries(product: Product, *, limit: int | None = None) -> list[SyntheticQuery]:
    """The product's own Q&A questions, each with its Q&A passage as the positive."""
    passages = [u for u in passage_units(product) if u.kind == "qa"]
    return [
        SyntheticQuery(pair.question, QA_TEMPLATE, product.id, unit.id, "qa")
        for pair, unit in zip(product.qa, passages, strict=True)
    ][:limit]


def product_queries(
    product: Product,
    *,
    count: int,
    seed: int,
    templates: Sequence[str] = PRODUCT_TEMPLATES,
) -> list[SyntheticQuery]:
    """Up to ``count`` distinct product-search queries for ``product``, its product unit the
    positive; templates are tried in an order drawn for the product, twice round at most."""
    rng = random.Random(f"{seed}:{product.id}")
    view = _ProductView(product)
    order = list(templates)
    rng.shuffle(order)
    seen: set[str] = set()
    queries: list[SyntheticQuery] = []
    for template in order * 2:
        if len(queries) >= count:
            break
        query = _BUILDERS[template](view, rng)
        if not query:
            continue
        query = " ".join(query.split())
        key = _norm(query)
        if not key or key in seen or view.is_title(query):
            continue
        seen.add(key)
        queries.append(SyntheticQuery(query, template, product.id, product.id, "product"))
    return queries


def generate_queries(
    products: Iterable[Product],
    *,
    per_product: int = 4,
    seed: int = 42,
    qa_per_product: int | None = None,
) -> list[SyntheticQuery]:
    """Product-search queries and Q&A questions for every product, in catalog order."""
    queries: list[SyntheticQuery] = []
    for product in products:
        queries.extend(product_queries(product, count=per_product, seed=seed))
        limit = per_product if qa_per_product is None else qa_per_product
        queries.extend(qa_queries(product, limit=limit))
    return queries


def cap_queries(
    queries: Sequence[SyntheticQuery], limit: int | None, *, seed: int
) -> list[SyntheticQuery]:
    """At most ``limit`` queries, drawn at random for the seed, kept in their order."""
    if limit is None or len(queries) <= limit:
        return list(queries)
    keep = set(random.Random(f"{seed}:cap").sample(range(len(queries)), limit))
    return [q for i, q in enumerate(queries) if i in keep]
