"""Products similar to one product: its nearest neighbours by vector, in its category and price
band, in stock first, each with why it is there and what differs from the product.

The search widens only when the narrow one finds too few: the product's whole category path,
then each parent category up to its department, each wider one adding below what the narrower
ones found (in stock first within each); the price band (the product's price divided
and multiplied by `SimilarConfig.price_band`) holds unless the caller sets prices or turns it
off. Near-duplicates (variants of the product, repeats of one title) are left out.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from indexer.units import format_value
from recommendation.paging import check_page, page_of
from retrieval.schema import AttributeValue, Filters, Product, split_category
from retrieval.stores.base import DocumentStore

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SimilarConfig:
    """How similar products are found."""

    price_band: float = 2.0  # same band: price / 2 .. price * 2
    candidates: int = 100  # neighbours read per scope, beyond the page
    duplicate_similarity: float = 0.97  # at least this close to the product: a variant of it
    shared_attribute_bonus: float = 0.02  # per attribute value shared with the product
    max_differences: int = 5


@dataclass(frozen=True)
class Similar:
    """One similar product."""

    product: Product
    similarity: float  # cosine of the two products' vectors
    score: float  # similarity plus the shared-attribute bonus: the order within stock groups
    reasons: tuple[str, ...]
    differences: tuple[str, ...]


@dataclass(frozen=True)
class SimilarPage:
    """A page of products similar to ``product``."""

    product: Product
    items: list[Similar]
    page: int
    size: int
    scope: str | None  # the category searched (None: the whole catalog)
    price_band: tuple[float, float] | None


class SimilarProducts:
    """Finds similar products in a store."""

    def __init__(self, store: DocumentStore, config: SimilarConfig | None = None) -> None:
        self.store = store
        self.config = config or SimilarConfig()

    def find(
        self,
        product_id: str,
        *,
        filters: Filters | None = None,
        page: int = 1,
        size: int = 10,
        same_price_band: bool = True,
    ) -> SimilarPage | None:
        """A page of products similar to the product (None: no such product). ``filters``
        narrow the result; a category among them replaces the product's own."""
        check_page(page, size)
        product = self.store.get_product(product_id)
        if product is None:
            return None
        wanted = filters or Filters()
        band = self._band(product, wanted) if same_price_band else None
        if band is not None:
            wanted = wanted.model_copy(update={"price_min": band[0], "price_max": band[1]})
        vector = self.store.product_vectors([product_id]).get(product_id)
        needed = page * size
        found: list[Similar] = []
        seen_ids, seen_titles = {product.id}, {product.title.casefold()}
        scope: str | None = None
        if vector is None:
            logger.warning("product %s has no stored vector: no similar products", product_id)
            return SimilarPage(product, [], page, size, scope=None, price_band=band)
        for scope in _scopes(product, wanted):  # narrowest first; each wider adds what is new
            group = self._neighbours(product, vector, wanted, scope, needed, seen_ids, seen_titles)
            group.sort(key=lambda s: (_stock_rank(s.product), -s.score, s.product.id))
            found += group
            if len(found) >= needed:
                break
        return SimilarPage(
            product=product,
            items=page_of(found, page, size),
            page=page,
            size=size,
            scope=scope,
            price_band=band,
        )

    def _band(self, product: Product, filters: Filters) -> tuple[float, float] | None:
        if product.price is None or filters.price_min is not None or filters.price_max is not None:
            return None
        factor = self.config.price_band
        return (product.price / factor, product.price * factor)

    def _neighbours(
        self,
        product: Product,
        vector: np.ndarray,
        filters: Filters,
        scope: str | None,
        needed: int,
        seen_ids: set[str],
        seen_titles: set[str],
    ) -> list[Similar]:
        """The products of ``scope`` near the product, minus those seen (both sets grow)."""
        scoped = filters.model_copy(update={"category": scope})
        hits = self.store.semantic(
            vector,
            kinds=("product",),
            filters=scoped,
            top_k=needed + self.config.candidates,
        )
        similarity = {h.unit.product_id: h.score for h in hits if h.unit.product_id not in seen_ids}
        products = self.store.get_products(list(similarity))
        anchor_facets = _facets(product)
        found: list[Similar] = []
        for product_id, cosine in similarity.items():
            other = products.get(product_id)
            if other is None or cosine >= self.config.duplicate_similarity:
                continue
            title = other.title.casefold()
            if title in seen_titles:
                continue
            seen_ids.add(product_id)
            seen_titles.add(title)
            shared = sorted(anchor_facets & _facets(other))
            found.append(
                Similar(
                    product=other,
                    similarity=round(cosine, 4),
                    score=round(cosine + self.config.shared_attribute_bonus * len(shared), 4),
                    reasons=_reasons(product, other, scope, shared),
                    differences=tuple(differences(product, other)[: self.config.max_differences]),
                )
            )
        return found


def _scopes(product: Product, filters: Filters) -> list[str | None]:
    """The categories to search, narrowest first: the caller's, else the product's path and
    each parent up to its department (never other departments: a skillet is not like
    headphones), or the whole catalog for a product without a category."""
    if filters.category is not None:
        return [filters.category]
    levels = split_category(product.category)
    if not levels:
        return [None]
    return [" > ".join(levels[:n]) for n in range(len(levels), 0, -1)]


def _stock_rank(product: Product) -> int:
    return {True: 0, None: 1, False: 2}[product.in_stock]


def _facets(product: Product) -> set[tuple[str, str]]:
    return {(name, format_value(value).casefold()) for name, value in product.attributes.items()}


def _reasons(
    product: Product, other: Product, scope: str | None, shared: Sequence[tuple[str, str]]
) -> tuple[str, ...]:
    reasons = [f"similar to {product.title}"]
    if scope is not None:
        same = split_category(other.category) == split_category(product.category)
        reasons.append(f"same category: {scope}" if same else f"also in {scope}")
    if shared:
        reasons.append("shares " + ", ".join(f"{_label(n)}: {v}" for n, v in shared[:3]))
    return tuple(reasons)


def differences(product: Product, other: Product) -> list[str]:
    """What ``other`` offers against ``product``, as a shopper would say it: "cheaper (-20%)",
    "battery life hours: 40 (vs 30)", "brand: Anker (vs Sony)"."""
    out: list[str] = []
    if product.price and other.price is not None and product.currency == other.currency:
        change = (other.price - product.price) / product.price
        if abs(change) >= 0.05:
            word = "cheaper" if change < 0 else "pricier"
            out.append(f"{word} ({change:+.0%})")
    if (
        product.rating is not None
        and other.rating is not None
        and abs(other.rating - product.rating) >= 0.2
    ):
        word = "higher rated" if other.rating > product.rating else "lower rated"
        out.append(f"{word} ({other.rating:g} vs {product.rating:g})")
    if other.brand and product.brand and other.brand.casefold() != product.brand.casefold():
        out.append(f"brand: {other.brand} (vs {product.brand})")
    for name, value in other.attributes.items():
        mine = product.attributes.get(name)
        if mine is None or format_value(mine).casefold() == format_value(value).casefold():
            continue
        out.append(_attribute_difference(name, value, mine))
    return out


def _attribute_difference(name: str, value: AttributeValue, mine: AttributeValue) -> str:
    label = _label(name)
    if _is_number(value) and _is_number(mine):
        word = "more" if float(value) > float(mine) else "less"
        return f"{label}: {format_value(value)} ({word} than {format_value(mine)})"
    return f"{label}: {format_value(value)} (vs {format_value(mine)})"


def _is_number(value: AttributeValue) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def _label(name: str) -> str:
    return name.replace("_", " ").strip()
