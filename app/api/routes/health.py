"""Service health."""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.api.deps import ServicesDep
from app.api.errors import public_message
from app.api.schemas import GeneratorHealth, Health
from generation.llm.deferred import DeferredLLM
from retrieval.breaker import CircuitBreaker
from retrieval.stores.base import StoreError

logger = logging.getLogger(__name__)

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health, responses={503: {"model": Health}})
def health(services: ServicesDep) -> Health | JSONResponse:
    """Which backends and models are loaded, what the index holds, where loading the generator
    stands; 503 when the store is down (not while the generator loads: search works)."""
    models = {
        "embedder": services.embedder.name,
        "cross_embedder": cross.name if (cross := services.search.cross_embedder) else "none",
        "reranker": services.reranker.name if services.reranker else "none",
        "llm": services.llm.name,
    }
    cache: dict[str, Any] = (
        asdict(services.cache.stats()) if services.cache else {"backend": "none"}
    )
    store = services.personalization.profiles
    profiles: dict[str, Any] = asdict(store.stats()) if store else {"backend": "none"}
    spool = services.personalization.spool
    event_spool = asdict(spool.stats()) if spool else {"queued": 0, "max_events": 0}
    llm = services.llm
    generator = (
        GeneratorHealth(**asdict(llm.status()))
        if isinstance(llm, DeferredLLM)
        else GeneratorHealth(state="ready")
    )
    try:
        stats = services.store.stats()
    except StoreError as exc:
        logger.warning("health: the store is unavailable: %s", exc)
        body = Health(
            status="unavailable",
            store={
                "backend": services.settings.store,
                "error": public_message(exc),
                **_breaker(services.store),
            },
            cache=cache,
            profiles=profiles,
            event_spool=event_spool,
            models=models,
            generator=generator,
        )
        return JSONResponse(status_code=503, content=body.model_dump(mode="json"))
    return Health(
        status="ok" if stats.products else "empty",
        store={**asdict(stats), **_breaker(services.store)},
        cache=cache,
        profiles=profiles,
        event_spool=event_spool,
        models=models,
        generator=generator,
    )


def _breaker(store: object) -> dict[str, str]:
    """The state of the store's circuit breaker (Elasticsearch while serving): closed, open
    (failing fast) or half-open (one request probing); nothing for a store without one."""
    breaker = getattr(store, "breaker", None)
    return {"breaker": breaker.state} if isinstance(breaker, CircuitBreaker) else {}
