"""Answers as server-sent events: ``queued`` events while the answer waits for the generator
(``{"place": n}``), ``token`` events (each a checked claim), then one ``final`` (or ``error``)
event. The first event is taken before the response starts, so what fails at once (an unknown
product, a full line of answers, a generator not ready) is a plain HTTP error with its status
and Retry-After, not a stream."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

from fastapi import Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from app.api.errors import report, retry_after
from app.api.schemas import AnswerResponse
from generation.answers import AnswerEvent, FinalEvent, QueuedEvent, TokenEvent

_DONE = object()


def _sse(event: str, data: object) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _next(events: Iterator[AnswerEvent]) -> object:
    return next(events, _DONE)


async def _frames(
    request: Request, first: object, events: Iterator[AnswerEvent]
) -> AsyncIterator[str]:
    event = first
    try:
        while True:
            if await request.is_disconnected():
                return
            if event is None:
                try:
                    event = await run_in_threadpool(_next, events)
                except Exception as exc:  # noqa: BLE001 - logged, and reported to the client
                    where = f"{request.method} {request.url.path} stream"
                    status, code, message = report(exc, where)
                    error: dict[str, object] = {"code": code, "message": message, "status": status}
                    if (headers := retry_after(exc)) is not None:
                        error["retry_after_s"] = int(headers["Retry-After"])
                    yield _sse("error", {"error": error})
                    return
            if event is _DONE:
                return
            if isinstance(event, TokenEvent):
                yield _sse("token", {"text": event.text})
            elif isinstance(event, QueuedEvent):
                yield _sse("queued", {"place": event.place})
            elif isinstance(event, FinalEvent):
                yield _sse("final", AnswerResponse.of(event.answer).model_dump(mode="json"))
            event = None
    finally:
        close = getattr(events, "close", None)
        if close is not None:
            await run_in_threadpool(close)


def sse_response(request: Request, events: Iterator[AnswerEvent]) -> StreamingResponse:
    """Stream the events; generation stops when the client goes away. Called from a worker
    thread: it takes the first event before responding (see the module docstring)."""
    try:
        first = _next(events)
    except BaseException:
        close = getattr(events, "close", None)
        if close is not None:
            close()
        raise
    return StreamingResponse(
        _frames(request, first, events),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
