"""Canned model replies in the answer format (`generation.quotes`), written against the
sources a prompt shows.

A reply line ``[?] "quote" claim`` names no source number: `QuotingLLM` puts in the number of
the source whose shown text (else its title) holds the quote, as the model would read it off
the prompt. Questions about one product number their passages by relevance, so a test cannot
know the numbers before the call; a line with a number keeps it (a wrong citation on purpose).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence

from generation.llm.base import ChatMessage, GenerationOptions
from generation.llm.fake import RecordingLLM
from generation.quotes import locate

__all__ = ["BlockingLLM", "QuotingLLM", "quoting", "source_number", "sources_in"]

_HEADER = re.compile(r"^\[(\d+)\] \([^)]*\) (.*)$")
_UNNUMBERED = re.compile(r'^(\s*)\[\?\](\s*["“](?P<quote>[^"”\n]+)["”])', re.MULTILINE)


def sources_in(prompt: str) -> dict[int, tuple[str, str]]:
    """The sources a prompt shows: number → (title, shown text)."""
    block = prompt[prompt.index("<sources>") : prompt.index("</sources>")]
    found: dict[int, tuple[str, str]] = {}
    lines = block.splitlines()
    product = next(
        (line[len("Product: ") :] for line in lines if line.startswith("Product: ")), None
    )
    for i, line in enumerate(lines):
        header = _HEADER.match(line)
        if header is None:
            continue
        if product is not None:  # one product's passages: "[n] (kind) text"
            found[int(header[1])] = (product, header[2])
        else:  # products: "[n] (kind) title", then the text indented
            text = lines[i + 1].strip() if i + 1 < len(lines) else ""
            found[int(header[1])] = (header[2], text)
    return found


def source_number(prompt: str, quote: str) -> int:
    """The number of the source whose shown text (else title) holds ``quote``."""
    shown = sources_in(prompt)
    for number, (_, text) in shown.items():
        if locate(quote, text) is not None:
            return number
    for number, (title, _) in shown.items():
        if locate(quote, title) is not None:
            return number
    msg = f"no source in the prompt holds {quote!r}: {shown}"
    raise LookupError(msg)


def quoting(reply: str, prompt: str) -> str:
    """``reply`` with each ``[?]`` replaced by the number of the source holding its quote."""
    return _UNNUMBERED.sub(lambda m: f"{m[1]}[{source_number(prompt, m['quote'])}]{m[2]}", reply)


class QuotingLLM(RecordingLLM):
    """A `RecordingLLM` whose replies may leave source numbers to the prompt (``[?]``)."""

    def stream(
        self,
        messages: Sequence[ChatMessage],
        options: GenerationOptions,
        *,
        cancelled: Callable[[], bool] | None = None,
    ) -> Iterator[str]:
        """The next reply, its ``[?]`` numbered from the prompt, in pieces."""
        prompt = messages[-1].content if messages else ""
        if "<sources>" in prompt and self.fail_with is None:
            if self.replies:
                self.replies[0] = quoting(self.replies[0], prompt)
            elif self.default is not None:
                self.replies.append(quoting(self.default, prompt))
        yield from super().stream(messages, options, cancelled=cancelled)


class BlockingLLM(QuotingLLM):
    """A `QuotingLLM` that holds the generator: each reply starts once ``release`` is set.
    ``started`` is set when a reply was asked for."""

    def __init__(
        self, replies: Iterable[str] = (), *, default: str | None = None, chunk: int = 4
    ) -> None:
        super().__init__(replies, default=default, chunk=chunk)
        self.started = threading.Event()
        self.release = threading.Event()

    def stream(
        self,
        messages: Sequence[ChatMessage],
        options: GenerationOptions,
        *,
        cancelled: Callable[[], bool] | None = None,
    ) -> Iterator[str]:
        """Wait for ``release`` (at most 30 s), then stream the next reply."""
        self.started.set()
        self.release.wait(30)
        yield from super().stream(messages, options, cancelled=cancelled)
