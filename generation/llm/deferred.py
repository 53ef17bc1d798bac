"""A generator loaded in the background, so that everything that needs no model is served
meanwhile.

`DeferredLLM` builds and warms the real backend in a thread. While it cannot be loaded because
something is still missing (llama.cpp or the weights are being installed, a model server is not
up yet: a `GenerationError`), it tries again after a pause that doubles up to a limit; any other
error is tried a few times (a package caught half-installed), then reported as failed. Until the
model is ready, `stream` raises `GeneratorNotReady`, which says why and when to try again, and
`status()` tells health checks where loading stands.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from generation.llm.base import (
    LLM,
    ChatMessage,
    GenerationError,
    GenerationOptions,
    GeneratorNotReady,
)

__all__ = ["DeferredLLM", "LoadStatus"]

logger = logging.getLogger(__name__)

State = Literal["starting", "loading", "waiting", "ready", "failed", "closed"]


@dataclass(frozen=True)
class LoadStatus:
    """Where loading the generator stands."""

    state: State
    detail: str | None
    attempts: int
    # Seconds from the start of loading to the model being ready.
    ready_after_s: float | None


def _invalidate_import_caches() -> None:
    """`importlib.invalidate_caches`, which in Python 3.11 can raise KeyError when another
    thread imports at the same moment (both edit ``sys.path_importer_cache``): best effort,
    tried again once."""
    for _ in range(2):
        try:
            importlib.invalidate_caches()
            return
        except (KeyError, RuntimeError) as exc:
            logger.debug("import caches changed while being invalidated: %r", exc)


class DeferredLLM:
    """The `LLM` protocol over a backend that ``factory`` builds and warms in the background."""

    def __init__(
        self,
        factory: Callable[[], LLM],
        *,
        name: str,
        on_ready: Callable[[], None] | None = None,
        retry_s: float = 2.0,
        max_retry_s: float = 10.0,
        max_unexpected: int = 5,
    ) -> None:
        """``name``: the model's name, known before it loads (health reports, cache keys);
        ``on_ready``: run in the loader thread once the model is ready (priming a prompt cache),
        while requests are already served."""
        self._factory = factory
        self._name = name
        self.on_ready = on_ready
        self.retry_s = retry_s
        self.max_retry_s = max_retry_s
        self.max_unexpected = max_unexpected
        self._inner: LLM | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._status = LoadStatus("starting", None, 0, None)

    @property
    def name(self) -> str:
        """The model's name."""
        return self._name

    def warm_up(self) -> None:
        """Start loading in the background; idempotent, returns at once."""
        with self._lock:
            if self._thread is not None or self._stop.is_set():
                return
            self._thread = threading.Thread(target=self._load, name="generator-loader", daemon=True)
            self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the model is ready (True) or ``timeout`` seconds pass (False)."""
        return self._ready.wait(timeout)

    def status(self) -> LoadStatus:
        """Where loading stands."""
        return self._status

    def stream(
        self,
        messages: Sequence[ChatMessage],
        options: GenerationOptions,
        *,
        cancelled: Callable[[], bool] | None = None,
    ) -> Iterator[str]:
        """The loaded model's reply; `GeneratorNotReady` until it is loaded."""
        return self.check_ready().stream(messages, options, cancelled=cancelled)

    def check_ready(self) -> LLM:
        """The loaded model; raises `GeneratorNotReady`, saying why, until it is loaded."""
        inner = self._inner
        if inner is None:
            raise self._not_ready()
        return inner

    def close(self) -> None:
        """Stop loading and release the model."""
        self._stop.set()
        with self._lock:
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=30.0)
        with self._lock:
            inner, self._inner = self._inner, None
            self._status = LoadStatus("closed", None, self._status.attempts, None)
        if inner is not None:
            inner.close()

    def _not_ready(self) -> GeneratorNotReady:
        status = self._status
        if status.state == "failed":
            msg = f"the generator {self._name} could not be loaded: {status.detail}"
            return GeneratorNotReady(msg, retry_after_s=int(self.max_retry_s))
        why = f": {status.detail}" if status.detail else ""
        msg = f"the generator {self._name} is not ready yet ({status.state}{why})"
        retry = 10 if status.state in ("starting", "loading") else int(self.retry_s)
        return GeneratorNotReady(msg, retry_after_s=max(1, retry))

    def _load(self) -> None:
        started = time.monotonic()
        pause, unexpected, attempts, last_detail = self.retry_s, 0, 0, None
        while not self._stop.is_set():
            attempts += 1
            self._status = LoadStatus("loading", self._status.detail, attempts, None)
            if attempts > 1:
                _invalidate_import_caches()  # packages installed since the last attempt
            try:
                llm = self._factory()
                llm.warm_up()
            except GenerationError as exc:
                detail = str(exc)
            except Exception as exc:
                unexpected += 1
                detail = f"{type(exc).__name__}: {exc}"
                if unexpected >= self.max_unexpected:
                    logger.exception("the generator %s could not be loaded", self._name)
                    self._status = LoadStatus("failed", detail, attempts, None)
                    return
            else:
                self._ready_with(llm, attempts, time.monotonic() - started)
                return
            if detail != last_detail:  # the same reason is logged once
                logger.warning(
                    "the generator %s is not ready: %s (trying again every %.0f s at most)",
                    self._name,
                    detail,
                    self.max_retry_s,
                )
                last_detail = detail
            self._status = LoadStatus("waiting", detail, attempts, None)
            if self._stop.wait(pause):
                return
            pause = min(pause * 2, self.max_retry_s)

    def _ready_with(self, llm: LLM, attempts: int, took_s: float) -> None:
        with self._lock:
            if self._stop.is_set():
                llm.close()
                return
            self._inner = llm
            self._status = LoadStatus("ready", None, attempts, round(took_s, 1))
        self._ready.set()
        logger.info("the generator %s is ready after %.1f s", self._name, took_s)
        if self.on_ready is not None:
            try:
                self.on_ready()
            except Exception:
                logger.exception("preparing the generator %s failed", self._name)
