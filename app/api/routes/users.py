"""Shoppers: their behaviour events, what is known about them, their opt-out, their erasure."""

from __future__ import annotations

import logging
import time
from typing import Annotated

from fastapi import APIRouter, Path, Query

from app.api.cached import through_cache
from app.api.deps import CallerDep, ServicesDep
from app.api.schemas import (
    TOO_LARGE,
    ErasureResponse,
    ErrorResponse,
    EventsRequest,
    EventsResponse,
    ForYouQuery,
    PersonalizationIn,
    ProfileResponse,
    RecommendationsResponse,
)
from personalization.events import USER_ID_PATTERN, Event
from personalization.service import Ranking
from personalization.stores.base import ProfileStore, ProfileStoreUnavailable

router = APIRouter(tags=["users"])
audit = logging.getLogger("app.audit")
_ERRORS: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorResponse},
    403: {"model": ErrorResponse},
    422: {"model": ErrorResponse},
    503: {"model": ErrorResponse},
}
RECENT_EVENTS = 20
UserId = Annotated[str, Path(pattern=USER_ID_PATTERN, description="The shopper's id.")]


def _profiles(services: ServicesDep) -> ProfileStore:
    profiles = services.personalization.profiles
    if profiles is None:
        msg = "profiles are off (SHOPGUIDE_PROFILES=none)"
        raise ProfileStoreUnavailable(msg)
    return profiles


@router.post("/events", response_model=EventsResponse, responses={**_ERRORS, 413: TOO_LARGE})
def post_events(body: EventsRequest, services: ServicesDep, caller: CallerDep) -> EventsResponse:
    """Record views, clicks, carts, purchases and searches (up to 1000 per call). Each
    shopper's profile is updated at once; a repeated ``event_id`` is not counted twice; an event
    about an unknown product is rejected by its position and the rest recorded. A shopper's
    token posts only their own events. While the profile store or the catalog is down, the
    events are ``queued`` in the API's bounded spool and applied when it returns; only with the
    spool full is the answer 503 ``profiles_unavailable`` with ``Retry-After``."""
    for user_id in {e.user_id for e in body.events}:
        caller.require_for("events", user_id)
    now = time.time()
    events = [
        Event(
            event_id=e.event_id,
            user_id=e.user_id,
            type=e.type,
            at=e.at.timestamp() if e.at is not None else now,
            product_id=e.product_id,
            query=e.query,
        )
        for e in body.events
    ]
    recorded = services.personalization.record(events)  # SpoolFull: 503 with Retry-After
    applied = recorded.report.applied
    services.trending.record(applied, recorded.products)
    services.complements.record(applied, services.personalization.history)
    return EventsResponse.of(recorded)


@router.get(
    "/users/{user_id}/recommendations", response_model=RecommendationsResponse, responses=_ERRORS
)
def recommendations(
    user_id: UserId,
    params: Annotated[ForYouQuery, Query()],
    services: ServicesDep,
    caller: CallerDep,
) -> RecommendationsResponse:
    """Products for the shopper without a query ("for you"): nearest their taste, scored by
    how well each fits their brands, categories and price range, what they bought left out, at
    most 2 per brand and 3 per category on a page, each with its reasons. A new or opted-out
    shopper (or ``personalize=false``) gets trending products, labelled ``personalized:
    false``. Personal pages are cached per profile version and erased with the shopper."""
    caller.require_for("search", user_id)
    wanted = params.personalize
    profile, history = services.personalization.shopper(user_id) if wanted else (None, [])

    def compute() -> RecommendationsResponse:
        return RecommendationsResponse.of(
            services.for_you.page(
                user_id,
                profile,
                history,
                filters=params.to_filters(),
                include_bought=params.include_bought,
                page=params.page,
                size=params.size,
            )
        )

    if profile is None or profile.is_empty():
        return compute()  # trending: changes with every event, nothing to cache
    version = Ranking(None, f"{profile.updated_at:.3f}/{profile.events}")
    return through_cache(
        services,
        "for_you",
        params.model_dump(mode="json"),
        compute,
        model=RecommendationsResponse,
        use_cache=True,
        user_id=user_id,
        ranking=version,
    )


@router.get("/users/{user_id}/profile", response_model=ProfileResponse, responses=_ERRORS)
def get_profile(user_id: UserId, services: ServicesDep, caller: CallerDep) -> ProfileResponse:
    """What personalization knows about the shopper: the strongest brands and categories, the
    usual price range, and the latest events."""
    caller.require_for("profiles", user_id)
    return _profile(user_id, services)


def _profile(user_id: str, services: ServicesDep) -> ProfileResponse:
    profiles = _profiles(services)
    profile = profiles.profile(user_id)
    return ProfileResponse(
        user_id=user_id,
        personalization=profiles.enabled(user_id),
        profile=profile.summary() if profile is not None else None,
        recent_events=[e.to_dict() for e in profiles.events(user_id, RECENT_EVENTS)],
    )


@router.put(
    "/users/{user_id}/personalization",
    response_model=ProfileResponse,
    responses={**_ERRORS, 413: TOO_LARGE},
)
def set_personalization(
    user_id: UserId, body: PersonalizationIn, services: ServicesDep, caller: CallerDep
) -> ProfileResponse:
    """Opt the shopper out of personalization (``enabled: false``: their events are no longer
    stored and their results are no longer personalized) or back in."""
    caller.require_for("profiles", user_id)
    _profiles(services).set_enabled(user_id, body.enabled)
    return _profile(user_id, services)


@router.delete("/users/{user_id}", response_model=ErasureResponse, responses=_ERRORS)
def erase_user(user_id: UserId, services: ServicesDep, caller: CallerDep) -> ErasureResponse:
    """Erase everything kept about the shopper: profile, events, settings, their cached
    personalized results and their conversations; returns what was removed. A service needs
    the ``admin`` scope; a shopper's token erases only its own shopper. Each erasure is written
    to the audit log: who asked, when, and how much was removed (not whose data)."""
    caller.require_for("admin", user_id)
    response = ErasureResponse.of(services.personalization.erase(user_id))
    audit.info(
        "erasure",
        extra={"by": caller.label(), **response.model_dump(exclude={"user_id"}, mode="json")},
    )
    return response
