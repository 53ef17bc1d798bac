"""Citations: find them in a model's answer, drop those that point to no given source.

A citation is a bracketed list of source numbers, ``[2]`` or ``[1, 3]``. A number that was not
given to the model is removed and counted; a sentence whose every citation was invalid is
dropped (its claim came from nowhere); an answer left with no valid citation is an abstention.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

CITATION_RE = re.compile(r"\[\s*(\d+(?:\s*[,;，、]\s*\d+)*)\s*\]")
_SENTENCE_RE = re.compile(r"[^.!?。！？\n]*(?:[.!?。！？]+|\n|$)(?:\s*\[[^\]\n]*\])*\s*")


@dataclass(frozen=True)
class CheckedAnswer:
    """The answer with only valid citations, and what was removed."""

    text: str
    cited: list[int]
    dropped_citations: int
    dropped_sentences: int

    @property
    def supported(self) -> bool:
        """True when at least one valid citation remains."""
        return bool(self.cited)


def _numbers(marker: str) -> list[int]:
    return [int(n) for n in re.findall(r"\d+", marker)]


def _rewrite(sentence: str, valid: Collection[int]) -> tuple[str, list[int], int, bool]:
    """The sentence with invalid numbers removed; (text, kept, dropped, had any citation)."""
    kept: list[int] = []
    dropped = 0
    had = False

    def replace(match: re.Match[str]) -> str:
        nonlocal dropped, had
        had = True
        numbers = _numbers(match.group(1))
        good = [n for n in numbers if n in valid]
        dropped += len(numbers) - len(good)
        kept.extend(good)
        return "".join(f"[{n}]" for n in dict.fromkeys(good))

    return CITATION_RE.sub(replace, sentence), kept, dropped, had


def check_citations(answer: str, valid: Collection[int]) -> CheckedAnswer:
    """Keep the citations in ``valid``; drop sentences that cited only invalid sources."""
    pieces: list[str] = []
    cited: list[int] = []
    dropped_citations = 0
    dropped_sentences = 0
    for match in _SENTENCE_RE.finditer(answer):
        sentence = match.group()
        if not sentence:
            continue
        text, kept, dropped, had = _rewrite(sentence, valid)
        dropped_citations += dropped
        if had and not kept:
            dropped_sentences += 1
            continue
        cited.extend(kept)
        pieces.append(text)
    text = re.sub(r"[ \t]+([.,!?。，！？])", r"\1", "".join(pieces))
    text = re.sub(r"[ \t]{2,}", " ", text).strip()
    return CheckedAnswer(
        text=text,
        cited=sorted(set(cited)),
        dropped_citations=dropped_citations,
        dropped_sentences=dropped_sentences,
    )


class StreamingCitationFilter:
    """Passes streamed text through, holding back each ``[...]`` until it closes so that an
    invalid citation never reaches the client."""

    _MAX_MARKER = 24

    def __init__(self, valid: Collection[int]) -> None:
        self.valid = valid
        self._held = ""

    def feed(self, piece: str) -> str:
        """The part of the text so far that is safe to send."""
        out: list[str] = []
        for char in piece:
            if self._held:
                self._held += char
                if char == "]":
                    out.append(self._release())
                elif len(self._held) > self._MAX_MARKER or char in "\n[":
                    held, self._held = self._held, ""
                    if held.endswith("["):
                        out.append(held[:-1])
                        self._held = "["
                    else:
                        out.append(held)
            elif char == "[":
                self._held = char
            else:
                out.append(char)
        return "".join(out)

    def _release(self) -> str:
        held, self._held = self._held, ""
        match = CITATION_RE.fullmatch(held)
        if match is None:
            return held
        good = [n for n in _numbers(match.group(1)) if n in self.valid]
        return "".join(f"[{n}]" for n in dict.fromkeys(good))

    def flush(self) -> str:
        """Whatever is still held at the end of the stream."""
        held, self._held = self._held, ""
        return held
