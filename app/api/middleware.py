"""Request hardening, as pure ASGI middleware (a stream passes through as it is written).

- `BodyLimit`: a request body over ``max_bytes`` is a JSON ``413 payload_too_large``, answered
  at once from its Content-Length, or, for a chunked body, as soon as the bytes received pass
  the limit: the rest is not read.
- CORS: Starlette's `CORSMiddleware`, only for the origins configured (none: no CORS headers).
  Callers authenticate with an ``Authorization`` header, not cookies: no credentials mode.
- `SecurityHeaders`: ``nosniff``, ``no-referrer``, ``X-Frame-Options: DENY`` and a
  Content-Security-Policy on every response that passes through them: ``default-src 'none'``
  for JSON (and anything but a page); an HTML page (the API's only ones are the docs) may load
  scripts, styles, images and the schema from the API itself, and run its own inline scripts,
  allowed by their hashes. The 414 of `app.api.server.UrlLimit`, answered before the app,
  carries the same headers (`security_headers`).
- `ServerErrors`: an unhandled error becomes the JSON ``500 internal_error`` here, inside the
  security headers and CORS, rather than in Starlette's ServerErrorMiddleware, which answers
  outside every middleware. Its traceback is logged; the client reads no library message.

`install_middleware` adds them so that a request meets the security headers first, then CORS
(a 413 or a 500 to another origin carries CORS headers, so its page can read it), then the
server errors, then the body limit.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Sequence

from fastapi import FastAPI
from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.errors import error_response, report

MAX_BODY_BYTES = 1024 * 1024

CORS_METHODS = ["GET", "POST", "PUT", "DELETE"]
CORS_HEADERS = ["Authorization", "Content-Type"]  # with the CORS-safelisted ones
CORS_EXPOSE = ["Retry-After", "WWW-Authenticate"]
CORS_MAX_AGE_S = 600

STRICT_CSP = "default-src 'none'; frame-ancestors 'none'"
# Swagger UI's BaseLayout (FastAPI's) runs under this in Chromium with no violation: loading,
# try-it-out, models, the authorize dialog. Its StandaloneLayout's logo is an inline <style>.
_PAGE_CSP = (
    "default-src 'none'; script-src {scripts}; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}
_INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\bsrc\s*=)[^>]*>(.*?)</script\s*>", re.I | re.S)


class _TooLarge(Exception):
    """Raised to the app by `BodyLimit`'s receive once the body passes the limit."""


class BodyLimit:
    """Pure ASGI middleware: a request body over ``max_bytes`` is a JSON 413."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer 413 for a declared or received body over the limit, pass anything else on."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await _too_large(f"{declared} bytes", self.max_bytes, send)
            return
        received, over, started = 0, False, False

        async def limited_receive() -> Message:
            nonlocal received, over
            if over:
                raise _TooLarge
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    over = True
                    raise _TooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if over and not started:  # the app's answer to the failed read: the 413 replaces it
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:  # the app's handling of _TooLarge (wrapped, or re-raised) is moot
            if not over or started:
                raise
        if over and not started:
            await _too_large(f"at least {received} bytes", self.max_bytes, send)


def _content_length(scope: Scope) -> int | None:
    value = Headers(scope=scope).get("content-length", "")
    return int(value) if value.isascii() and value.isdigit() else None


async def _too_large(size: str, limit: int, send: Send) -> None:
    message = f"the request body is {size}, over the limit of {limit} bytes"
    body = json.dumps({"error": {"code": "payload_too_large", "message": message}}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", b"%d" % len(body)),
        (b"connection", b"close"),  # the unread rest of the body would be the next request
    ]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class ServerErrors:
    """Pure ASGI middleware: an error the app did not handle is a JSON 500 (if the response
    has not started; a stream already under way is cut, as the server would)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; answer an unhandled error in the API's error shape."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracked_send)
        except Exception as exc:
            if started:
                raise
            status, code, message = report(exc, f"{scope['method']} {scope['path']}")
            await error_response(status, code, message)(scope, receive, send)


def security_headers() -> list[tuple[bytes, bytes]]:
    """The security headers of a JSON response, for one answered outside `SecurityHeaders`."""
    pairs = [*_HEADERS.items(), ("content-security-policy", STRICT_CSP)]
    return [(name.encode(), value.encode()) for name, value in pairs]


class SecurityHeaders:
    """Pure ASGI middleware: the security headers on every response (kept where the app set
    one itself). An HTML page is held until it is complete, to hash its inline scripts."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Add the headers to the response's start; pass anything but HTTP on."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        page: list[bytes] = []

        async def send_with_headers(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in _HEADERS.items():
                    headers.setdefault(name, value)
                if headers.get("content-type", "").startswith("text/html"):
                    start = message  # sent with its policy once the page is complete
                    return
                headers.setdefault("content-security-policy", STRICT_CSP)
            elif message["type"] == "http.response.body" and start is not None:
                page.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                html = b"".join(page)
                MutableHeaders(scope=start).setdefault("content-security-policy", page_csp(html))
                await send(start)
                message = {"type": "http.response.body", "body": html}
                start = None
            await send(message)

        await self.app(scope, receive, send_with_headers)


def page_csp(html: bytes) -> str:
    """The policy of an HTML page: its own inline scripts by hash, the rest from the API."""
    hashes = {
        "'sha256-" + base64.b64encode(hashlib.sha256(script).digest()).decode() + "'"
        for script in _INLINE_SCRIPT.findall(html)
        if script.strip()
    }
    return _PAGE_CSP.format(scripts=" ".join(["'self'", *sorted(hashes)]))


def install_middleware(
    app: FastAPI, *, max_body_bytes: int = MAX_BODY_BYTES, cors_origins: Sequence[str] = ()
) -> None:
    """Add the body limit, the server errors, CORS (when ``cors_origins`` are given) and the
    security headers."""
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    app.add_middleware(ServerErrors)
    if cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cors_origins),
            allow_methods=CORS_METHODS,
            allow_headers=CORS_HEADERS,
            expose_headers=CORS_EXPOSE,
            allow_credentials=False,
            max_age=CORS_MAX_AGE_S,
        )
    app.add_middleware(SecurityHeaders)
