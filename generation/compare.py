"""Side-by-side comparison of two or three products, built from the catalog's own fields.

No model is involved: every value comes from the product record, and every line of the rendered
answer cites the numbered sources whose values it states, so a comparison cannot hold a fact
the catalog does not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from generation.quotes import Claim
from retrieval.schema import AttributeValue, Product

_LABELS = {
    "en": {"brand": "Brand", "price": "Price", "rating": "Rating", "stock": "In stock",
           "yes": "yes", "no": "no", "reviews": "reviews", "sep": "; ", "colon": ": "},
    "zh": {"brand": "品牌", "price": "价格", "rating": "评分", "stock": "有货",
           "yes": "是", "no": "否", "reviews": "条评价", "sep": "；", "colon": "："},
}  # fmt: skip


@dataclass(frozen=True)
class ComparisonRow:
    """One attribute and each product's value (None: the product does not say)."""

    attribute: str
    values: tuple[str | None, ...]


@dataclass(frozen=True)
class Comparison:
    """The compared products (in the order asked) and their attributes."""

    product_ids: tuple[str, ...]
    titles: tuple[str, ...]
    rows: tuple[ComparisonRow, ...]


def _format(value: AttributeValue) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def compare_products(products: Sequence[Product], *, language: str = "en") -> Comparison:
    """Brand, price, rating, stock, then every attribute any of them has, in first-seen order."""
    labels = _LABELS[language]
    rows = [
        ComparisonRow(labels["brand"], tuple(p.brand for p in products)),
        ComparisonRow(
            labels["price"],
            tuple(f"{p.price:.2f} {p.currency}" if p.price is not None else None for p in products),
        ),
        ComparisonRow(
            labels["rating"],
            tuple(
                None
                if p.rating is None
                else f"{p.rating:g}/5"
                + (f" ({p.review_count} {labels['reviews']})" if p.review_count else "")
                for p in products
            ),
        ),
        ComparisonRow(
            labels["stock"],
            tuple(
                None if p.in_stock is None else labels["yes" if p.in_stock else "no"]
                for p in products
            ),
        ),
    ]
    keys = list(dict.fromkeys(k for p in products for k in p.attributes))
    for key in keys:
        values = tuple(
            _format(p.attributes[key]) if key in p.attributes else None for p in products
        )
        rows.append(ComparisonRow(key.replace("_", " "), values))
    return Comparison(
        product_ids=tuple(p.id for p in products),
        titles=tuple(p.title for p in products),
        rows=tuple(r for r in rows if any(v is not None for v in r.values)),
    )


def comparison_claims(
    comparison: Comparison, numbers: Sequence[int], *, language: str = "en"
) -> list[Claim]:
    """One claim per attribute, citing the source number of each product that has a value."""
    labels = _LABELS[language]
    claims = []
    for row in comparison.rows:
        parts = [
            f"{title} {value}"
            for title, value in zip(comparison.titles, row.values, strict=True)
            if value is not None
        ]
        cited = tuple(n for n, v in zip(numbers, row.values, strict=True) if v is not None)
        end = "。" if language == "zh" else "."
        claims.append(
            Claim(f"{row.attribute}{labels['colon']}{labels['sep'].join(parts)}{end}", cited)
        )
    return claims
