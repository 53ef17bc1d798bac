"""Library errors translated to HTTP responses, in one place.

    invalid request (422)    UnknownProduct (404)    StoreUnavailable (503)    StoreError (500)
    GenerationTimeout (504)  GenerationError (503)   ProfileStoreUnavailable (503)
    CacheError (503, a strict cache deletion: erasure)
Every error body is ``{"error": {"code", "message", "fields"?}}``.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from generation.answers import UnknownProduct
from generation.llm.base import GenerationError, GenerationTimeout
from personalization.stores.base import ProfileStoreUnavailable
from retrieval.caches.base import CacheError
from retrieval.stores.base import StoreError, StoreUnavailable

logger = logging.getLogger(__name__)


def error_response(
    status: int, code: str, message: str, fields: list[dict[str, str]] | None = None
) -> JSONResponse:
    """A JSON error in the API's one error shape."""
    body: dict[str, object] = {"code": code, "message": message}
    if fields is not None:
        body["fields"] = fields
    return JSONResponse(status_code=status, content={"error": body})


def error_status(exc: Exception) -> tuple[int, str]:
    """The HTTP status and error code for a library error."""
    if isinstance(exc, UnknownProduct):
        return 404, "not_found"
    if isinstance(exc, StoreUnavailable):
        return 503, "store_unavailable"
    if isinstance(exc, StoreError):
        return 500, "store_error"
    if isinstance(exc, GenerationTimeout):
        return 504, "model_timeout"
    if isinstance(exc, GenerationError):
        return 503, "model_unavailable"
    if isinstance(exc, ProfileStoreUnavailable):
        return 503, "profiles_unavailable"
    if isinstance(exc, CacheError):
        return 503, "cache_unavailable"
    return 500, "internal_error"


async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
    fields = [
        {"field": ".".join(str(p) for p in error["loc"]), "reason": error["msg"]}
        for error in exc.errors()
    ]
    names = ", ".join(f["field"] for f in fields)
    return error_response(422, "invalid_request", f"invalid request: {names}", fields)


async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = "not_found" if exc.status_code == 404 else "http_error"
    return error_response(exc.status_code, code, str(exc.detail))


async def _library(request: Request, exc: Exception) -> JSONResponse:
    status, code = error_status(exc)
    if status >= 500:
        logger.error("%s %s failed: %s", request.method, request.url.path, exc)
    message = str(exc) if status < 500 or code != "internal_error" else "internal error"
    return error_response(status, code, message)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    app.add_exception_handler(RequestValidationError, _validation)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http)  # type: ignore[arg-type]
    for error in (
        UnknownProduct,
        StoreError,
        GenerationError,
        ProfileStoreUnavailable,
        CacheError,
        Exception,
    ):
        app.add_exception_handler(error, _library)
