"""The answer as it is written: each claim checked the moment its line is complete.

`ClaimStream` is fed the model's reply piece by piece. When a line (``[n] "quote" claim``)
is complete it is checked (`generation.support.check_claim`); a claim that passes is rendered
and handed out at once, one that fails is dropped and counted, and nothing unchecked is ever
handed out, so what a client is streamed is the final answer. It also stops a reply that
repeats itself (the same claim or quote again, or a phrase over and over) and one that says
the abstain marker. For a yes/no question the first claim that settles it opens the answer
with its Yes or No; a later claim that settles it the other way is dropped.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass, field

from generation.quotes import Claim, parse_line, split_lines
from generation.support import ClaimContext, Rejected, Supported, Verdict, check_claim
from retrieval.text import has_cjk, normalize

logger = logging.getLogger(__name__)

VERDICTS = {
    ("yes", False): "Yes.",
    ("no", False): "No.",
    ("yes", True): "是的，",
    ("no", True): "不，",
}
_ENDS = (".", "!", "?", "。", "！", "？")
_REPEATED_NGRAM = 3  # a 3-word phrase said this many times in one line is degenerate


def _uncited(text: str) -> str:
    return re.sub(r"\s*\[\d+\]", "", text)


def _degenerate(line: str) -> bool:
    words = normalize(line).split()
    grams = Counter(tuple(words[i : i + 3]) for i in range(len(words) - 2))
    return bool(grams) and max(grams.values()) >= _REPEATED_NGRAM


_QUOTE_LABELS = {
    ("review", False): "A review says",
    ("qa", False): "An answer on the page says",
    ("review", True): "评论说：",
    ("qa", True): "页面上的回答说：",
}


def render(claim: Supported, *, chinese: bool, kind: str = "", title: str = "") -> str:
    """A claim as answer text: its citation before its end punctuation; a claim that is its
    quote is shown as a quote, with where it comes from."""
    if claim.quoted:
        label = _QUOTE_LABELS.get(
            (kind, chinese), "商品页面写道：" if chinese else "The product page says"
        )
        if kind == "product":  # advice: the product, and what its page says
            label = f"{title}：" if chinese else f"{title}:"
        quote = claim.quote.strip().rstrip(".。!！?？ ")
        space = "" if chinese else " "
        return f"{label}{space}“{quote}”{space}[{claim.source}]{'。' if chinese else '.'}"
    text = claim.text.strip()
    end = text[-1] if text and text[-1] in ".!?。！？" else ("。" if chinese else ".")
    body = text[:-1].rstrip() if text and text[-1] in ".!?。！？" else text
    space = "" if body and has_cjk(body[-1]) else " "
    return f"{body}{space}[{claim.source}]{end}"


@dataclass
class ClaimStream:
    """Checks a reply line by line as it streams (see the module docstring)."""

    context: ClaimContext
    abstain_marker: str
    supported: list[Supported] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    abstained: bool = False
    repeated: bool = False
    _buffer: str = ""
    _text: str = ""
    _seen: set[str] = field(default_factory=set)
    _verdict: Verdict | None = None
    _rendered: list[str] = field(default_factory=list)

    @property
    def stop(self) -> bool:
        """Whether generation should stop: the reply abstained or repeats itself."""
        return self.abstained or self.repeated

    @property
    def text(self) -> str:
        """The answer handed out so far."""
        return self._text

    def feed(self, piece: str) -> str:
        """The checked text that ``piece`` completes ("" while a line is unfinished)."""
        if self.stop:
            return ""
        lines, self._buffer = split_lines(self._buffer + piece)
        return "".join(self._line(line) for line in lines if not self.stop)

    def finish(self) -> str:
        """The checked text of the reply's last line; a line without its end punctuation was
        cut off (by the token limit) and is dropped."""
        rest, self._buffer = self._buffer, ""
        if self.stop or not rest.strip():
            return ""
        if rest.strip() != self.abstain_marker and not rest.rstrip().endswith(_ENDS):
            return self._reject(Rejected("cut_off", rest[-80:]))
        return self._line(rest)

    def claims(self) -> list[Claim]:
        """The claims that shipped."""
        return [
            Claim(
                _uncited(self._rendered[i]),
                (c.source,),
                c.quote,
                c.span,
                c.quoted,
                model_text=c.text if c.quoted else "",
                reworded=c.reworded,
            )
            for i, c in enumerate(self.supported)
        ]

    def _line(self, line: str) -> str:
        if line.strip() == self.abstain_marker or self.abstain_marker in line:
            if not self.supported:
                self.abstained = True
            return ""
        parsed = parse_line(line)
        if parsed is None:
            return self._reject(Rejected("malformed", line[:80]))
        seen = {normalize(parsed.text), f"{parsed.source}:{normalize(parsed.quote)}"}
        if seen & self._seen or _degenerate(line):
            self.repeated = True
            return self._reject(Rejected("repetition", line[:80], parsed))
        self._seen |= seen
        checked = check_claim(parsed, self.context)
        if isinstance(checked, Rejected):
            return self._reject(checked)
        opening = ""
        if checked.verdict is not None:
            if self._verdict is not None and checked.verdict != self._verdict:
                return self._reject(Rejected("conflict", checked.quote, parsed))
            if self._verdict is None:
                self._verdict = checked.verdict
                opening = VERDICTS[(checked.verdict, self.context.chinese)]
        self.supported.append(checked)
        source = self.context.sources[checked.source]
        rendered = render(
            checked, chinese=self.context.chinese, kind=source.kind, title=source.title
        )
        self._rendered.append(rendered)
        if opening:
            rendered = f"{opening}{'' if self.context.chinese else ' '}{rendered}"
        out = rendered if not self._text else ("" if self.context.chinese else " ") + rendered
        self._text += out
        return out

    def _reject(self, rejected: Rejected) -> str:
        self.rejected.append(rejected)
        logger.info("dropped a claim (%s): %s", rejected.reason, rejected.detail)
        return ""

    @property
    def verdict(self) -> Verdict | None:
        """The Yes or No the answer opens with, if any."""
        return self._verdict

    def reasons(self) -> list[str]:
        """Why each dropped claim was dropped."""
        return [r.reason for r in self.rejected]


_ANSWER_REASONS = frozenset({"not_an_answer", "unsettled", "conflict"})


def abstain_reason(stream: ClaimStream) -> str | None:
    """Why an answer with no claim shipped abstains: "model" (it said the sources do not
    answer), "not_answered" (its claims were true of the page but did not answer the
    question, or did not settle a yes/no), "unsupported" (its claims were not supported by
    their quotes); None when a claim shipped."""
    if stream.supported:
        return None
    if stream.abstained:
        return "model"
    reasons = set(stream.reasons())
    if reasons and reasons <= _ANSWER_REASONS | {"repetition"} and reasons & _ANSWER_REASONS:
        return "not_answered"
    return "unsupported"
