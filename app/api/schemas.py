"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from generation.answers import Answer
from generation.compare import Comparison
from generation.conversation import ID_PATTERN
from generation.prompts import Source
from generation.review_summary import AspectSummary, ReviewSummary
from personalization.events import EVENT_ID_PATTERN, MAX_QUERY, USER_ID_PATTERN, EventType
from personalization.service import Erased, Recorded
from recommendation.complements import Complement, ComplementsPage
from recommendation.for_you import ForYouPage
from recommendation.similar import Similar, SimilarPage
from recommendation.trending import TrendingItem, TrendingPage
from retrieval.schema import Filters, Product
from retrieval.search import ProductHit, SearchResult

MAX_EVENTS_PER_BATCH = 1000
REQUEST_CONFIG = ConfigDict(extra="forbid", allow_inf_nan=False)
"""Every request model: an unknown field, NaN or an infinite number is a 422."""


def _not_blank(text: str) -> str:
    if not text.strip():
        raise PydanticCustomError("blank", "must not be blank")
    return text


Text = Annotated[str, Field(min_length=1, max_length=500), AfterValidator(_not_blank)]
"""A query or a question: 1 to 500 characters, not only spaces."""
MAX_BRAND = 256
"""The longest brand a filter names: longer ones were a 500 on Elasticsearch (a term that long
fails there) and nothing on the embedded store; now a 422 on both."""
Brands = Annotated[list[Annotated[str, Field(max_length=MAX_BRAND)]], Field(max_length=50)]
Price = Annotated[float, Field(ge=0)]

_USER_ID_FIELD = Field(
    None,
    pattern=USER_ID_PATTERN,
    description="The shopper (1 to 128 letters, digits, '_', '.', '@' or '-'): their profile "
    "re-orders the relevant results unless they or this request opted out.",
)
_PERSONALIZE_FIELD = Field(
    True, description="false: this request is not personalized, whatever the user_id."
)


class _FilterFields(BaseModel):
    """The filter fields, flat: the body's ``filters`` and ``GET /search``'s parameters."""

    model_config = REQUEST_CONFIG

    category: str | None = Field(None, max_length=300, examples=["Electronics > Audio"])
    brands: Brands | None = None
    exclude_brands: Brands | None = None
    price_min: Price | None = None
    price_max: Price | None = None
    in_stock: bool | None = None
    min_rating: float | None = Field(None, ge=0, le=5)

    @model_validator(mode="after")
    def _price_range(self) -> _FilterFields:
        if (
            self.price_min is not None
            and self.price_max is not None
            and self.price_min > self.price_max
        ):
            msg = "price_min must not be greater than price_max"
            raise ValueError(msg)
        return self


class FiltersIn(_FilterFields):
    """Structured filters; every one is applied inside both retrievers."""

    def to_filters(self) -> Filters:
        """The retrieval filters."""
        return Filters(**self.model_dump())


class _Search(BaseModel):
    """The query and how to search: the same in the body and in ``GET /search``'s parameters."""

    model_config = REQUEST_CONFIG

    query: Text = Field(examples=["noise cancelling headphones"])
    page: int = Field(1, ge=1, le=100)
    size: int = Field(10, ge=1, le=50)
    user_id: str | None = _USER_ID_FIELD
    personalize: bool = _PERSONALIZE_FIELD
    rerank: bool = Field(True, description="Re-rank the top candidates when a re-ranker is set.")
    parse_constraints: bool = Field(
        True, description="Turn phrases such as 'under $100' or '100元以下' into filters."
    )
    cache: bool = Field(
        True, description="false: compute afresh; the result cache is neither read nor written."
    )


class SearchRequest(_Search):
    """A product search."""

    filters: FiltersIn | None = None


class SearchQuery(_FilterFields, _Search):
    """``GET /search``: the search's fields, ``q`` for the query, and its filters flat."""

    query: Text = Field(
        validation_alias="q", description="The query.", examples=["noise cancelling headphones"]
    )
    brands: Brands | None = Field(
        None,
        validation_alias=AliasChoices("brands", "brand"),
        description="Repeat for several brands ('brand', its former name, is accepted too).",
    )

    def to_request(self) -> SearchRequest:
        """The same search as a ``POST /search`` body."""
        filters = self.model_dump(include=set(FiltersIn.model_fields))
        return SearchRequest(
            filters=FiltersIn(**filters) if any(v is not None for v in filters.values()) else None,
            **self.model_dump(include=set(_Search.model_fields)),
        )


