"""A model behind an OpenAI-compatible chat server: vLLM, TGI, Ollama, llama.cpp's server.

Streams ``POST {base_url}/chat/completions`` as server-sent events. HTTP errors, connection
failures and malformed replies raise `GenerationError` (with the status code and the start of
the body where there is one); passing ``options.timeout_s`` raises `GenerationTimeout`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import httpx

from generation.llm.base import ChatMessage, GenerationError, GenerationOptions, GenerationTimeout

__all__ = ["OpenAICompatibleLLM"]

logger = logging.getLogger(__name__)

_BODY_EXCERPT = 200


def _excerpt(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _BODY_EXCERPT else text[:_BODY_EXCERPT] + "…"


class OpenAICompatibleLLM:
    """The `LLM` protocol over an OpenAI-compatible ``/chat/completions`` endpoint."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        connect_timeout_s: float = 5.0,
        grammar_field: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key
        self.connect_timeout_s = connect_timeout_s
        # The request field a server reads a GBNF grammar from ("grammar" for llama.cpp's
        # server, "guided_grammar" for vLLM); None: the grammar is not sent.
        self.grammar_field = grammar_field
        self._transport = transport
        self._client: httpx.Client | None = None

    @property
    def name(self) -> str:
        """The served model's name."""
        return self.model

    @property
    def url(self) -> str:
        """The chat completions endpoint."""
        return f"{self.base_url}/chat/completions"

    def warm_up(self) -> None:
        """Open the HTTP client (no request is sent); idempotent."""
        if self._client is None:
            headers = {"Accept": "text/event-stream"}
            if self.api_key:
                headers["Authorization"] = f"Bearer {self.api_key}"
            self._client = httpx.Client(transport=self._transport, headers=headers)

    def stream(
        self,
        messages: Sequence[ChatMessage],
        options: GenerationOptions,
        *,
        cancelled: Callable[[], bool] | None = None,
    ) -> Iterator[str]:
        """Yield the reply piece by piece; see `LLM.stream`."""
        deadline = time.monotonic() + options.timeout_s
        self.warm_up()
        client = self._client
        if client is None:  # pragma: no cover - warm_up sets it
            msg = "client not open"
            raise GenerationError(msg)
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "stream": True,
            "max_tokens": options.max_tokens,
            "temperature": options.temperature,
        }
        if options.stop:
            payload["stop"] = list(options.stop)
        if options.grammar is not None and self.grammar_field:
            payload[self.grammar_field] = options.grammar
        timeout = httpx.Timeout(
            options.timeout_s, connect=min(self.connect_timeout_s, options.timeout_s)
        )
        try:
            with client.stream("POST", self.url, json=payload, timeout=timeout) as response:
                if response.status_code >= 400:
                    body = response.read().decode("utf-8", errors="replace")
                    msg = f"{self.url} answered HTTP {response.status_code}: {_excerpt(body)}"
                    raise GenerationError(msg)
                content_type = response.headers.get("content-type", "")
                if content_type.startswith("application/json"):
                    yield from self._whole_reply(response)
                    return
                yield from self._events(response, deadline, options.timeout_s, cancelled)
        except httpx.ConnectTimeout as exc:
            msg = f"cannot connect to {self.url} within {self.connect_timeout_s:g} s"
            raise GenerationError(msg) from exc
        except httpx.TimeoutException as exc:
            msg = f"{self.url} gave no complete answer within {options.timeout_s:g} s"
            raise GenerationTimeout(msg) from exc
        except httpx.HTTPError as exc:
            msg = f"request to {self.url} failed: {type(exc).__name__}: {exc}"
            raise GenerationError(msg) from exc

    def _events(
        self,
        response: httpx.Response,
        deadline: float,
        timeout_s: float,
        cancelled: Callable[[], bool] | None,
    ) -> Iterator[str]:
        finished = False
        for line in response.iter_lines():
            if cancelled is not None and cancelled():
                return
            if time.monotonic() > deadline:
                msg = f"{self.url} gave no complete answer within {timeout_s:g} s"
                raise GenerationTimeout(msg)
            if not line.startswith("data:"):
                continue  # blank separators, comments (":"), "event:" and "id:" fields
            data = line[len("data:") :].strip()
            if data == "[DONE]":
                return
            piece, done = self._parse_event(data)
            finished = finished or done
            if piece:
                yield piece
        if not finished:
            msg = f"{self.url} closed the stream before it finished"
            raise GenerationError(msg)

    def _parse_event(self, data: str) -> tuple[str | None, bool]:
        """The text piece in one event and whether the event closes the reply."""
        try:
            event = json.loads(data)
        except json.JSONDecodeError as exc:
            msg = f"{self.url} sent a malformed event: {_excerpt(data)}"
            raise GenerationError(msg) from exc
        if not isinstance(event, dict):
            msg = f"{self.url} sent a malformed event: {_excerpt(data)}"
            raise GenerationError(msg)
        if "error" in event:
            msg = f"{self.url} reported an error: {_excerpt(json.dumps(event['error']))}"
            raise GenerationError(msg)
        choices = event.get("choices")
        if not isinstance(choices, list):
            msg = f"{self.url} sent an event without choices: {_excerpt(data)}"
            raise GenerationError(msg)
        if not choices:
            return None, False  # e.g. a final usage-only event
        choice = choices[0] if isinstance(choices[0], dict) else {}
        delta = choice.get("delta")
        content = delta.get("content") if isinstance(delta, dict) else None
        if content is not None and not isinstance(content, str):
            msg = f"{self.url} sent a malformed event: {_excerpt(data)}"
            raise GenerationError(msg)
        return content, choice.get("finish_reason") is not None

    def _whole_reply(self, response: httpx.Response) -> Iterator[str]:
        """The reply of a server that answered with one JSON body instead of a stream."""
        body = response.read().decode("utf-8", errors="replace")
        try:
            content = json.loads(body)["choices"][0]["message"]["content"]
        except (json.JSONDecodeError, LookupError, TypeError) as exc:
            msg = f"{self.url} sent a malformed reply: {_excerpt(body)}"
            raise GenerationError(msg) from exc
        if not isinstance(content, str):
            msg = f"{self.url} sent a malformed reply: {_excerpt(body)}"
            raise GenerationError(msg)
        if content:
            yield content

    def close(self) -> None:
        """Close the HTTP client."""
        if self._client is not None:
            self._client.close()
            self._client = None
