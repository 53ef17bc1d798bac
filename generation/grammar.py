"""A decoding grammar that makes an answer a list of cited claims, citing given sources only.

`claims_grammar` writes a GBNF grammar (llama.cpp's grammar format) for the reply: either the
abstain marker alone, or one to ``max_claims`` claims, each a run of text followed by one to
``max_citations`` citations ``[n]`` whose numbers can only be those of the sources the model was
given. Under it an invented citation, a claim without a citation, markup and line breaks cannot
be generated at all: the sampler never offers those tokens. `parse_claims` reads such a reply
(or any reply) back into its claims; text after the last citation (a reply cut off by the token
limit) is not a claim.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

from generation.citations import CITATION_RE

MAX_CLAIMS = 6
MAX_CITATIONS = 3
# One claim's text: no brackets (only citations use them), no angle brackets (nothing that
# could render as markup), no line breaks; at most this many characters.
_CLAIM_CHARS = r"[^\[\]<>\n\r]"
MAX_CLAIM_CHARS = 300


def _literal(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def claims_grammar(
    numbers: Collection[int],
    *,
    abstain_marker: str,
    max_claims: int = MAX_CLAIMS,
    max_citations: int = MAX_CITATIONS,
) -> str:
    """The GBNF grammar of a reply citing only ``numbers`` (see the module docstring)."""
    if not numbers:
        msg = "a claims grammar needs at least one source number"
        raise ValueError(msg)
    if max_claims < 1 or max_citations < 1:
        msg = f"max_claims and max_citations must be at least 1, got {max_claims}, {max_citations}"
        raise ValueError(msg)
    # Longest numbers first, so that "10" is never read as "1" followed by "0".
    alternatives = " | ".join(
        _literal(str(n)) for n in sorted(set(numbers), key=lambda n: (-len(str(n)), n))
    )
    return "\n".join(
        [
            f"root ::= {_literal(abstain_marker)} | claim ("
            + '" " claim){0,'
            + f"{max_claims - 1}"
            + "}",
            "claim ::= text cites [.!?。！？]?",
            f"text ::= {_CLAIM_CHARS}{{1,{MAX_CLAIM_CHARS}}}",
            f'cites ::= " "? cite{{1,{max_citations}}}',
            'cite ::= "[" number "]"',
            f"number ::= {alternatives}",
        ]
    )


@dataclass(frozen=True)
class Claim:
    """One statement of an answer and the source numbers it cites."""

    text: str
    sources: tuple[int, ...]


_CLAIM_RE = re.compile(
    rf"(?P<text>[^\[\]]*?)\s*(?P<cites>(?:{CITATION_RE.pattern}\s*)+)(?P<end>[.!?。！？]?)"
)


def parse_claims(reply: str) -> tuple[list[Claim], str]:
    """The claims of ``reply`` in order, and the text left after the last citation.

    A claim is the text before a group of citations (its end punctuation kept); a group
    without text before it adds its numbers to the previous claim."""
    claims: list[Claim] = []
    end = 0
    for match in _CLAIM_RE.finditer(reply):
        text = (match.group("text").strip() + match.group("end")).strip()
        numbers = tuple(dict.fromkeys(int(n) for n in re.findall(r"\d+", match.group("cites"))))
        if not text.strip(".!?。！？ ") and claims:
            last = claims[-1]
            claims[-1] = Claim(last.text, tuple(dict.fromkeys(last.sources + numbers)))
        elif text:
            claims.append(Claim(text, numbers))
        end = match.end()
    return claims, reply[end:].strip()