class Why(BaseModel):
    """Why a result matched and where it ranked in each stage."""

    summary: str
    retrievers: dict[str, dict[str, Any]]
    matched_terms: dict[str, list[str]]
    fused_score: float
    rerank_score: float | None


class PersonalOut(BaseModel):
    """Where relevance alone ranked a result, and why it moved (personalization, diversity)."""

    relevance_rank: int
    moved: int = Field(description="Places moved up (negative: down).")
    reasons: list[str]
    personal_score: float | None


class ProductSummary(BaseModel):
    """What a list shows of a product."""

    id: str
    title: str
    brand: str | None
    category: str | None
    price: float | None
    currency: str
    rating: float | None
    in_stock: bool | None

    @staticmethod
    def fields_of(product: Product) -> dict[str, Any]:
        """The summary's fields of ``product``."""
        return {name: getattr(product, name) for name in ProductSummary.model_fields}


class SearchItem(ProductSummary):
    """One product in a result page."""

    score: float
    why: Why
    personal: PersonalOut | None = None

    @classmethod
    def from_hit(cls, item: ProductHit, rank: int) -> SearchItem:
        """The API form of a search hit at ``rank`` (1-based, over all pages)."""
        product, explanation, adjusted = item.product, item.hit.explanation, item.adjustment
        personal = (
            PersonalOut(
                relevance_rank=adjusted.relevance_rank,
                moved=adjusted.relevance_rank - rank,
                reasons=list(adjusted.reasons),
                personal_score=adjusted.personal_score,
            )
            if adjusted is not None
            else None
        )
        return cls(
            **ProductSummary.fields_of(product),
            score=item.hit.score,
            why=Why(
                summary=explanation.summary(),
                retrievers=explanation.retrievers,
                matched_terms=explanation.matched_terms,
                fused_score=explanation.fused_score,
                rerank_score=explanation.rerank_score,
            ),
            personal=personal,
        )


