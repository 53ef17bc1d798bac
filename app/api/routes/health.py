"""Service health."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter

from app.api.deps import ServicesDep
from app.api.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health)
def health(services: ServicesDep) -> Health:
    """Which backends and models are loaded, and what the index holds."""
    stats = services.store.stats()
    return Health(
        status="ok" if stats.products else "empty",
        store=asdict(stats),
        models={
            "embedder": services.embedder.name,
            "reranker": services.reranker.name if services.reranker else "none",
            "llm": services.llm.name,
        },
    )
