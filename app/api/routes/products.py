"""A product, and questions about it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from app.api.cached import through_cache
from app.api.deps import AnswersCallerDep, SearchCallerDep, ServicesDep
from app.api.schemas import (
    TOO_LARGE,
    AnswerResponse,
    AskRequest,
    ComplementsResponse,
    ErrorResponse,
    PageQuery,
    ProductOut,
    ReviewSummaryQuery,
    ReviewSummaryResponse,
    SimilarQuery,
    SimilarResponse,
)
from app.api.streaming import sse_response
from generation.answers import UnknownProduct
from generation.review_summary import summarize_reviews
from retrieval.schema import Product

router = APIRouter(prefix="/products", tags=["products"])


def _product(services: ServicesDep, product_id: str) -> Product:
    product = services.store.get_product(product_id)
    if product is None:
        msg = f"no product with id '{product_id}'"
        raise UnknownProduct(msg)
    return product


_DENIED: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorResponse},
    403: {"model": ErrorResponse},
    429: {"model": ErrorResponse},
}


@router.get(
    "/{product_id}", response_model=ProductOut, responses={404: {"model": ErrorResponse}, **_DENIED}
)
def get_product(product_id: str, services: ServicesDep, caller: SearchCallerDep) -> ProductOut:
    """The whole product, with its reviews and Q&A."""
    caller.require_for("search", None)
    return ProductOut(product=_product(services, product_id))


@router.get(
    "/{product_id}/similar",
    response_model=SimilarResponse,
    responses={404: {"model": ErrorResponse}, 422: {"model": ErrorResponse}, **_DENIED},
)
def similar(
    product_id: str,
    params: Annotated[SimilarQuery, Query()],
    services: ServicesDep,
    caller: SearchCallerDep,
) -> SimilarResponse:
    """Products like this one: nearest by vector in its category and price band, in stock
    first, each with why it is there and what differs ("cheaper", "brand: …")."""
    caller.require_for("search", None)
    request = params.model_dump(exclude={"cache"}, mode="json")

    def compute() -> SimilarResponse:
        found = services.similar.find(
            product_id,
            filters=params.to_filters(),
            page=params.page,
            size=params.size,
            same_price_band=params.same_price_band,
        )
        if found is None:
            msg = f"no product with id '{product_id}'"
            raise UnknownProduct(msg)
        return SimilarResponse.of(found)

    return through_cache(
        services,
        "similar",
        {**request, "product": product_id},
        compute,
        model=SimilarResponse,
        use_cache=params.cache,
    )


@router.get(
    "/{product_id}/review-summary",
    response_model=ReviewSummaryResponse,
    responses={404: {"model": ErrorResponse}, 422: {"model": ErrorResponse}, **_DENIED},
)
def review_summary(
    product_id: str,
    params: Annotated[ReviewSummaryQuery, Query()],
    services: ServicesDep,
    caller: SearchCallerDep,
) -> ReviewSummaryResponse:
    """What customers say (评论分析): the aspects the reviews mention (battery, fit, noise,
    保温 …), how many reviews are positive and negative about each, and the clauses that say
    so, cited by review passage id with offsets to highlight. Extracted without a model, in the
    product's language; computed on first request and cached until the catalog changes."""
    caller.require_for("search", None)

    def compute() -> ReviewSummaryResponse:
        product = _product(services, product_id)
        return ReviewSummaryResponse.of(summarize_reviews(product, quotes_per_aspect=params.quotes))

    return through_cache(
        services,
        "review-summary",
        {"product": product_id, "quotes": params.quotes},
        compute,
        model=ReviewSummaryResponse,
        use_cache=params.cache,
    )


@router.get(
    "/{product_id}/complements",
    response_model=ComplementsResponse,
    responses={
        404: {"model": ErrorResponse},
        422: {"model": ErrorResponse},
        503: {"model": ErrorResponse},
        **_DENIED,
    },
)
def complements(
    product_id: str,
    params: Annotated[PageQuery, Query()],
    services: ServicesDep,
    caller: SearchCallerDep,
) -> ComplementsResponse:
    """What goes with this product (搭配): what shoppers carted or bought with it, never the
    same kind of product; without such history yet, the nearest products of the categories its
    category goes with. Read from the counts on every request: a new purchase shows at once."""
    caller.require_for("search", None)
    found = services.complements.page(
        product_id, filters=params.to_filters(), page=params.page, size=params.size
    )
    if found is None:
        msg = f"no product with id '{product_id}'"
        raise UnknownProduct(msg)
    return ComplementsResponse.of(found)


@router.post(
    "/{product_id}/ask",
    response_model=AnswerResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "JSON, or SSE when streaming"},
        404: {"model": ErrorResponse},
        413: TOO_LARGE,
        422: {"model": ErrorResponse},
        503: {"model": ErrorResponse},
        504: {"model": ErrorResponse},
        **_DENIED,
    },
)
def ask(
    product_id: str,
    body: AskRequest,
    request: Request,
    services: ServicesDep,
    caller: AnswersCallerDep,
) -> AnswerResponse | StreamingResponse:
    """Answer a question from this product's own passages only, citing them."""
    caller.require_for("search", None)
    _product(services, product_id)
    if body.stream or "text/event-stream" in request.headers.get("accept", ""):
        events = services.answers.stream_ask(product_id, body.question, rerank=body.rerank)
        return sse_response(request, events)
    return through_cache(
        services,
        "ask",
        {"product": product_id, "text": body.question, "rerank": body.rerank},
        lambda: AnswerResponse.of(
            services.answers.ask(product_id, body.question, rerank=body.rerank)
        ),
        model=AnswerResponse,
        use_cache=body.cache,
    )
