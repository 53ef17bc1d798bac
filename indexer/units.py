"""How a product becomes indexed units: one for product search, passages for questions."""

from __future__ import annotations

from retrieval.schema import AttributeValue, Product, Unit, review_passage_id


def format_value(value: AttributeValue) -> str:
    """An attribute value as a shopper reads it."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def format_attributes(product: Product) -> str:
    """``key: value`` pairs, keys with spaces instead of underscores."""
    return "; ".join(
        f"{key.replace('_', ' ')}: {format_value(value)}"
        for key, value in product.attributes.items()
    )


def product_unit(product: Product) -> Unit:
    """The unit product search ranks: title, brand, category, attributes, description."""
    category = " > ".join(product.category_path)
    attributes = format_attributes(product)
    fields = {
        "title": product.title,
        "brand": product.brand or "",
        "category": category,
        "attributes": attributes,
        "description": product.description,
    }
    parts = [product.title]
    if product.brand:
        parts.append(f"Brand: {product.brand}")
    if category:
        parts.append(f"Category: {category}")
    if attributes:
        parts.append(attributes)
    if product.description:
        parts.append(product.description)
    return Unit(
        id=product.id,
        product_id=product.id,
        kind="product",
        text=". ".join(parts),
        fields={k: v for k, v in fields.items() if v},
    )


def passage_units(product: Product) -> list[Unit]:
    """The passages "ask about this product" ranks: description, attributes, reviews, Q&A."""
    passages: list[tuple[str, str, str]] = []
    if product.description:
        passages.append((f"{product.id}#description", "description", product.description))
    attributes = format_attributes(product)
    if attributes:
        passages.append((f"{product.id}#attributes", "attributes", attributes))
    for i, review in enumerate(product.reviews, start=1):
        passages.append((review_passage_id(product.id, i), "review", review.text))
    for i, pair in enumerate(product.qa, start=1):
        text = f"Q: {pair.question}\nA: {pair.answer}"
        passages.append((f"{product.id}#qa-{i}", "qa", text))
    return [
        Unit(id=uid, product_id=product.id, kind=kind, text=text, fields={"body": text})  # type: ignore[arg-type]
        for uid, kind, text in passages
    ]


def product_units(product: Product) -> list[Unit]:
    """Every unit of a product, the product unit first."""
    return [product_unit(product), *passage_units(product)]
