"""Library errors translated to HTTP responses, in one place.

    invalid request (422)    UnknownProduct (404)    StoreUnavailable (503)    StoreError (500)
    StoreUnavailable with retry_after_s (503 with Retry-After: the store's breaker is open)
    ProfileStoreUnavailable with retry_after_s (503 with Retry-After: the event spool is full)
    GenerationTimeout (504)  GenerationError (503)   ProfileStoreUnavailable (503)
    TrendingUnavailable (503)
    GeneratorNotReady (503 with Retry-After: being installed or loaded)
    GeneratorBusy (503 with Retry-After: the line of answers waiting is full)
    CacheError (503, a strict cache deletion: erasure)
    Unauthenticated (401 with WWW-Authenticate)    Forbidden (403)
    RateLimited (429 with Retry-After: the caller spent its limit)
Every error body is ``{"error": {"code", "message", "fields"?}}``. A 5xx tells the client what
failed (`public_message`), never the library's own message, which can name internal addresses:
that one is logged, with its traceback.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Mount

from app.auth.access import Forbidden, Unauthenticated
from app.limits import RateLimited
from generation.admission import GeneratorBusy
from generation.answers import UnknownProduct
from generation.llm.base import GenerationError, GenerationTimeout, GeneratorNotReady
from personalization.stores.base import ProfileStoreUnavailable
from recommendation.stores.base import TrendingUnavailable
from retrieval.caches.base import CacheError
from retrieval.stores.base import StoreError, StoreUnavailable

logger = logging.getLogger(__name__)


def error_response(
    status: int,
    code: str,
    message: str,
    fields: list[dict[str, str]] | None = None,
    *,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """A JSON error in the API's one error shape."""
    body: dict[str, object] = {"code": code, "message": message}
    if fields is not None:
        body["fields"] = fields
    return JSONResponse(status_code=status, content={"error": body}, headers=headers)


def error_status(exc: Exception) -> tuple[int, str]:
    """The HTTP status and error code for a library error."""
    if isinstance(exc, Unauthenticated):
        return 401, "unauthorized"
    if isinstance(exc, Forbidden):
        return 403, "forbidden"
    if isinstance(exc, RateLimited):
        return 429, "rate_limited"
    if isinstance(exc, UnknownProduct):
        return 404, "not_found"
    if isinstance(exc, StoreUnavailable):
        return 503, "store_unavailable"
    if isinstance(exc, StoreError):
        return 500, "store_error"
    if isinstance(exc, GenerationTimeout):
        return 504, "model_timeout"
    if isinstance(exc, GeneratorNotReady):
        return 503, "model_not_ready"
    if isinstance(exc, GeneratorBusy):
        return 503, "model_busy"
    if isinstance(exc, GenerationError):
        return 503, "model_unavailable"
    if isinstance(exc, ProfileStoreUnavailable):
        return 503, "profiles_unavailable"
    if isinstance(exc, CacheError):
        return 503, "cache_unavailable"
    if isinstance(exc, TrendingUnavailable):
        return 503, "trending_unavailable"
    return 500, "internal_error"


_PUBLIC = {
    "store_unavailable": "the product store is unavailable",
    "store_error": "the product store failed",
    "model_timeout": "the generator did not answer in time",
    "model_unavailable": "the generator is unavailable",
    "model_not_ready": "the generator is not ready yet (being installed or loaded): search "
    "works meanwhile; ask again after Retry-After seconds",
    "model_busy": "the generator is busy with other answers and its line is full: search works "
    "meanwhile; ask again after Retry-After seconds",
    "profiles_unavailable": "the profile store is unavailable or switched off",
    "cache_unavailable": "the result cache is unavailable",
    "trending_unavailable": "the event counts behind trending products are unavailable",
    "internal_error": "internal error",
}


def public_message(exc: Exception) -> str:
    """What a client may read about ``exc``: its message for a 4xx, what failed for a 5xx."""
    status, code = error_status(exc)
    return str(exc) if status < 500 else _PUBLIC[code]


