"""Products without a query: what is trending."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.api.deps import SearchCallerDep, ServicesDep
from app.api.schemas import ErrorResponse, PageQuery, TrendingResponse

router = APIRouter(tags=["recommendations"])


@router.get(
    "/trending",
    response_model=TrendingResponse,
    responses={
        401: {"model": ErrorResponse},
        403: {"model": ErrorResponse},
        422: {"model": ErrorResponse},
        429: {"model": ErrorResponse},
        503: {"model": ErrorResponse},
    },
)
def trending(
    params: Annotated[PageQuery, Query()], services: ServicesDep, caller: SearchCallerDep
) -> TrendingResponse:
    """The most viewed, carted and bought products of the last days, in the whole catalog or
    one category, passing the filters. Read from the event counts on every request (one
    sorted-set union): nothing to cache, and a new event shows at once."""
    caller.require_for("search", None)
    page = services.trending.page(
        category=params.category,
        filters=params.to_filters(),
        page=params.page,
        size=params.size,
    )
    return TrendingResponse.of(page)
