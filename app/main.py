"""The FastAPI application: routes, error handlers, request logs, and start-up of the models."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from starlette.concurrency import run_in_threadpool

from app.api.docs import install_docs
from app.api.errors import install_error_handlers
from app.api.middleware import install_middleware
from app.api.routes import advice, health, products, recommendations, search, users, web
from app.auth.access import build_access, log_access
from app.services import Services, build_services
from app.settings import Settings, get_settings

logger = logging.getLogger("app.requests")


def create_app(
    settings: Settings | None = None,
    services: Services | None = None,
    *,
    owns_services: bool | None = None,
) -> FastAPI:
    """The API; given ``services`` it uses them, otherwise it builds them at start-up. It
    closes them at shut-down when it built them, or when ``owns_services``."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = services is None if owns_services is None else owns_services
        app.state.services = services or await run_in_threadpool(
            functools.partial(build_services, settings or get_settings(), background_generator=True)
        )
        app.state.access = build_access(app.state.services.settings)
        log_access(app.state.access)
        ready = app.state.services.settings
        logger.info(
            "worker ready",
            extra={"workers": ready.workers, "port": ready.port},
        )
        personalization = app.state.services.personalization
        personalization.start_draining(ready.event_spool_drain_s)  # queued events, if any
        try:
            yield
        finally:
            personalization.stop_draining()
            limits = getattr(app.state, "rate_limits", None)
            if limits is not None:  # built on the first request that is limited
                limits.close()
                app.state.rate_limits = None
            if owned:
                app.state.services.close()

    app = FastAPI(
        title="Shopping guide",
        version="0.1.0",
        description="Hybrid product search, product Q&A and shopping advice with citations.",
        lifespan=lifespan,
        docs_url=None,  # served offline by install_docs
        redoc_url=None,
    )
    install_docs(app)
    install_error_handlers(app)
    for module in (search, products, recommendations, advice, users, health, web):
        app.include_router(module.router)
    config = services.settings if services is not None else settings or get_settings()
    install_middleware(app, max_body_bytes=config.max_body_bytes, cors_origins=config.cors_origins)

    @app.middleware("http")
    async def log_requests(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        start = time.perf_counter()
        response = await call_next(request)
        caller = getattr(request.state, "caller", None)
        logger.info(
            "request",
            extra={
                "method": request.method,
                "path": request.url.path,
                "status": response.status_code,
                "ms": round((time.perf_counter() - start) * 1000, 2),
                "caller": caller.label() if caller is not None else None,
            },
        )
        return response

    return app
