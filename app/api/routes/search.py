"""Product search."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.api.cached import through_cache
from app.api.deps import ServicesDep
from app.api.schemas import ErrorResponse, FiltersIn, SearchRequest, SearchResponse
from app.services import Services
from generation.constraints import parse_constraints
from personalization.events import USER_ID_PATTERN
from personalization.service import Ranking

router = APIRouter(tags=["search"])
_ERRORS: dict[int | str, dict[str, object]] = {
    422: {"model": ErrorResponse},
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


@router.post("/search", response_model=SearchResponse, responses=_ERRORS)
def search(body: SearchRequest, services: ServicesDep) -> SearchResponse:
    """Hybrid search (BM25 + vectors, fused, optionally re-ranked) with filters."""
    return run_search(services, body)


@router.get("/search", response_model=SearchResponse, responses=_ERRORS)
def search_get(
    services: ServicesDep,
    q: Annotated[str, Query(min_length=1, max_length=500, description="The query.")],
    category: Annotated[str | None, Query(max_length=300)] = None,
    brand: Annotated[list[str] | None, Query(description="Repeat for several brands.")] = None,
    price_min: Annotated[float | None, Query(ge=0)] = None,
    price_max: Annotated[float | None, Query(ge=0)] = None,
    in_stock: bool | None = None,
    min_rating: Annotated[float | None, Query(ge=0, le=5)] = None,
    page: Annotated[int, Query(ge=1, le=100)] = 1,
    size: Annotated[int, Query(ge=1, le=50)] = 10,
    rerank: bool = True,
    cache: bool = True,
    user_id: Annotated[str | None, Query(pattern=USER_ID_PATTERN)] = None,
    personalize: bool = True,
) -> SearchResponse:
    """The same search with the filters as query parameters."""
    filters = FiltersIn(
        category=category,
        brands=brand,
        price_min=price_min,
        price_max=price_max,
        in_stock=in_stock,
        min_rating=min_rating,
    )
    request = SearchRequest(
        query=q,
        filters=filters,
        page=page,
        size=size,
        rerank=rerank,
        cache=cache,
        user_id=user_id,
        personalize=personalize,
    )
    return run_search(services, request)
