"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from generation.answers import Answer
from generation.compare import Comparison
from generation.conversation import ID_PATTERN
from generation.prompts import Source
from retrieval.schema import Filters, Product
from retrieval.search import ProductHit, SearchResult


class FiltersIn(BaseModel):
    """Structured filters; every one is applied inside both retrievers."""

    model_config = ConfigDict(extra="forbid")

    category: str | None = Field(None, max_length=300, examples=["Electronics > Audio"])
    brands: list[str] | None = Field(None, max_length=50)
    exclude_brands: list[str] | None = Field(None, max_length=50)
    price_min: float | None = Field(None, ge=0)
    price_max: float | None = Field(None, ge=0)
    in_stock: bool | None = None
    min_rating: float | None = Field(None, ge=0, le=5)

    @model_validator(mode="after")
    def _price_range(self) -> FiltersIn:
        if (
            self.price_min is not None
            and self.price_max is not None
            and self.price_min > self.price_max
        ):
            msg = "price_min must not be greater than price_max"
            raise ValueError(msg)
        return self

    def to_filters(self) -> Filters:
        """The retrieval filters."""
        return Filters(**self.model_dump())


class SearchRequest(BaseModel):
    """A product search."""

    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=500, examples=["noise cancelling headphones"])
    filters: FiltersIn | None = None
    page: int = Field(1, ge=1, le=100)
    size: int = Field(10, ge=1, le=50)
    user_id: str | None = Field(None, max_length=200, description="Reserved for personalization.")
    rerank: bool = Field(True, description="Re-rank the top candidates when a re-ranker is set.")
    parse_constraints: bool = Field(
        True, description="Turn phrases such as 'under $100' or '100元以下' into filters."
    )
    cache: bool = Field(
        True, description="false: compute afresh; the result cache is neither read nor written."
    )


class Why(BaseModel):
    """Why a result matched and where it ranked in each stage."""

    summary: str
    retrievers: dict[str, dict[str, Any]]
    matched_terms: dict[str, list[str]]
    fused_score: float
    rerank_score: float | None


class SearchItem(BaseModel):
    """One product in a result page."""

    id: str
    title: str
    brand: str | None
    category: str | None
    price: float | None
    currency: str
    rating: float | None
    in_stock: bool | None
    score: float
    why: Why

    @classmethod
    def from_hit(cls, item: ProductHit) -> SearchItem:
        """The API form of a search hit."""
        product, explanation = item.product, item.hit.explanation
        return cls(
            id=product.id,
            title=product.title,
            brand=product.brand,
            category=product.category,
            price=product.price,
            currency=product.currency,
            rating=product.rating,
            in_stock=product.in_stock,
            score=item.hit.score,
            why=Why(
                summary=explanation.summary(),
                retrievers=explanation.retrievers,
                matched_terms=explanation.matched_terms,
                fused_score=explanation.fused_score,
                rerank_score=explanation.rerank_score,
            ),
        )


class SearchResponse(BaseModel):
    """A page of search results."""

    query: str
    searched_for: str
    applied_constraints: list[str]
    filters: dict[str, Any]
    page: int
    size: int
    reranked: bool
    results: list[SearchItem]
    timings_ms: dict[str, float]
    cached: bool = Field(False, description="Served from the cache (timings are the original's).")

    @classmethod
    def build(cls, query: str, applied: list[str], result: SearchResult) -> SearchResponse:
        """The API form of a search result."""
        return cls(
            query=query,
            searched_for=result.query,
            applied_constraints=applied,
            filters=result.filters.model_dump(exclude_none=True),
            page=result.page,
            size=result.size,
            reranked=result.reranked,
            results=[SearchItem.from_hit(h) for h in result.hits],
            timings_ms=result.timings_ms,
        )


class ProductOut(BaseModel):
    """A whole product."""

    product: Product


class AskRequest(BaseModel):
    """A question about one product."""

    model_config = ConfigDict(extra="forbid")

    question: str = Field(
        min_length=1, max_length=500, examples=["How long does the battery last?"]
    )
    stream: bool = Field(False, description="Stream server-sent events instead of one JSON body.")
    rerank: bool = True
    cache: bool = Field(
        True, description="false: compute afresh; the result cache is neither read nor written."
    )


