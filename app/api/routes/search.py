"""Product search."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.api.cached import through_cache
from app.api.deps import SearchCallerDep, ServicesDep
from app.api.schemas import TOO_LARGE, ErrorResponse, SearchQuery, SearchRequest, SearchResponse
from app.services import Services
from generation.constraints import parse_constraints
from personalization.service import Ranking

router = APIRouter(tags=["search"])
_ERRORS: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorResponse},
    403: {"model": ErrorResponse},
    422: {"model": ErrorResponse},
    429: {"model": ErrorResponse},
    503: {"model": ErrorResponse},
}


def run_search(services: Services, request: SearchRequest) -> SearchResponse:
    """Search with explicit filters plus the constraints stated in the query, personalized for
    the shopper when they have a profile, cached."""
    ranking = services.personalization.ranking(request.user_id, personalize=request.personalize)
    key = request.model_dump(exclude={"query", "cache", "user_id", "personalize"}, mode="json")
    response = through_cache(
        services,
        "search",
        {**key, "text": request.query},
        lambda: _search(services, request, ranking),
        model=SearchResponse,
        use_cache=request.cache,
        user_id=request.user_id,
        ranking=ranking,
    )
    return response.model_copy(update={"query": request.query})


def _search(services: Services, request: SearchRequest, ranking: Ranking) -> SearchResponse:
    filters = request.filters.to_filters() if request.filters else None
    query, applied = request.query, []
    if request.parse_constraints:
        parsed = parse_constraints(request.query, known_brands=services.store.brands())
        query, applied = parsed.text, list(parsed.applied)
        filters = parsed.filters.merged(filters)
    result = services.search.search(
        query,
        filters=filters,
        page=request.page,
        size=request.size,
        rerank=request.rerank,
        policy=ranking.policy,
    )
    return SearchResponse.build(request.query, applied, result, personalized=ranking.personalized)


@router.post("/search", response_model=SearchResponse, responses={**_ERRORS, 413: TOO_LARGE})
def search(body: SearchRequest, services: ServicesDep, caller: SearchCallerDep) -> SearchResponse:
    """Hybrid search (BM25 + vectors, fused, optionally re-ranked) with filters."""
    caller.require_for("search", body.user_id)
    return run_search(services, body)


@router.get("/search", response_model=SearchResponse, responses=_ERRORS)
def search_get(
    params: Annotated[SearchQuery, Query()], services: ServicesDep, caller: SearchCallerDep
) -> SearchResponse:
    """The same search with ``q`` and the filters as query parameters (repeat ``brands``)."""
    request = params.to_request()
    caller.require_for("search", request.user_id)
    return run_search(services, request)
