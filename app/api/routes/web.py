"""The shopper's web page: ``/`` and its assets (from the package, no build step), and the demo
sessions it starts on a laptop or a trial (`app.auth.demo`)."""

from __future__ import annotations

import functools
from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from app.api.deps import ServicesDep
from app.api.schemas import TOO_LARGE, ErrorResponse
from app.auth.demo import (
    DEMO_LIFETIME_S,
    DEMO_USER_PATTERN,
    demo_secret,
    demo_token,
    new_demo_user,
)
from app.web import STATIC_DIR

router = APIRouter(tags=["web page"])

_NO_STORE = {"cache-control": "no-cache"}  # a new version of the page shows on reload


@router.get("/", include_in_schema=False)
def page() -> FileResponse:
    """The web page."""
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html", headers=_NO_STORE)


@router.get("/web/assets/{name}", include_in_schema=False)
def asset(name: str) -> FileResponse:
    """A script, style sheet or image of the page (only the files shipped with it)."""
    path = _shipped().get(name)
    if path is None:
        raise HTTPException(status_code=404, detail=f"no asset named '{name}'")
    return FileResponse(path, media_type=_TYPES[path.suffix], headers=_NO_STORE)


@functools.cache
def _shipped() -> dict[str, Path]:
    """The assets shipped with the page, by name (read once: the package does not change)."""
    return {p.name: p for p in STATIC_DIR.iterdir() if p.is_file() and p.suffix in _TYPES}


_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}


class SessionRequest(BaseModel):
    """``POST /web/session``: keep being the demo shopper of an earlier session, or a new one."""

    model_config = ConfigDict(extra="forbid")

    user_id: str | None = Field(None, pattern=DEMO_USER_PATTERN, examples=["demo-0123456789abcdef"])


class SessionResponse(BaseModel):
    """A demo shopper's token: ``Authorization: Bearer <token>`` on every call of the page."""

    token: str
    user_id: str
    expires_in: int = Field(description="Seconds the token is valid.")
    demo: bool = True


@router.post(
    "/web/session",
    response_model=SessionResponse,
    responses={404: {"model": ErrorResponse}, 413: TOO_LARGE, 422: {"model": ErrorResponse}},
)
def session(request: SessionRequest, services: ServicesDep) -> SessionResponse:
    """A token for a demo shopper (``demo-`` and 16 hex digits: the one given, or a new one),
    valid 12 hours, for the web page on a laptop or a trial: only with ``WEB_DEMO`` and
    ``LOCAL_KEY`` on and no shopper-token key configured (404 otherwise: the shop's own
    front-end signs its shoppers' tokens). A demo shopper is a shopper like any other: their
    profile, opt-out and erasure work as for a real one."""
    settings = services.settings
    if not settings.web_demo_sessions:
        raise HTTPException(
            status_code=404,
            detail="demo sessions are off: sign in with the shop's own shopper token",
        )
    user_id = request.user_id or new_demo_user()
    token = demo_token(demo_secret(settings.web_demo_secret_file), user_id)
    return SessionResponse(token=token, user_id=user_id, expires_in=DEMO_LIFETIME_S)
