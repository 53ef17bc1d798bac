"""Tests of the recording fake LLM."""

from __future__ import annotations

import pytest

from generation.llm.base import LLM, ChatMessage, GenerationError, GenerationOptions, generate
from generation.llm.fake import RecordingLLM

OPTIONS = GenerationOptions()
PROMPT = [ChatMessage("system", "be brief"), ChatMessage("user", "hello")]


class TestRecordingLLM:
    def test_is_an_llm(self) -> None:
        assert isinstance(RecordingLLM(), LLM)

    def test_replies_in_order_then_default(self) -> None:
        llm = RecordingLLM(["one", "two"], default="again")
        assert [generate(llm, PROMPT, OPTIONS) for _ in range(4)] == [
            "one",
            "two",
            "again",
            "again",
        ]

    def test_streams_in_chunks_and_records_calls(self) -> None:
        llm = RecordingLLM(["abcdefghij"], chunk=4)
        assert list(llm.stream(PROMPT, OPTIONS)) == ["abcd", "efgh", "ij"]
        assert llm.calls == [PROMPT]
        assert llm.options == [OPTIONS]
        assert llm.last_prompt == "hello"

    def test_no_reply_left_raises(self) -> None:
        llm = RecordingLLM(["only"])
        generate(llm, PROMPT, OPTIONS)
        with pytest.raises(GenerationError, match="no reply left"):
            generate(llm, PROMPT, OPTIONS)

    def test_fail_with(self) -> None:
        llm = RecordingLLM(["unused"], fail_with=TimeoutError("slow"))
        with pytest.raises(TimeoutError):
            generate(llm, PROMPT, OPTIONS)
        assert len(llm.calls) == 1

    def test_cancelled_stops_early(self) -> None:
        llm = RecordingLLM(["a" * 40], chunk=4)
        pieces: list[str] = []
        for piece in llm.stream(PROMPT, OPTIONS, cancelled=lambda: len(pieces) >= 2):
            pieces.append(piece)
        assert pieces == ["aaaa", "aaaa"]

    def test_rejects_empty_chunk(self) -> None:
        with pytest.raises(ValueError, match="chunk"):
            RecordingLLM(chunk=0)
