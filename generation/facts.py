"""Numbers in claims, and claims as answer text.

`numbers_in` reads the numeric values a text states (compared as values: ``129`` is
``129.00``, ``1,299`` is 1299), leaving out what only points: citation markers, list numbers,
"option 2". The claim checker (`generation.support`) requires every number of a claim to be
in its quote. `render_claims` writes claims (a comparison's rows) as answer text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from generation.quotes import CITATION_RE, Claim
from retrieval.text import has_cjk

_NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
# Not inside a word ("Q30"), but a number between Chinese characters is one ("续航约50小时").
_NUMBER_RE = re.compile(rf"(?<![A-Za-z0-9_.])(?:{_NUMBER})")


def _value(text: str) -> float:
    return float(text.replace(",", ""))


# Numbers that point, not state: a list's "1." or "2)" at the start, "option 2", "source 3".
_POINTERS = re.compile(
    r"^\s*(?:\(?\d{1,2}[.)]|#\d{1,2})\s+"
    r"|(?<![\w])(?:option|source|product|item|choice|pick|number|no\.|#)\s*\d{1,2}(?![\d.])",
    re.IGNORECASE,
)


def numbers_in(text: str) -> set[float]:
    """The numeric values written in ``text``; citation markers, list numbers ("1.") and
    references ("option 2") left out."""
    text = _POINTERS.sub(" ", CITATION_RE.sub(" ", text))
    return {_value(m.group()) for m in _NUMBER_RE.finditer(text)}


def render_claims(claims: Sequence[Claim]) -> str:
    """The answer text of ``claims``: each claim's citations before its end punctuation."""
    parts = []
    for claim in claims:
        cites = "".join(f"[{n}]" for n in claim.sources)
        text = claim.text
        end = text[-1] if text and text[-1] in ".!?。！？" else ""
        body = text[: len(text) - len(end)].rstrip()
        space = "" if body and has_cjk(body[-1]) else " "
        parts.append(f"{body}{space}{cites}{end}")
    return " ".join(parts)
