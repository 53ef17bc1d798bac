"""A recording fake `LLM` for tests of the logic around the model."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence

from generation.llm.base import ChatMessage, GenerationError, GenerationOptions

__all__ = ["RecordingLLM"]


class RecordingLLM:
    """Streams canned replies in order and records every prompt it is given.

    Each `stream` call, once iterated (it is lazy, like the real backends), records its
    messages in ``calls`` and its options in ``options``, then takes the next reply from
    ``replies`` (``default`` once they are used up) and streams it in pieces of ``chunk``
    characters. With no reply left and no default it raises `GenerationError`; with
    ``fail_with`` set it raises that.
    """

    def __init__(
        self,
        replies: Iterable[str] = (),
        *,
        default: str | None = None,
        chunk: int = 4,
        fail_with: Exception | None = None,
    ) -> None:
        if chunk < 1:
            msg = f"chunk must be at least 1, got {chunk}"
            raise ValueError(msg)
        self.replies: deque[str] = deque(replies)
        self.default = default
        self.chunk = chunk
        self.fail_with = fail_with
        self.calls: list[list[ChatMessage]] = []
        self.options: list[GenerationOptions] = []
        self.warmed_up = False
        self.closed = False

    @property
    def name(self) -> str:
        """A fixed name."""
        return "recording-fake"

    def warm_up(self) -> None:
        """Mark the fake as warmed up."""
        self.warmed_up = True

    def stream(
        self,
        messages: Sequence[ChatMessage],
        options: GenerationOptions,
        *,
        cancelled: Callable[[], bool] | None = None,
    ) -> Iterator[str]:
        """Record the call and yield the next canned reply in pieces."""
        self.calls.append(list(messages))
        self.options.append(options)
        if self.fail_with is not None:
            raise self.fail_with
        if self.replies:
            reply = self.replies.popleft()
        elif self.default is not None:
            reply = self.default
        else:
            msg = f"RecordingLLM has no reply left for call {len(self.calls)}"
            raise GenerationError(msg)
        for start in range(0, len(reply), self.chunk):
            if cancelled is not None and cancelled():
                return
            yield reply[start : start + self.chunk]

    @property
    def last_prompt(self) -> str:
        """The content of the last message of the last call ("" before any call)."""
        return self.calls[-1][-1].content if self.calls and self.calls[-1] else ""

    def close(self) -> None:
        """Mark the fake as closed."""
        self.closed = True
