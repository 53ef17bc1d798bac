"""Service health."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.api.deps import ServicesDep
from app.api.schemas import Health
from retrieval.stores.base import StoreError

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health, responses={503: {"model": Health}})
def health(services: ServicesDep) -> Health | JSONResponse:
    """Which backends and models are loaded, what the index holds; 503 when the store is down."""
    models = {
        "embedder": services.embedder.name,
        "reranker": services.reranker.name if services.reranker else "none",
        "llm": services.llm.name,
    }
    cache: dict[str, Any] = (
        asdict(services.cache.stats()) if services.cache else {"backend": "none"}
    )
    try:
        stats = services.store.stats()
    except StoreError as exc:
        body = Health(
            status="unavailable",
            store={"backend": services.settings.store, "error": str(exc)},
            cache=cache,
            models=models,
        )
        return JSONResponse(status_code=503, content=body.model_dump(mode="json"))
    return Health(
        status="ok" if stats.products else "empty",
        store=asdict(stats),
        cache=cache,
        models=models,
    )
