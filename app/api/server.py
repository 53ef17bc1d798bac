"""How the API is served: uvicorn's options, and a URL length limit answered in the API's shape.

uvicorn answers a request its HTTP parser cannot take with a plain-text ``400 Invalid HTTP request
received.``: httptools cannot parse a URL over 65535 bytes at all, and h11 holds 16 KB by
default. So the API is served by h11 with room for `SERVER_LINE_LIMIT` bytes, and `UrlLimit`
answers a URL over `MAX_URL_BYTES` with a JSON ``414 uri_too_long`` in the API's error shape,
with the API's security headers.

With ``WORKERS`` over 1, `serve` runs that many worker processes through uvicorn's own
supervisor (`uvicorn.supervisors.Multiprocess`: spawned processes accepting on one listening
socket, each replaced when it dies); each imports `worker_app`, reads the settings from the
environment and builds its own services. What they must agree on is shared state that
`Settings.shared_state_problems` requires (Redis cache and rate limits; profiles in files or
Redis, trending and pair counts in Redis); see README.md, "Several API workers".
"""

from __future__ import annotations

import json
import logging
import os
import sys

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.config import STARTUP_FAILURE

from app.api.middleware import security_headers
from app.settings import Settings, get_settings

logger = logging.getLogger(__name__)

WORKER_APP = "app.api.server:worker_app"

MAX_URL_BYTES = 16 * 1024
SERVER_LINE_LIMIT = 1024 * 1024


class UrlLimit:
    """Pure ASGI middleware: a URL (path and query) over ``max_bytes`` is a JSON 414."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_URL_BYTES) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer 414 for an over-long URL, pass anything else on."""
        if scope["type"] == "http":
            path = scope.get("raw_path") or scope["path"].encode()
            length = len(path) + len(scope.get("query_string", b""))
            if length > self.max_bytes:
                await _too_long(length, self.max_bytes, send)
                return
        await self.app(scope, receive, send)


async def _too_long(length: int, limit: int, send: Send) -> None:
    message = f"the URL is {length} bytes long, over the limit of {limit} bytes"
    body = json.dumps({"error": {"code": "uri_too_long", "message": message}}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", b"%d" % len(body)),
        *security_headers(),
    ]
    await send({"type": "http.response.start", "status": 414, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def server_config(app: ASGIApp | str, host: str, port: int, *, workers: int = 1) -> uvicorn.Config:
    """uvicorn's configuration for ``app`` (wrapped in `UrlLimit`); logs go through ours.
    With ``workers`` over 1, ``app`` is an import string of a factory (`WORKER_APP`) that each
    worker process calls."""
    return uvicorn.Config(
        app if isinstance(app, str) else UrlLimit(app),
        host=host,
        port=port,
        factory=isinstance(app, str),
        workers=workers,
        log_config=None,
        access_log=False,
        http="h11",
        h11_max_incomplete_event_size=SERVER_LINE_LIMIT,
    )


def worker_app() -> ASGIApp:
    """The API of one worker process (uvicorn calls it in each): its logs carry its pid,
    its services are its own, built at start-up."""
    from app.logs import configure_logging
    from app.main import create_app
    from app.services import build_services

    settings = get_settings()
    configure_logging(settings.log_level, json_lines=settings.log_json)
    logger.info("worker %d starting", os.getpid(), extra={"workers": settings.workers})
    # Built here, not in the lifespan: a worker that cannot build them fails as uvicorn's
    # start-up failure, which stops the supervisor instead of restarting the worker forever.
    try:
        services = build_services(settings, background_generator=True)
    except Exception:
        logger.exception("worker %d could not build its services", os.getpid())
        sys.exit(STARTUP_FAILURE)
    return UrlLimit(create_app(settings, services, owns_services=True))


def serve(app: ASGIApp | None, settings: Settings) -> int:
    """Serve ``app`` (one worker), or `worker_app` in ``settings.workers`` processes (``app``
    unused: None); 0 after a clean shut-down, 1 when it did not start."""
    if settings.workers == 1:
        assert app is not None, "one worker serves the app it is given"
        server = uvicorn.Server(server_config(app, settings.host, settings.port))
        server.run()
        return 0 if server.started else 1
    return _serve_workers(settings)


def _serve_workers(settings: Settings) -> int:
    from uvicorn.supervisors import Multiprocess

    # The workers are spawned: they read the settings again from the environment, so the
    # command line's overrides go there.
    os.environ["SHOPGUIDE_WORKERS"] = str(settings.workers)
    if settings.insecure_local:
        os.environ["SHOPGUIDE_INSECURE_LOCAL"] = "true"
    if settings.llm_backend == "llama-cpp":
        logger.warning(
            "%d workers each load the llama.cpp generator %s in the background (mapped from "
            "the file, so its weights are shared through the page cache, but each worker has "
            "its own context, prompt cache of up to %d MB and %s threads): up to %d answers "
            "are generated at once. To hold one copy, serve it once (llama.cpp's server) and "
            "set SHOPGUIDE_LLM_BACKEND=openai",
            settings.workers,
            settings.llm_model,
            settings.llm_prompt_cache_mb,
            settings.llm_threads or "all cores'",
            settings.workers * settings.llm_concurrency,
        )
    config = server_config(WORKER_APP, settings.host, settings.port, workers=settings.workers)
    socket = config.bind_socket()
    logger.info(
        "serving with %d worker processes",
        settings.workers,
        extra={"workers": settings.workers},
    )
    supervisor = Multiprocess(config, sockets=[socket])
    try:
        supervisor.run()
    finally:
        socket.close()
    failed = any(p.exitcode == STARTUP_FAILURE for p in supervisor.processes)
    return 1 if failed else 0
