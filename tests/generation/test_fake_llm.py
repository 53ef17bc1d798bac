"""Tests of the recording fake LLM."""

from __future__ import annotations

import threading

import pytest

from generation.llm.base import LLM, ChatMessage, GenerationError, GenerationOptions, generate
from generation.llm.fake import RecordingLLM
from tests.quoting import BlockingLLM, QuotingLLM, source_number, sources_in

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


SOURCES_PROMPT = [
    ChatMessage("system", "quote, then claim"),
    ChatMessage(
        "user",
        "<sources>\n[1] (qa) Aero Bottle\n    capacity: 750 ml\n"
        "[2] (review) Aero Bottle\n    Keeps water cold all day\n</sources>\n"
        "Question: q\nAnswer:",
    ),
]


class TestQuotingLLM:
    """The test helper that numbers a canned reply's ``[?]`` from the prompt's sources."""

    def test_the_source_holding_the_quote_is_cited(self) -> None:
        assert sources_in(SOURCES_PROMPT[1].content) == {
            1: ("Aero Bottle", "capacity: 750 ml"),
            2: ("Aero Bottle", "Keeps water cold all day"),
        }
        llm = QuotingLLM(['[?] "keeps water COLD all day" It keeps water cold.\n[7] "x" Kept.'])
        assert generate(llm, SOURCES_PROMPT, OPTIONS) == (
            '[2] "keeps water COLD all day" It keeps water cold.\n[7] "x" Kept.'
        )
        assert source_number(SOURCES_PROMPT[1].content, "Aero Bottle") == 1  # a title

    def test_the_default_is_numbered_each_time(self) -> None:
        default = '[?] "capacity: 750 ml" It holds 750 ml.'
        llm = QuotingLLM(default=default)
        for _ in range(2):
            assert generate(llm, SOURCES_PROMPT, OPTIONS).startswith("[1] ")
        assert llm.default == default

    def test_a_quote_no_source_holds_is_a_mistake_in_the_test(self) -> None:
        llm = QuotingLLM(['[?] "holds 2 l" It holds 2 l.'])
        with pytest.raises(LookupError, match="holds 2 l"):
            generate(llm, SOURCES_PROMPT, OPTIONS)

    def test_blocking_waits_for_release(self) -> None:
        llm = BlockingLLM(default="plain")
        replies: list[str] = []
        worker = threading.Thread(target=lambda: replies.append(generate(llm, PROMPT, OPTIONS)))
        worker.start()
        assert llm.started.wait(10)
        worker.join(0.1)
        assert worker.is_alive() and replies == []
        llm.release.set()
        worker.join(10)
        assert replies == ["plain"]