class FusionInfo(BaseModel):
    """The weights of the lexical, semantic and cross-lingual lists for this query."""

    weights: dict[str, float]
    lexical_coverage: float | None = Field(
        None,
        description="Share of the query's terms that its best lexical hit holds; below "
        "CROSSLINGUAL_WEAK_COVERAGE the query is taken to be in another language than the "
        "catalog and the cross-lingual list weighs more.",
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
    personalized: bool = Field(False, description="A shopper's profile re-ordered the results.")
    results: list[SearchItem]
    fusion: FusionInfo | None = Field(
        None, description="How the retrievers' lists were fused for this query."
    )
    timings_ms: dict[str, float]
    cached: bool = Field(False, description="Served from the cache (timings are the original's).")

    @classmethod
    def build(
        cls, query: str, applied: list[str], result: SearchResult, *, personalized: bool = False
    ) -> SearchResponse:
        """The API form of a search result."""
        first = (result.page - 1) * result.size + 1
        return cls(
            query=query,
            searched_for=result.query,
            applied_constraints=applied,
            filters=result.filters.model_dump(exclude_none=True),
            page=result.page,
            size=result.size,
            reranked=result.reranked,
            personalized=personalized,
            results=[SearchItem.from_hit(h, rank) for rank, h in enumerate(result.hits, first)],
            fusion=FusionInfo(
                weights=result.fusion.weights, lexical_coverage=result.fusion.lexical_coverage
            )
            if result.fusion is not None
            else None,
            timings_ms=result.timings_ms,
        )


class PageQuery(_FilterFields):
    """A page of products without a query: paging and the search filters (flat)."""

    page: int = Field(1, ge=1, le=100)
    size: int = Field(10, ge=1, le=50)
    brands: Brands | None = Field(
        None, validation_alias=AliasChoices("brands", "brand"), description="Repeat for several."
    )

    def to_filters(self) -> Filters:
        """The filters every product shown passes."""
        return Filters(**self.model_dump(include=set(FiltersIn.model_fields)))


class SimilarQuery(PageQuery):
    """``GET /products/{id}/similar``: a category among the filters replaces the product's."""

    same_price_band: bool = Field(
        True,
        description="Keep to the product's price band (half to twice its price) unless "
        "price_min or price_max is given.",
    )
    cache: bool = Field(True, description="false: compute afresh.")


class SimilarItem(ProductSummary):
    """A similar product, why it is there, and how it differs from the product asked about."""

    similarity: float = Field(description="Cosine of the two products' vectors.")
    reasons: list[str]
    differences: list[str] = Field(
        description="Against the product asked about: 'cheaper (-20%)', 'battery life hours: "
        "40 (more than 30)', 'brand: Anker (vs Sony)'."
    )

    @classmethod
    def of(cls, similar: Similar) -> SimilarItem:
        """The API form of a similar product."""
        return cls(
            **ProductSummary.fields_of(similar.product),
            similarity=similar.similarity,
            reasons=list(similar.reasons),
            differences=list(similar.differences),
        )


class SimilarResponse(BaseModel):
    """A page of products similar to one product, in stock first."""

    product_id: str
    page: int
    size: int
    category: str | None = Field(
        description="The category searched: the product's own, or a parent where it had too few "
        "(null: the whole catalog)."
    )
    price_band: list[float] | None = Field(description="[min, max] kept to, or null.")
    results: list[SimilarItem]
    cached: bool = False

    @classmethod
    def of(cls, page: SimilarPage) -> SimilarResponse:
        """The API form of a page of similar products."""
        return cls(
            product_id=page.product.id,
            page=page.page,
            size=page.size,
            category=page.scope,
            price_band=list(page.price_band) if page.price_band else None,
            results=[SimilarItem.of(s) for s in page.items],
        )


class ReasonedItem(ProductSummary):
    """A product shown without a query, with its score and why it is shown."""

    score: float
    reason: str

    @classmethod
    def listed(cls, items: Sequence[TrendingItem | Complement]) -> list[ReasonedItem]:
        """The API form of ranked items."""
        return [
            cls(**ProductSummary.fields_of(i.product), score=i.score, reason=i.reason)
            for i in items
        ]


class TrendingResponse(BaseModel):
    """A page of trending products: no shopper's data, the same for everyone."""

    category: str | None
    page: int
    size: int
    results: list[ReasonedItem] = Field(
        description="score: its views (1), clicks (1), carts (3) and purchases (5) of the last "
        "days, each day's weighing half as much every half-life."
    )

    @classmethod
    def of(cls, page: TrendingPage) -> TrendingResponse:
        """The API form of a page of trending products."""
        return cls(
            category=page.category,
            page=page.page,
            size=page.size,
            results=ReasonedItem.listed(page.items),
        )


class ComplementsResponse(BaseModel):
    """A page of what goes with a product: never the same kind of product."""

    product_id: str
    page: int
    size: int
    source: str = Field(
        description="together: carted or bought with it (score: how many times); categories: "
        "it has no such history yet, so the nearest products of the categories its own goes "
        "with (score: how often those categories went together); none: nothing yet."
    )
    results: list[ReasonedItem]

    @classmethod
    def of(cls, page: ComplementsPage) -> ComplementsResponse:
        """The API form of a page of complements."""
        return cls(
            product_id=page.product.id,
            page=page.page,
            size=page.size,
            source=page.source,
            results=ReasonedItem.listed(page.items),
        )


class ForYouQuery(PageQuery):
    """``GET /users/{id}/recommendations``."""

    include_bought: bool = Field(
        False, description="Keep products the shopper bought (consumables they buy again)."
    )
    personalize: bool = _PERSONALIZE_FIELD


class RecommendationOut(ProductSummary):
    """A recommended product and why."""

    score: float = Field(
        description="How well it fits the shopper (0..1); popularity when not personalized."
    )
    reasons: list[str]


class RecommendationsResponse(BaseModel):
    """A page of recommendations for a shopper."""

    user_id: str
    personalized: bool = Field(
        description="false: a new or opted-out shopper (or profiles unavailable): trending "
        "products, the same for everyone."
    )
    page: int
    size: int
    results: list[RecommendationOut]
    cached: bool = False

    @classmethod
    def of(cls, page: ForYouPage) -> RecommendationsResponse:
        """The API form of a page of recommendations."""
        return cls(
            user_id=page.user_id,
            personalized=page.personalized,
            page=page.page,
            size=page.size,
            results=[
                RecommendationOut(
                    **ProductSummary.fields_of(r.product), score=r.score, reasons=list(r.reasons)
                )
                for r in page.items
            ],
        )


class ReviewSummaryQuery(BaseModel):
    """``GET /products/{id}/review-summary``."""

    model_config = REQUEST_CONFIG

    quotes: int = Field(3, ge=0, le=20, description="Quotes per aspect, polarities in turn.")
    cache: bool = Field(True, description="false: compute afresh.")


class QuoteOut(BaseModel):
    """A review clause about one aspect, cited like a passage of an answer."""

    passage_id: str = Field(description="The review, as answers cite it: '<product>#review-<n>'.")
    text: str = Field(description="The clause of the review that names the aspect.")
    start: int = Field(description="Where the clause starts in the review's text.")
    end: int
    term: list[int] = Field(
        description="[start, end] of the words naming the aspect, in the review."
    )
    polarity: str = Field(description="positive, negative or neutral.")
    rating: float | None


class AspectOut(BaseModel):
    """One aspect of the product that reviews mention, and how they feel about it."""

    aspect: str = Field(description="Stable key: battery, fit, noise, temperature …")
    label: str = Field(description="The aspect's name in the product's language.")
    reviews: int = Field(description="Reviews that mention it.")
    positive: int
    negative: int
    neutral: int
    quotes: list[QuoteOut]

    @classmethod
    def of(cls, summary: AspectSummary) -> AspectOut:
        """The API form of an aspect's summary."""
        return cls(
            aspect=summary.key,
            label=summary.label,
            reviews=summary.reviews,
            positive=summary.positive,
            negative=summary.negative,
            neutral=summary.neutral,
            quotes=[
                QuoteOut(
                    passage_id=q.passage_id,
                    text=q.text,
                    start=q.start,
                    end=q.end,
                    term=[q.term_start, q.term_end],
                    polarity=q.polarity,
                    rating=q.rating,
                )
                for q in summary.quotes
            ],
        )


class ReviewSummaryResponse(BaseModel):
    """What customers say: the aspects the product's reviews mention, most mentioned first,
    extracted from the reviews (no model), every count backed by quotes."""

    product_id: str
    language: str = Field(description="The product's language: en or zh.")
    reviews: int = Field(description="All reviews of the product.")
    reviews_with_aspects: int = Field(description="Reviews that mention at least one aspect.")
    aspects: list[AspectOut]
    method: str = Field("extractive", description="How it was made: extractive (no model).")
    cached: bool = False

    @classmethod
    def of(cls, summary: ReviewSummary) -> ReviewSummaryResponse:
        """The API form of a review summary."""
        return cls(
            product_id=summary.product_id,
            language=summary.language,
            reviews=summary.reviews,
            reviews_with_aspects=summary.reviews_with_aspects,
            aspects=[AspectOut.of(a) for a in summary.aspects],
        )


class ProductOut(BaseModel):
    """A whole product."""

    product: Product


class AskRequest(BaseModel):
    """A question about one product."""

    model_config = REQUEST_CONFIG

    question: Text = Field(examples=["How long does the battery last?"])
    stream: bool = Field(False, description="Stream server-sent events instead of one JSON body.")
    rerank: bool = True
    cache: bool = Field(
        True, description="false: compute afresh; the result cache is neither read nor written."
    )


class AdviceRequest(BaseModel):
    """A shopping question."""

    model_config = REQUEST_CONFIG

    question: Text = Field(examples=["wireless headphones for the gym under $100"])
    filters: FiltersIn | None = None
    user_id: str | None = _USER_ID_FIELD
    personalize: bool = _PERSONALIZE_FIELD
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
    """One statement of the answer, the numbers of the sources it cites, and the words of its
    source that support it (verbatim) with where they are in that source's ``text``."""

    text: str
    sources: list[int]
    quote: str | None = Field(None, description="The supporting words, copied from the source.")
    quoted: bool = Field(
        False,
        description="The claim is its quote, shown as a quote (the model's own wording said "
        "more than the quote, so it was not kept).",
    )
    quote_span: list[int] | None = Field(
        None,
        description="[start, end) character offsets of the quote in the cited source's text "
        "(null when it is in the title).",
    )


class AnswerResponse(BaseModel):
    """A grounded answer: its text cites ``[n]`` sources listed in ``citations``."""

    question: str
    answer: str
    claims: list[ClaimOut] = Field(
        default_factory=list, description="The answer as statements, each with its sources."
    )
    abstained: bool
    abstain_reason: str | None = Field(
        None,
        description="no_sources, weak_evidence (no source is similar enough to the question), "
        "model (the model found no answer in the sources), not_answered (what the sources say "
        "does not answer the question or settle a yes/no) or unsupported (no claim was "
        "supported by the words it quoted).",
    )
    kind: str | None = Field(
        None,
        description="Questions about a product: what it asks for (yes_no, duration, count, "
        "measure, price, open).",
    )
    verdict: str | None = Field(
        None, description="A yes/no question answered: yes or no, as its quote settles it."
    )
    evidence: float | None = Field(
        None, description="The best similarity (cosine) of the question to a source."
    )
    closest: list[SourceOut] = Field(
        default_factory=list,
        description="When it abstained: the closest products found (advice) or the closest "
        "passage (a question about a product), not confirmed to answer.",
    )
    citations: list[SourceOut]
    sources: list[SourceOut]
    dropped_claims: int = Field(
        0, description="Claims the model wrote that the checker dropped (never streamed)."
    )
    dropped_reasons: list[str] = Field(
        default_factory=list,
        description="Why, one each: quote_not_in_source, not_in_quote, number_not_in_quote, "
        "polarity, language, attribute, not_an_answer, unsettled, conflict, repetition, …",
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
            claims=[
                ClaimOut(
                    text=c.text,
                    sources=list(c.sources),
                    quote=c.quote,
                    quoted=c.quoted,
                    quote_span=list(c.span) if c.span else None,
                )
                for c in answer.claims
            ],
            kind=answer.kind,
            verdict=answer.verdict,
            abstained=answer.abstained,
            abstain_reason=answer.abstain_reason,
            evidence=None if answer.evidence is None else round(answer.evidence, 4),
            closest=[SourceOut.of(s) for s in answer.closest],
            citations=[SourceOut.of(s) for s in answer.cited],
            sources=[SourceOut.of(s) for s in answer.sources],
            dropped_claims=answer.dropped_claims,
            dropped_reasons=answer.dropped_reasons,
            applied_constraints=answer.applied_constraints,
            filters=answer.filters.model_dump(exclude_none=True),
            timings_ms=answer.timings_ms,
            conversation_id=answer.conversation_id,
            follow_up=answer.follow_up,
            comparison=ComparisonOut.of(answer.comparison) if answer.comparison else None,
        )


class EventIn(BaseModel):
    """One thing a shopper did."""

    model_config = REQUEST_CONFIG

    event_id: str = Field(
        pattern=EVENT_ID_PATTERN, description="Unique per shopper: a repeat is not counted twice."
    )
    user_id: str = Field(pattern=USER_ID_PATTERN)
    type: EventType
    product_id: str | None = Field(None, min_length=1, max_length=256)
    query: str | None = Field(None, max_length=MAX_QUERY)
    at: datetime | None = Field(
        None,
        description="When (ISO 8601; a time without a zone is UTC); default: now. Not before "
        "1970-01-01T00:00:00Z (422); an event later than now plus EVENT_CLOCK_SKEW_S or older "
        "than the profile retention is rejected by position, with the reason.",
    )

    @field_validator("at")
    @classmethod
    def _in_epoch_seconds(cls, at: datetime | None) -> datetime | None:
        """An `Event` counts epoch seconds: none before 1970. A time without a zone is UTC,
        whatever the server's time zone."""
        if at is None:
            return at
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        try:
            seconds = at.timestamp()
        except (ValueError, OverflowError) as exc:
            msg = f"an event time must not be before 1970-01-01T00:00:00Z ({exc})"
            raise ValueError(msg) from exc
        if seconds < 0:
            msg = "an event time must not be before 1970-01-01T00:00:00Z"
            raise ValueError(msg)
        return at

    @model_validator(mode="after")
    def _product_or_query(self) -> EventIn:
        if self.type == "search" and not self.query:
            msg = "a search event needs its query"
            raise ValueError(msg)
        if self.type != "search" and self.product_id is None:
            msg = f"a {self.type} event needs a product_id"
            raise ValueError(msg)
        return self


class EventsRequest(BaseModel):
    """A batch of events, applied in time order per shopper."""

    model_config = REQUEST_CONFIG

    events: list[EventIn] = Field(min_length=1, max_length=MAX_EVENTS_PER_BATCH)


class RejectedOut(BaseModel):
    """An event of the batch that was not recorded, by its position."""

    index: int
    reason: str


class EventsResponse(BaseModel):
    """What a batch of events did."""

    accepted: int
    duplicates: int = Field(description="Events whose event_id was already recorded.")
    opted_out: int = Field(description="Events of shoppers who opted out: not stored.")
    queued: int = Field(
        0,
        description="Events kept in the API's spool while the profile store or the catalog is "
        "down, applied when it returns (an unknown product is dropped then, logged): do not "
        "send them again.",
    )
    rejected: list[RejectedOut]

    @classmethod
    def of(cls, recorded: Recorded) -> EventsResponse:
        """The API form of a recorded batch."""
        report = recorded.report
        return cls(
            accepted=report.accepted,
            duplicates=report.duplicates,
            opted_out=report.opted_out,
            queued=recorded.queued,
            rejected=[RejectedOut(index=r.index, reason=r.reason) for r in recorded.rejected],
        )


class PersonalizationIn(BaseModel):
    """A shopper's choice about personalization."""

    model_config = REQUEST_CONFIG

    enabled: bool


class ProfileResponse(BaseModel):
    """What the service knows about a shopper, as they may see it."""

    user_id: str
    personalization: bool = Field(description="false: the shopper opted out.")
    profile: dict[str, Any] | None = Field(
        description="Top brands and categories, usual price range, events counted (None: none)."
    )
    recent_events: list[dict[str, Any]]


class ErasureResponse(BaseModel):
    """What erasing a shopper removed."""

    user_id: str
    profile: bool
    events: int
    settings: bool
    cached_results: int
    conversations: int
    queued: int = Field(0, description="Events waiting in the spool, erased before applied.")

    @classmethod
    def of(cls, erased: Erased) -> ErasureResponse:
        """The API form of an erasure."""
        return cls(**asdict(erased))


class ErrorBody(BaseModel):
    """What went wrong."""

    code: str
    message: str
    fields: list[dict[str, str]] | None = None


class ErrorResponse(BaseModel):
    """Every error response has this shape."""

    error: ErrorBody


TOO_LARGE: dict[str, object] = {
    "model": ErrorResponse,
    "description": "The request body is over MAX_BODY_BYTES (payload_too_large).",
}
"""The 413 of every operation that takes a body (`app.api.middleware.BodyLimit`)."""


class GeneratorHealth(BaseModel):
    """Where loading the generator stands: search never waits for it."""

    state: str = Field(
        description="ready; starting, loading or waiting (being installed or loaded: the answer "
        "endpoints reply 503 with Retry-After meanwhile); failed; closed"
    )
    detail: str | None = Field(None, description="Why it is not ready yet.")
    attempts: int = 0
    ready_after_s: float | None = Field(None, description="Seconds it took to become ready.")


class Health(BaseModel):
    """Which backends and models are loaded."""

    status: str = Field(description="ok, empty (nothing indexed) or unavailable (store down)")
    store: dict[str, Any]
    cache: dict[str, Any]
    profiles: dict[str, Any] = Field(
        default_factory=lambda: {"backend": "none"},
        description="The profile store: backend, available, and quarantined (damaged profiles "
        "moved aside and started again).",
    )
    event_spool: dict[str, Any] = Field(
        default_factory=lambda: {"queued": 0, "max_events": 0},
        description="Events this API process holds for a store that is down, and its bound "
        "(0: no spool).",
    )
    models: dict[str, str]
    generator: GeneratorHealth
