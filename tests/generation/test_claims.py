"""The answer as it streams: a claim is handed out only once its line is complete and checked.

What a client is streamed must be the final answer: nothing unchecked, nothing taken back, a
yes/no answer that opens with its Yes or No once, and an abstention whose reason is right."""

from __future__ import annotations

from typing import Literal

from generation.claims import ClaimStream, abstain_reason, render
from generation.questions import question_kind
from generation.support import CheckSource, ClaimContext, Supported

MARKER = "NOT_IN_SOURCES"
SPEC = "Keeps water cold all day. Capacity: 750 ml. Running time: 1-2 hrs."
REVIEW = "The lid leaks. Waterproof to 10 m."
OTHER_REVIEW = "Not waterproof at all."
COLD = '[1] "Keeps water cold all day" It keeps water cold all day.'


def _stream(
    question: str, mode: Literal["advice", "ask"] = "ask", *, chinese: bool = False
) -> ClaimStream:
    sources = {
        1: CheckSource(1, "Aqua Bottle", SPEC),
        2: CheckSource(2, "Trail Bottle", REVIEW, kind="review"),
        3: CheckSource(3, "华为耳机", "续航约30小时，支持无线充电。"),
        4: CheckSource(4, "Trail Bottle", OTHER_REVIEW, kind="review"),
    }
    kind = question_kind(question) if mode == "ask" else "open"
    return ClaimStream(ClaimContext(question, mode, sources, kind, chinese), MARKER)


def _feed(stream: ClaimStream, reply: str, size: int = 3) -> list[str]:
    """Feed ``reply`` in pieces of ``size`` characters; what each piece and finish() gave."""
    out = [stream.feed(reply[i : i + size]) for i in range(0, len(reply), size)]
    return [*out, stream.finish()]


def test_text_is_handed_out_only_when_a_line_completes() -> None:
    stream = _stream("a cold bottle", "advice")
    reply = f'{COLD}\n[1] "capacity: 750 ml" It has a capacity of 750 ml.'
    out = _feed(stream, reply)
    newline = len(COLD) // 3  # the piece that holds the first line's newline
    assert out[:newline] == [""] * newline
    assert out[newline] == "It keeps water cold all day [1]."
    assert [piece for piece in out if piece] == [
        "It keeps water cold all day [1].",
        " It has a capacity of 750 ml [1].",  # the last line, at finish()
    ]
    assert "".join(out) == stream.text
    assert [c.quote for c in stream.claims()] == ["Keeps water cold all day", "Capacity: 750 ml"]


def test_a_rejected_line_hands_out_nothing() -> None:
    stream = _stream("a bottle for hiking", "advice")
    out = _feed(stream, '[1] "Running for 8 hours" It runs for 8 hours.\n' + COLD)
    assert "".join(out) == stream.text == "It keeps water cold all day [1]."
    assert "8" not in stream.text
    assert stream.reasons() == ["quote_not_in_source"]


def test_a_repeated_line_stops_the_stream() -> None:
    stream = _stream("a cold bottle", "advice")
    out = _feed(stream, f'{COLD}\n{COLD}\n[1] "capacity: 750 ml" It has a capacity of 750 ml.')
    assert stream.repeated and stream.stop
    assert "".join(out) == stream.text == "It keeps water cold all day [1]."
    assert stream.feed('\n[1] "capacity: 750 ml" It has a capacity of 750 ml.\n') == ""


def test_the_abstain_marker_alone_is_the_models_abstention() -> None:
    stream = _stream("a cold bottle", "advice")
    assert "".join(_feed(stream, MARKER)) == ""
    assert stream.abstained and stream.stop
    assert abstain_reason(stream) == "model"


def test_claims_that_do_not_answer_abstain_as_not_answered() -> None:
    stream = _stream("how long does the battery last?")
    _feed(stream, '[1] "capacity: 750 ml" It has a capacity of 750 ml.')
    assert stream.text == "" and stream.reasons() == ["not_an_answer"]
    assert abstain_reason(stream) == "not_answered"


def test_unsupported_claims_abstain_as_unsupported() -> None:
    stream = _stream("how long does the battery last?")
    _feed(stream, '[1] "lasts 30 hours" It lasts 30 hours.')
    assert abstain_reason(stream) == "unsupported"


def test_a_shipped_claim_means_no_abstention() -> None:
    stream = _stream("a cold bottle", "advice")
    _feed(stream, f"{COLD}\n{MARKER}")
    assert not stream.abstained and abstain_reason(stream) is None


def test_a_yes_no_answer_opens_with_its_verdict_once_and_drops_a_conflict() -> None:
    stream = _stream("is it waterproof?")
    reply = (
        '[2] "Waterproof to 10 m" Yes, it is waterproof to 10 m.\n'
        '[4] "Not waterproof at all" No, it is not waterproof at all.\n'
        '[1] "Capacity: 750 ml" Yes, it has a capacity of 750 ml.'
    )
    out = _feed(stream, reply)
    assert stream.text == "".join(out) == "Yes. It is waterproof to 10 m [2]."
    assert stream.text.count("Yes") == 1
    assert stream.verdict == "yes"
    assert "conflict" in stream.reasons()


def test_a_passage_that_says_both_does_not_settle_a_yes_no_question() -> None:
    stream = _stream("is it waterproof?")
    stream.context.sources[2] = CheckSource(
        2, "Trail Bottle", "Waterproof to 10 m. Not waterproof at all, it leaked.", kind="review"
    )
    _feed(stream, '[2] "Waterproof to 10 m" Yes, it is waterproof to 10 m.')
    assert stream.text == "" and stream.reasons() == ["unsettled"]


def test_chinese_puts_the_citation_before_the_full_stop() -> None:
    stream = _stream("续航多久", chinese=True)
    out = _feed(stream, '[3] "续航约30小时" 续航约30小时。\n[3] "支持无线充电" 支持无线充电。')
    assert stream.text == "".join(out) == "续航约30小时[3]。"
    yes_no = _stream("能无线充电吗", chinese=True)
    _feed(yes_no, '[3] "支持无线充电" 是的，支持无线充电。')
    assert yes_no.text == "是的，支持无线充电[3]。"
    restated = _stream("能无线充电吗", chinese=True)
    _feed(restated, '[3] "支持无线充电" 支持无线充电。')  # restates the question: settles it
    assert restated.text == "是的，支持无线充电[3]。"
    unsure = _stream("能无线充电吗", chinese=True)
    _feed(unsure, '[3] "支持无线充电" 支持快速无线充电。')  # says more than its quote
    assert unsure.text == "" and unsure.reasons() == ["unsettled"]


def test_render_a_quoted_claim_as_a_quote_with_its_origin() -> None:
    claim = Supported(2, "It lasts 8 hours.", "The lid leaks.", (0, 14), quoted=True)
    assert render(claim, chinese=False, kind="review") == "A review says “The lid leaks” [2]."
    assert render(claim, chinese=False) == "The product page says “The lid leaks” [2]."
    zh = Supported(3, "x", "续航约30小时。", None, quoted=True)
    assert render(zh, chinese=True) == "商品页面写道：“续航约30小时”[3]。"