class AdviceRequest(BaseModel):
    """A shopping question."""

    model_config = ConfigDict(extra="forbid")

    question: str = Field(
        min_length=1, max_length=500, examples=["wireless headphones for the gym under $100"]
    )
    filters: FiltersIn | None = None
    user_id: str | None = Field(None, max_length=200, description="Reserved for personalization.")
    conversation_id: str | None = Field(
        None,
        pattern=f"^{ID_PATTERN}$",
        description="Continue this conversation (any id the client picks: 1 to 64 letters, "
        "digits, '-' or '_'): 'cheaper ones?', 'which of these…', 'compare the first two' "
        "refer to its last results. Conversations expire after CONVERSATION_TTL_S idle.",
    )
    stream: bool = Field(False, description="Stream server-sent events instead of one JSON body.")
    rerank: bool = True
    cache: bool = Field(
        True, description="false: compute afresh; the result cache is neither read nor written."
    )


class ComparisonRowOut(BaseModel):
    """One attribute and each compared product's value (null: the product does not say)."""

    attribute: str
    values: list[str | None]


class ComparisonOut(BaseModel):
    """Products side by side, from their catalog fields."""

    product_ids: list[str]
    titles: list[str]
    rows: list[ComparisonRowOut]

    @classmethod
    def of(cls, comparison: Comparison) -> ComparisonOut:
        """The API form of a comparison."""
        return cls(
            product_ids=list(comparison.product_ids),
            titles=list(comparison.titles),
            rows=[
                ComparisonRowOut(attribute=r.attribute, values=list(r.values))
                for r in comparison.rows
            ],
        )


class SourceOut(BaseModel):
    """A source given to the model; ``number`` is what ``[n]`` in the answer refers to."""

    number: int
    id: str
    product_id: str
    kind: str
    title: str
    text: str

    @classmethod
    def of(cls, source: Source) -> SourceOut:
        """The API form of a source."""
        return cls(
            number=source.number,
            id=source.source_id,
            product_id=source.product_id,
            kind=source.kind,
            title=source.title,
            text=source.text,
        )


class ClaimOut(BaseModel):
    """One statement of the answer and the numbers of the sources it cites."""

    text: str
    sources: list[int]


class AnswerResponse(BaseModel):
    """A grounded answer: its text cites ``[n]`` sources listed in ``citations``."""

    question: str
    answer: str
    claims: list[ClaimOut] = Field(
        default_factory=list, description="The answer as statements, each with its sources."
    )
    abstained: bool
    abstain_reason: str | None = Field(
        None, description="no_sources, model (the sources do not answer) or no_valid_citation."
    )
    citations: list[SourceOut]
    sources: list[SourceOut]
    dropped_citations: int
    corrected_claims: int = Field(
        0, description="Claims whose price or rating was corrected from the cited product."
    )
    dropped_claims: int = Field(
        0, description="Claims dropped: a fact they state is not in the sources they cite."
    )
    applied_constraints: list[str]
    filters: dict[str, Any]
    timings_ms: dict[str, float]
    conversation_id: str | None = None
    follow_up: str | None = Field(
        None, description="In a conversation: new, cheaper, pricier, among_shown or compare."
    )
    comparison: ComparisonOut | None = None
    cached: bool = Field(False, description="Served from the cache (timings are the original's).")

    @classmethod
    def of(cls, answer: Answer) -> AnswerResponse:
        """The API form of an answer."""
        return cls(
            question=answer.question,
            answer=answer.text,
            claims=[ClaimOut(text=c.text, sources=list(c.sources)) for c in answer.claims],
            abstained=answer.abstained,
            abstain_reason=answer.abstain_reason,
            citations=[SourceOut.of(s) for s in answer.cited],
            sources=[SourceOut.of(s) for s in answer.sources],
            dropped_citations=answer.dropped_citations,
            corrected_claims=answer.corrected_claims,
            dropped_claims=answer.dropped_claims,
            applied_constraints=answer.applied_constraints,
            filters=answer.filters.model_dump(exclude_none=True),
            timings_ms=answer.timings_ms,
            conversation_id=answer.conversation_id,
            follow_up=answer.follow_up,
            comparison=ComparisonOut.of(answer.comparison) if answer.comparison else None,
        )


class ErrorBody(BaseModel):
    """What went wrong."""

    code: str
    message: str
    fields: list[dict[str, str]] | None = None


class ErrorResponse(BaseModel):
    """Every error response has this shape."""

    error: ErrorBody


class Health(BaseModel):
    """Which backends and models are loaded."""

    status: str = Field(description="ok, empty (nothing indexed) or unavailable (store down)")
    store: dict[str, Any]
    cache: dict[str, Any]
    models: dict[str, str]
