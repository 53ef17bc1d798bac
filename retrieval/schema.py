"""The product schema and the units the stores index; every other module speaks these types.

A catalog row becomes a `Product`. The indexer turns a product into `Unit`s: one unit of kind
``product`` (what product search ranks) and passage units (``description``, ``attributes``,
``review``, ``qa``) that "ask about this product" ranks. Each unit keeps its product id.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

UnitKind = Literal["product", "description", "attributes", "review", "qa"]
PASSAGE_KINDS: tuple[UnitKind, ...] = ("description", "attributes", "review", "qa")
AttributeValue = str | int | float | bool


def review_passage_id(product_id: str, number: int) -> str:
    """The passage id of a product's ``number``-th review (from 1), as answers cite it."""
    return f"{product_id}#review-{number}"


class Review(BaseModel):
    """A shopper's review of a product."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    text: str = Field(min_length=1)
    rating: float | None = Field(default=None, ge=0, le=5)


class QAPair(BaseModel):
    """A community question with its answer."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    question: str = Field(min_length=1)
    answer: str = Field(min_length=1)


class Product(BaseModel):
    """A catalog product. Only ``id`` and ``title`` are required."""

    model_config = ConfigDict(frozen=True, extra="ignore", str_strip_whitespace=True)

    id: str = Field(min_length=1, max_length=256)
    title: str = Field(min_length=1)
    description: str = ""
    brand: str | None = None
    category: str | None = None
    attributes: dict[str, AttributeValue] = Field(default_factory=dict)
    price: float | None = Field(default=None, ge=0)
    currency: str = "USD"
    rating: float | None = Field(default=None, ge=0, le=5)
    review_count: int | None = Field(default=None, ge=0)
    in_stock: bool | None = None
    reviews: list[Review] = Field(default_factory=list)
    qa: list[QAPair] = Field(default_factory=list)

    @field_validator("id", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> Any:
        if isinstance(value, bool):
            msg = "id must be a string or an integer"
            raise ValueError(msg)
        return str(value) if isinstance(value, int) else value

    @field_validator("price", "rating")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            msg = "must be a finite number"
            raise ValueError(msg)
        return value

    @field_validator("brand", "category", mode="after")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value or None

    @property
    def category_path(self) -> list[str]:
        """The category split into its levels, e.g. ``["Electronics", "Audio"]``."""
        return split_category(self.category)

    def summary(self) -> dict[str, Any]:
        """The fields a search result shows, without reviews and Q&A."""
        return self.model_dump(exclude={"reviews", "qa", "description", "attributes"})


def split_category(category: str | None) -> list[str]:
    """Split a category path such as ``"A > B > C"`` (also ``/`` or ``>``) into its levels."""
    if not category:
        return []
    separator = ">" if ">" in category else "/"
    return [level.strip() for level in category.split(separator) if level.strip()]


@dataclass(frozen=True)
class Unit:
    """One indexed piece of a product: the product itself, or one of its passages.

    ``fields`` holds the text per field for lexical search (``title``, ``brand``, ``category``,
    ``attributes``, ``description`` for product units; ``body`` for passages); ``text`` is what is
    embedded, re-ranked and shown to the generator.
    """

    id: str
    product_id: str
    kind: UnitKind
    text: str
    fields: dict[str, str] = field(default_factory=dict)


class Filters(BaseModel):
    """Structured constraints that both retrievers apply while they search, never after."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    category: str | None = Field(
        default=None, description="Category path prefix, e.g. 'Electronics > Audio'."
    )
    brands: list[str] | None = Field(default=None, description="Keep only these brands.")
    exclude_brands: list[str] | None = Field(default=None, description="Drop these brands.")
    price_min: float | None = Field(default=None, ge=0)
    price_max: float | None = Field(default=None, ge=0)
    in_stock: bool | None = Field(default=None, description="true: only products in stock.")
    min_rating: float | None = Field(default=None, ge=0, le=5)
    product_ids: list[str] | None = Field(default=None, description="Keep only these products.")

    def is_empty(self) -> bool:
        """True when no constraint is set."""
        return all(value is None for value in self.model_dump().values())

    def merged(self, other: Filters | None) -> Filters:
        """These filters with every constraint that ``other`` sets added (``other`` wins)."""
        if other is None:
            return self
        values = self.model_dump()
        values.update({k: v for k, v in other.model_dump().items() if v is not None})
        return Filters(**values)

    def matches(self, product: Product) -> bool:
        """Whether ``product`` satisfies every constraint."""
        if self.product_ids is not None and product.id not in self.product_ids:
            return False
        if self.category is not None:
            wanted = [level.casefold() for level in split_category(self.category)]
            have = [level.casefold() for level in product.category_path]
            if have[: len(wanted)] != wanted:
                return False
        brand = (product.brand or "").casefold()
        if self.brands is not None and brand not in {b.casefold() for b in self.brands}:
            return False
        if self.exclude_brands is not None and brand in {b.casefold() for b in self.exclude_brands}:
            return False
        if self.price_min is not None and (product.price is None or product.price < self.price_min):
            return False
        if self.price_max is not None and (product.price is None or product.price > self.price_max):
            return False
        if self.in_stock is not None and product.in_stock is not self.in_stock:
            return False
        return self.min_rating is None or (
            product.rating is not None and product.rating >= self.min_rating
        )
