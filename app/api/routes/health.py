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
            store={"backend": services.settings.store, "error": public_message(exc)},
            cache=cache,
            profiles=profiles,
            models=models,
            generator=generator,
        )
        return JSONResponse(status_code=503, content=body.model_dump(mode="json"))
    return Health(
        status="ok" if stats.products else "empty",
        store=asdict(stats),
        cache=cache,
        profiles=profiles,
        models=models,
        generator=generator,
    )
