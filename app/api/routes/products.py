"""A product, and questions about it."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from app.api.cached import through_cache
from app.api.deps import AnswersCallerDep, SearchCallerDep, ServicesDep
from app.api.schemas import TOO_LARGE, AnswerResponse, AskRequest, ErrorResponse, ProductOut
from app.api.streaming import sse_response
from generation.answers import UnknownProduct
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
