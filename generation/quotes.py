"""Quote, then claim: the reply format of an answer, its decoding grammar, and its parser.

The model writes one claim a line, each opening with the source it comes from and the words
of that source that support it, copied verbatim, then the claim itself::

    [2] "Keeps water cold all day" It keeps water cold all day.
    [1] "capacity: 750 ml" It holds 750 ml.

or the abstain marker alone. `quotes_grammar` writes the GBNF grammar (llama.cpp's format)
of that reply: a source number can only be one the model was given, and the quote only one of
that source's statements (`generation.evidence.statements`) as the model saw them; the claim
text cannot hold brackets, quotes, markup or line breaks, and for an English question no
Chinese characters (a Chinese question's claim must open with one). Backends that cannot
enforce a grammar are checked the same way afterwards: `parse_line` reads any reply line, and
`locate` finds a quote in its source, so a quote that is not there drops its claim.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from retrieval.text import has_cjk

MAX_CLAIMS = 3
MAX_CLAIM_CHARS = 220
# `retrieval.text.CJK_RANGE` as the characters themselves, which a GBNF class takes.
_CJK_RANGE = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CJK_PUNCT = "\u3000-\u303f\uff00-\uffef"


def _literal(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quotes_grammar(
    statements: Mapping[int, Sequence[str]],
    *,
    abstain_marker: str | None,
    chinese: bool = False,
    max_claims: int = MAX_CLAIMS,
) -> str:
    """The GBNF grammar of a reply quoting ``statements`` (source number → its statements);
    see the module docstring. Without ``abstain_marker`` the reply must quote: whether what it
    quotes answers is then for the checks to say."""
    usable = {n: [s for s in dict.fromkeys(q) if s and '"' not in s] for n, q in statements.items()}
    usable = {n: q for n, q in usable.items() if q}
    if not usable:
        msg = "a quotes grammar needs at least one source with a statement"
        raise ValueError(msg)
    if max_claims < 1:
        msg = f"max_claims must be at least 1, got {max_claims}"
        raise ValueError(msg)
    forbidden = r"\[\]<>\n\r\"" + ("" if chinese else _CJK_RANGE + _CJK_PUNCT)
    if chinese:
        text = f"text ::= [{_CJK_RANGE}] [^{forbidden}]{{0,{MAX_CLAIM_CHARS - 1}}} [。！？.!?]"
    else:
        text = f"text ::= [^{forbidden}]{{1,{MAX_CLAIM_CHARS}}} [.!?]"
    rules = [
        "root ::= "
        + (f"{_literal(abstain_marker)} | " if abstain_marker else "")
        + "claim ("
        + '"\\n" claim){0,'
        + f"{max_claims - 1}"
        + "}",
        "claim ::= (" + " | ".join(f"q{n}" for n in sorted(usable)) + ') " " text',
        text,
    ]
    for number in sorted(usable):
        quotes = " | ".join(_literal(q) for q in usable[number])
        rules.append(f'q{number} ::= "[{number}] \\"" ({quotes}) "\\""')
    return "\n".join(rules)


@dataclass(frozen=True)
class QuotedClaim:
    """One line of a reply: the source it cites, the words it quotes, and what it claims."""

    source: int
    quote: str
    text: str


_LINE_RE = re.compile(
    r"^\s*\[\s*(?P<source>\d+)\s*\]\s*[\"“「『](?P<quote>[^\"”」』\n]+)[\"”」』]\s*[:：\-–—]?\s*"
    r"(?P<text>.*?)\s*$"
)


def parse_line(line: str) -> QuotedClaim | None:
    """The claim of one reply line, or None when the line is not ``[n] "quote" claim``."""
    match = _LINE_RE.match(line)
    if match is None or not match.group("text"):
        return None
    return QuotedClaim(int(match.group("source")), match.group("quote").strip(), match["text"])


def split_lines(buffer: str) -> tuple[list[str], str]:
    """The complete lines of ``buffer`` and the unfinished rest."""
    *lines, rest = buffer.split("\n")
    return [line for line in lines if line.strip()], rest


def _pattern(quote: str) -> re.Pattern[str]:
    """The quote as a pattern that tolerates differences in white space and case, and what
    fencing (`generation.prompts.sanitize`) changed: look-alikes for angle brackets, " -"
    for a role word's colon."""
    pattern = ""
    for word in quote.split():
        if word == "-" and pattern:  # fencing wrote a role word's colon as " -" ("Answer -")
            pattern += r"\s*[-:]"
            continue
        escaped = re.escape(word).replace("‹", "[‹<]").replace("›", "[›>]")
        pattern += (r"\s+" if pattern else "") + escaped
    return re.compile(pattern, re.IGNORECASE)


def locate(quote: str, text: str) -> tuple[int, int] | None:
    """Where ``quote`` is in ``text`` (start, end), or None when it is not there verbatim."""
    if not quote.strip():
        return None
    match = _pattern(quote).search(text)
    return match.span() if match else None


def is_chinese(text: str) -> bool:
    """Whether a claim is written in Chinese: more Chinese characters than Latin letters."""
    cjk = sum(1 for c in text if has_cjk(c))
    latin = sum(1 for c in text if c.isascii() and c.isalpha())
    return cjk > 0 and cjk >= latin / 3


@dataclass(frozen=True)
class Claim:
    """One statement of an answer, the source numbers it cites and, for a checked claim, the
    words of its source that support it and where they are in the source's text."""

    text: str
    sources: tuple[int, ...]
    quote: str | None = None
    span: tuple[int, int] | None = None
    # Whether the claim is its quote, shown as a quote (the model's wording said more), and
    # then the model's words and why they were not kept (for evaluation, not for shoppers).
    quoted: bool = False
    model_text: str = ""
    reworded: str = ""


CITATION_RE = re.compile(r"\[\s*(\d+(?:\s*[,;，、]\s*\d+)*)\s*\]")
