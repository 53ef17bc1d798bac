"""How the API is served: uvicorn's options, and a URL length limit answered in the API's shape.

uvicorn answers a request its HTTP parser cannot take with a plain-text ``400 Invalid HTTP request
received.``: httptools cannot parse a URL over 65535 bytes at all, and h11 holds 16 KB by
default. So the API is served by h11 with room for `SERVER_LINE_LIMIT` bytes, and `UrlLimit`
answers a URL over `MAX_URL_BYTES` with a JSON ``414 uri_too_long`` in the API's error shape,
with the API's security headers.
"""

from __future__ import annotations

import json

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.middleware import security_headers

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


def server_config(app: ASGIApp, host: str, port: int) -> uvicorn.Config:
    """uvicorn's configuration for ``app`` (wrapped in `UrlLimit`); logs go through ours."""
    return uvicorn.Config(
        UrlLimit(app),
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        http="h11",
        h11_max_incomplete_event_size=SERVER_LINE_LIMIT,
    )