def report(exc: Exception, where: str) -> tuple[int, str, str]:
    """Log a 5xx with its traceback; the status, code and public message of ``exc``."""
    status, code = error_status(exc)
    # expected: no traceback (a store failing fast behind its open breaker has no cause)
    fast_fail = (
        isinstance(exc, StoreUnavailable | ProfileStoreUnavailable) and exc.__cause__ is None
    )
    if isinstance(exc, GeneratorNotReady | GeneratorBusy) or (fast_fail and retry_after(exc)):
        logger.warning("%s refused (%s): %s", where, code, exc)
    elif status >= 500:
        logger.error("%s failed (%s): %s", where, code, exc, exc_info=exc)
    return status, code, public_message(exc)


def retry_after(exc: Exception) -> dict[str, str] | None:
    """The headers of an error's response: Retry-After for one worth retrying soon,
    WWW-Authenticate for missing or invalid credentials."""
    if isinstance(exc, GeneratorNotReady | GeneratorBusy):
        return {"Retry-After": str(exc.retry_after_s)}
    if isinstance(exc, RateLimited):
        return {"Retry-After": exc.retry_after_header}
    wait = getattr(exc, "retry_after_s", None)
    if isinstance(exc, StoreUnavailable | ProfileStoreUnavailable) and isinstance(
        wait, int | float
    ):
        return {"Retry-After": str(max(1, math.ceil(wait)))}
    if isinstance(exc, Unauthenticated):
        return {"WWW-Authenticate": "Bearer"}
    return None


def _json_reason(position: int, body: object, error: object) -> str:
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body or "")
    line = text.count("\n", 0, position) + 1
    column = position - text.rfind("\n", 0, position)
    return f"invalid JSON at line {line}, column {column}: {error}"


def _field(error: dict[str, Any], body: object) -> dict[str, str]:
    loc = error["loc"]
    if error["type"] == "json_invalid" and len(loc) == 2 and isinstance(loc[1], int):
        reason = _json_reason(loc[1], body, (error.get("ctx") or {}).get("error", error["msg"]))
        return {"field": "body", "reason": reason}
    return {"field": ".".join(str(p) for p in loc), "reason": error["msg"]}


async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
    fields = [_field(error, exc.body) for error in exc.errors()]
    names = ", ".join(f["field"] for f in fields)
    return error_response(422, "invalid_request", f"invalid request: {names}", fields)


_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE")


def allowed_methods(request: Request) -> list[str]:
    """The methods the request's path answers, each tried against the app's routes: Starlette's
    405 names only the methods of the first route at the path (``/search`` has a GET and a
    POST route), and none at all behind FastAPI's included routers. A mount takes any method."""
    routes = [route for route in request.app.router.routes if not isinstance(route, Mount)]
    return [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes
        )
    ]


async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    if exc.status_code == 400 and isinstance(exc.__cause__, UnicodeDecodeError):
        # FastAPI's 400 for a JSON body that is not UTF-8: malformed JSON, a 422 like the rest.
        reason = f"invalid JSON: the body is not UTF-8 (byte {exc.__cause__.start})"
        fields = [{"field": "body", "reason": reason}]
        return error_response(422, "invalid_request", "invalid request: body", fields)
    code = "not_found" if exc.status_code == 404 else "http_error"
    headers = dict(exc.headers or {})
    if exc.status_code == 405 and (allowed := allowed_methods(request)):
        headers["Allow"] = ", ".join(allowed)  # RFC 9110: what the resource allows
    return error_response(exc.status_code, code, str(exc.detail), headers=headers or None)


async def _library(request: Request, exc: Exception) -> JSONResponse:
    status, code, message = report(exc, f"{request.method} {request.url.path}")
    return error_response(status, code, message, headers=retry_after(exc))


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    app.add_exception_handler(RequestValidationError, _validation)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http)  # type: ignore[arg-type]
    for error in (
        Unauthenticated,
        Forbidden,
        RateLimited,
        UnknownProduct,
        StoreError,
        GenerationError,
        ProfileStoreUnavailable,
        CacheError,
        TrendingUnavailable,
        Exception,
    ):
        app.add_exception_handler(error, _library)
