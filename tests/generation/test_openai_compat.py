"""Tests of the OpenAI-compatible backend against a mocked HTTP transport."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from generation.llm.base import (
    LLM,
    ChatMessage,
    GenerationError,
    GenerationOptions,
    GenerationTimeout,
    generate,
)
from generation.llm.openai_compat import OpenAICompatibleLLM

PROMPT = [ChatMessage("system", "be brief"), ChatMessage("user", "hi")]
SSE = {"content-type": "text/event-stream"}


def event(content: str | None, finish: str | None = None) -> bytes:
    chunk = {"choices": [{"index": 0, "delta": {"content": content}, "finish_reason": finish}]}
    return f"data: {json.dumps(chunk)}\n\n".encode()


def make_llm(handler: Callable[[httpx.Request], httpx.Response], **kwargs: object) -> LLM:
    return OpenAICompatibleLLM(
        "http://llm.test/v1/",
        "qwen",
        api_key="secret",
        transport=httpx.MockTransport(handler),
        **kwargs,  # type: ignore[arg-type]
    )


class TestOpenAICompatibleLLM:
    @pytest.mark.parametrize("field", [None, "grammar", "guided_grammar"])
    def test_the_grammar_is_sent_in_the_configured_field(self, field: str | None) -> None:
        seen: list[dict[str, object]] = []

        def handler(request: httpx.Request) -> httpx.Response:
            seen.append(json.loads(request.content))
            return httpx.Response(200, headers=SSE, content=event("ok [1]") + b"data: [DONE]\n\n")

        llm = make_llm(handler, grammar_field=field)
        options = GenerationOptions(grammar='root ::= "x"')
        assert "".join(llm.stream(PROMPT, options)) == "ok [1]"
        sent = {k for k in seen[0] if k in ("grammar", "guided_grammar")}
        assert sent == (set() if field is None else {field})
        if field is not None:
            assert seen[0][field] == 'root ::= "x"'

    def test_streams_pieces_and_sends_request(self) -> None:
        seen: list[httpx.Request] = []

        def handler(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            body = (
                b": keep-alive\n\n"
                + event("Hel")
                + event(None)
                + event("lo")
                + event("", "stop")
                + b"data: [DONE]\n\n"
            )
            return httpx.Response(200, headers=SSE, content=body)

        llm = make_llm(handler)
        options = GenerationOptions(max_tokens=7, temperature=0.5, stop=("\n\n",))
        assert list(llm.stream(PROMPT, options)) == ["Hel", "lo"]
        request = seen[0]
        assert str(request.url) == "http://llm.test/v1/chat/completions"
        assert request.headers["Authorization"] == "Bearer secret"
        payload = json.loads(request.content)
        assert payload["model"] == "qwen"
        assert payload["stream"] is True
        assert payload["max_tokens"] == 7
        assert payload["temperature"] == 0.5
        assert payload["stop"] == ["\n\n"]
        assert payload["messages"] == [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hi"},
        ]
        assert llm.name == "qwen"

    def test_http_error_names_status_and_body(self) -> None:
        llm = make_llm(lambda _: httpx.Response(500, text="CUDA out of memory"))
        with pytest.raises(GenerationError, match="HTTP 500: CUDA out of memory"):
            generate(llm, PROMPT, GenerationOptions())

    def test_malformed_line(self) -> None:
        body = event("ok") + b"data: {not json\n\n"
        llm = make_llm(lambda _: httpx.Response(200, headers=SSE, content=body))
        with pytest.raises(GenerationError, match="malformed event"):
            generate(llm, PROMPT, GenerationOptions())

    def test_error_event(self) -> None:
        body = b'data: {"error": {"message": "model not loaded"}}\n\n'
        llm = make_llm(lambda _: httpx.Response(200, headers=SSE, content=body))
        with pytest.raises(GenerationError, match="model not loaded"):
            generate(llm, PROMPT, GenerationOptions())

    def test_stream_cut_short(self) -> None:
        llm = make_llm(lambda _: httpx.Response(200, headers=SSE, content=event("par")))
        with pytest.raises(GenerationError, match="before it finished"):
            generate(llm, PROMPT, GenerationOptions())

    def test_json_reply_without_stream(self) -> None:
        reply = {"choices": [{"message": {"role": "assistant", "content": "whole"}}]}
        llm = make_llm(lambda _: httpx.Response(200, json=reply))
        assert generate(llm, PROMPT, GenerationOptions()) == "whole"

    def test_read_timeout(self) -> None:
        def handler(request: httpx.Request) -> httpx.Response:
            raise httpx.ReadTimeout("slow", request=request)

        with pytest.raises(GenerationTimeout):
            generate(make_llm(handler), PROMPT, GenerationOptions(timeout_s=1))

    def test_deadline_mid_stream(self) -> None:
        def slow() -> Iterator[bytes]:
            for _ in range(20):
                yield event("x")
                time.sleep(0.02)

        llm = make_llm(lambda _: httpx.Response(200, headers=SSE, content=slow()))
        with pytest.raises(GenerationTimeout):
            generate(llm, PROMPT, GenerationOptions(timeout_s=0.1))

    def test_connection_refused(self) -> None:
        def handler(request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("connection refused", request=request)

        with pytest.raises(GenerationError, match="ConnectError") as info:
            generate(make_llm(handler), PROMPT, GenerationOptions())
        assert not isinstance(info.value, GenerationTimeout)

    def test_cancelled_stops_early(self) -> None:
        body = b"".join(event(str(i)) for i in range(10)) + b"data: [DONE]\n\n"
        llm = make_llm(lambda _: httpx.Response(200, headers=SSE, content=body))
        pieces: list[str] = []
        for piece in llm.stream(PROMPT, GenerationOptions(), cancelled=lambda: len(pieces) >= 3):
            pieces.append(piece)
        assert pieces == ["0", "1", "2"]
        llm.close()
