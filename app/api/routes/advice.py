"""Shopping advice: a question in, a recommendation that cites products out."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from app.api.cached import through_cache
from app.api.deps import AnswersCallerDep, ServicesDep
from app.api.schemas import TOO_LARGE, AdviceRequest, AnswerResponse, ErrorResponse
from app.api.streaming import sse_response
from generation.answers import AnswerEvent, final_answer

router = APIRouter(tags=["advice"])


@router.post(
    "/advice",
    response_model=AnswerResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "JSON, or SSE when streaming"},
        401: {"model": ErrorResponse},
        403: {"model": ErrorResponse},
        413: TOO_LARGE,
        422: {"model": ErrorResponse},
        429: {"model": ErrorResponse},
        503: {"model": ErrorResponse},
        504: {"model": ErrorResponse},
    },
)
def advice(
    body: AdviceRequest, request: Request, services: ServicesDep, caller: AnswersCallerDep
) -> AnswerResponse | StreamingResponse:
    """Recommend products for a shopping question; every claim cites a retrieved product."""
    caller.require_for("search", body.user_id)
    filters = body.filters.to_filters() if body.filters else None
    ranking = services.personalization.ranking(body.user_id, personalize=body.personalize)

    # A conversation is the caller's: a shopper's under their user id (erased with them), one
    # for nobody in particular under the key that started it; nobody else can continue it.
    keeper = body.user_id or caller.user_id

    def events() -> Iterator[AnswerEvent]:
        return services.answers.stream_advice(
            body.question,
            filters,
            rerank=body.rerank,
            conversation_id=body.conversation_id,
            user_id=keeper,
            owner=None if keeper else caller.owner(),
            policy=ranking.policy,
        )

    if body.stream or "text/event-stream" in request.headers.get("accept", ""):
        return sse_response(request, events())
    if body.conversation_id is not None:  # depends on the conversation: never cached
        return AnswerResponse.of(final_answer(events()))
    return through_cache(
        services,
        "advice",
        {
            "text": body.question,
            "filters": filters.model_dump(mode="json") if filters else None,
            "rerank": body.rerank,
        },
        lambda: AnswerResponse.of(final_answer(events())),
        model=AnswerResponse,
        use_cache=body.cache,
        user_id=body.user_id,
        ranking=ranking,
    )
