"""Serving results and answers through the result cache."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel

from app.services import Services
from personalization.service import Ranking
from retrieval.caches.base import normalize_query

M = TypeVar("M", bound=BaseModel)


def through_cache(
    services: Services,
    namespace: str,
    request: dict[str, Any],
    compute: Callable[[], M],
    *,
    model: type[M],
    use_cache: bool,
    user_id: str | None = None,
    ranking: Ranking | None = None,
) -> M:
    """``compute()``, or its cached result for the same request, configuration and catalog.

    ``request`` holds every request field that changes the result; its ``text`` entry is
    normalised (case, width, spacing). The catalog version makes a re-index or an upsert
    invalidate every entry at once. A result personalized for ``user_id`` is kept under the
    shopper's own prefix (erased with them) and keyed by their profile's version; any other
    result is shared by everyone.
    """
    if services.results is None:
        return compute()
    parts = {
        **request,
        "text": normalize_query(str(request.get("text", ""))),
        "config": services.config_key(),
        "catalog": services.catalog_version(),
    }
    if ranking is not None and ranking.personalized and user_id is not None:
        namespace = f"user:{user_id}:{namespace}"
        parts["profile"] = ranking.profile_version
    value, hit = services.results.get_or_compute(
        namespace, parts, compute, model=model, bypass=not use_cache
    )
    return value.model_copy(update={"cached": True}) if hit else value
