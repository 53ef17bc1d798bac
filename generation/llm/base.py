"""The interface every LLM backend implements, and the errors it raises.

Errors: `GenerationError` (the model failed or is unreachable) with the subclasses
`GenerationTimeout` (no answer within the deadline) and `GeneratorNotReady` (still being
installed or loaded: try again later). The API maps them to a 5xx with a reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable


@dataclass(frozen=True)
class ChatMessage:
    """One turn of a chat prompt."""

    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True)
class GenerationOptions:
    """Decoding settings for one call."""

    max_tokens: int = 384
    temperature: float = 0.0
    stop: tuple[str, ...] = ()
    timeout_s: float = 120.0
    # A GBNF grammar the reply must follow (`generation.grammar`). Backends that can constrain
    # decoding apply it; the others ignore it, and their reply is validated afterwards.
    grammar: str | None = None


class GenerationError(RuntimeError):
    """The model failed, could not be loaded, or could not be reached."""


class GenerationTimeout(GenerationError):
    """The model gave no complete answer within the deadline."""


class GeneratorNotReady(GenerationError):
    """The model is not loaded yet (being installed, assembled or loaded); ``retry_after_s``
    says when asking again is worth it."""

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@runtime_checkable
class LLM(Protocol):
    """A chat model that streams its reply as text pieces."""

    @property
    def name(self) -> str:
        """A stable name of the model (used in health reports and cache keys)."""
        ...

    def warm_up(self) -> None:
        """Load the model or open the connection; idempotent."""
        ...

    def stream(
        self,
        messages: Sequence[ChatMessage],
        options: GenerationOptions,
        *,
        cancelled: Callable[[], bool] | None = None,
    ) -> Iterator[str]:
        """Yield the reply piece by piece; stop early when ``cancelled()`` turns true.

        Raises `GenerationError` on failure and `GenerationTimeout` past ``options.timeout_s``.
        """
        ...

    def close(self) -> None:
        """Release the model or connection."""
        ...


def generate(llm: LLM, messages: Sequence[ChatMessage], options: GenerationOptions) -> str:
    """The whole reply of ``llm`` as one string."""
    return "".join(llm.stream(messages, options))
