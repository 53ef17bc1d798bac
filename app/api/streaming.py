"""Answers as server-sent events: ``token`` events, then one ``final`` (or ``error``) event."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

from fastapi import Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from app.api.errors import report, retry_after
from app.api.schemas import AnswerResponse
from generation.answers import AnswerEvent, FinalEvent, TokenEvent

_DONE = object()


def _sse(event: str, data: object) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _next(events: Iterator[AnswerEvent]) -> object:
    return next(events, _DONE)


async def _frames(request: Request, events: Iterator[AnswerEvent]) -> AsyncIterator[str]:
    try:
        while True:
            if await request.is_disconnected():
                return
            try:
                event = await run_in_threadpool(_next, events)
            except Exception as exc:  # noqa: BLE001 - logged, and reported to the client
                status, code, message = report(exc, f"{request.method} {request.url.path} stream")
                error: dict[str, object] = {"code": code, "message": message, "status": status}
                if (headers := retry_after(exc)) is not None:
                    error["retry_after_s"] = int(headers["Retry-After"])
                yield _sse("error", {"error": error})
                return
            if event is _DONE:
                return
            if isinstance(event, TokenEvent):
                yield _sse("token", {"text": event.text})
            elif isinstance(event, FinalEvent):
                yield _sse("final", AnswerResponse.of(event.answer).model_dump(mode="json"))
    finally:
        close = getattr(events, "close", None)
        if close is not None:
            await run_in_threadpool(close)


def sse_response(request: Request, events: Iterator[AnswerEvent]) -> StreamingResponse:
    """Stream the events; generation stops when the client goes away."""
    return StreamingResponse(
        _frames(request, events),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
