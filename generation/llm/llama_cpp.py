"""A local GGUF model run in-process by llama.cpp (through llama-cpp-python).

One llama context is not thread-safe, so calls are serialised by a lock: a second request
waits for the first to finish (the wait counts against its own ``timeout_s``). The deadline is
checked between streamed pieces, so a call can overrun it by the time of one token (or of the
prompt's prefill, which cannot be interrupted).
"""

from __future__ import annotations

import _ctypes
import ctypes
import functools
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from generation.llm.base import ChatMessage, GenerationError, GenerationOptions, GenerationTimeout

if TYPE_CHECKING:
    from llama_cpp import Llama, LlamaGrammar

__all__ = ["LlamaCppLLM"]

logger = logging.getLogger(__name__)

_CLOSE_WAIT_S = 30.0


def _bounded_ram_cache(capacity_bytes: int) -> Any:
    """llama.cpp's prompt cache, bounded by what its states really hold.

    `LlamaRAMCache` counts only the model's own state (the KV cache, tens of MB), not the
    logits array each saved state copies (batch x vocabulary floats: 311 MB for Qwen2.5), so a
    "512 MB" cache grew the process past 12 GB in a long benchmark. Counting the arrays too
    keeps it within ``capacity_bytes``.
    """
    from llama_cpp import LlamaRAMCache

    class BoundedRAMCache(LlamaRAMCache):  # type: ignore[misc]
        @property
        def cache_size(self) -> int:
            return sum(
                state.llama_state_size + state.scores.nbytes + state.input_ids.nbytes
                for state in self.cache_state.values()
            )

    return BoundedRAMCache(capacity_bytes=capacity_bytes)


# CPU variants never chosen: Sapphire Rapids' build multiplies on AMX tiles, and under some
# hypervisors that advertise AMX (cpuid, /proc/cpuinfo, and a granted arch_prctl permission)
# its first `tilezero` is an illegal instruction that kills the process; measured on a 2-core
# Xeon VM, where every other variant, AVX-512 FP16 and BF16 included, ran.
EXCLUDED_CPU_VARIANTS = frozenset({"sapphirerapids"})


def best_cpu_variant(folder: Path, excluded: frozenset[str] = EXCLUDED_CPU_VARIANTS) -> Path | None:
    """The CPU backend library in ``folder`` that scores best on this CPU, ``excluded`` left
    out: each variant reports its own score (0: the CPU lacks an instruction it needs), as
    llama.cpp's own `ggml_backend_load_best` asks them."""
    best: tuple[int, Path] | None = None
    for path in sorted(folder.glob("libggml-cpu-*.so")):
        if path.stem.removeprefix("libggml-cpu-") in excluded:
            continue
        try:
            variant = ctypes.CDLL(str(path))
            score_of = variant.ggml_backend_score
        except (OSError, AttributeError):
            continue
        score_of.restype = ctypes.c_int
        score = int(score_of())
        _ctypes.dlclose(variant._handle)  # loaded again, once, by the one chosen
        if score > 0 and (best is None or score > best[0]):
            best = (score, path)
    return best[1] if best else None


@functools.cache
def load_cpu_backends() -> list[str]:
    """Load llama.cpp's CPU backend when it was built to choose one at run time.

    Built with ``GGML_BACKEND_DL=ON GGML_CPU_ALL_VARIANTS=ON`` (as `scripts/setup.sh` builds
    it), llama.cpp holds one CPU backend per instruction-set level (x64, SSE4.2, Haswell's
    AVX2, Skylake-X's and Ice Lake's AVX-512, …) as separate libraries and loads none until
    asked; the best variant the running CPU supports is loaded (`best_cpu_variant`, without
    `EXCLUDED_CPU_VARIANTS`): one build that is portable and fast on every x86-64 CPU. A build
    with its backend linked in has it registered already, and this does nothing. Returns the
    devices' descriptions."""
    from llama_cpp import _ggml

    lib_dir = Path(_ggml.libggml_base_path)
    # The copy libllama links to by its soname: a wheel cannot hold symbolic links, so
    # libggml.so and libggml.so.0 are two files, two libraries and two backend registries.
    sonames = sorted(lib_dir.glob("libggml.so.[0-9]*"), key=lambda p: len(p.name))
    lib = ctypes.CDLL(str(sonames[0])) if sonames else _ggml.libggml
    lib.ggml_backend_reg_count.restype = ctypes.c_size_t
    lib.ggml_backend_load.restype = ctypes.c_void_p
    lib.ggml_backend_load.argtypes = [ctypes.c_char_p]
    # The wheel puts the variants in its lib folder or, as llama-cpp-python 0.3 installs
    # them, in a bin folder beside the package.
    for folder in (lib_dir, lib_dir.parent.parent / "bin", Path(sys.prefix) / "bin"):
        if lib.ggml_backend_reg_count() > 0:
            break
        variant = best_cpu_variant(folder)
        if variant is not None:
            lib.ggml_backend_load(str(variant).encode())
            logger.info("llama.cpp CPU variant: %s", variant.name)
    lib.ggml_backend_dev_count.restype = ctypes.c_size_t
    lib.ggml_backend_dev_get.restype = ctypes.c_void_p
    lib.ggml_backend_dev_get.argtypes = [ctypes.c_size_t]
    lib.ggml_backend_dev_description.restype = ctypes.c_char_p
    lib.ggml_backend_dev_description.argtypes = [ctypes.c_void_p]
    devices = [
        lib.ggml_backend_dev_description(lib.ggml_backend_dev_get(i)).decode(errors="replace")
        for i in range(lib.ggml_backend_dev_count())
    ]
    logger.info("llama.cpp devices: %s", "; ".join(devices) or "none")
    return devices


def _compact_state_llama() -> type[Llama]:
    """`Llama`, with saved states that leave out the logits array.

    Without ``logits_all`` llama-cpp-python never writes its ``scores`` array (sampling runs
    inside llama.cpp), yet each saved state copies it (batch x vocabulary floats: 311 MB of
    zeros for Qwen2.5) and loading a state writes it back, making those pages resident. A
    one-row stand-in while the library saves or loads a state keeps both out. Measured with
    Qwen2.5 1.5B after five prompts: 2.56 GB resident before, 1.96 GB now, and no growth with
    the number of cached prompts (five states take 22 MB instead of 434 MB).
    """
    from llama_cpp import Llama

    class CompactStateLlama(Llama):  # type: ignore[misc]
        def _with_one_row(self, action: Callable[[], Any]) -> Any:
            if self._logits_all:
                return action()
            scores, self.scores = self.scores, np.zeros((1, self._n_vocab), dtype=np.single)
            try:
                return action()
            finally:
                self.scores = scores

        def save_state(self) -> Any:
            return self._with_one_row(super().save_state)

        def load_state(self, state: Any) -> None:
            self._with_one_row(lambda: super(CompactStateLlama, self).load_state(state))

    return CompactStateLlama


class LlamaCppLLM:
    """The `LLM` protocol over a local GGUF file, loaded lazily by `warm_up`."""

    def __init__(
        self,
        model_path: str,
        *,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        chat_format: str | None = None,
        seed: int = 0,
        prompt_cache_bytes: int = 256 << 20,
    ) -> None:
        self.model_path = model_path
        self.prompt_cache_bytes = prompt_cache_bytes
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.chat_format = chat_format
        self.seed = seed
        self._llama: Llama | None = None
        self._load_lock = threading.Lock()
        self._run_lock = threading.Lock()

    @property
    def name(self) -> str:
        """The model's file name."""
        return Path(self.model_path).name

    def warm_up(self) -> None:
        """Load the model; idempotent. Raises `GenerationError` naming the path on failure."""
        with self._load_lock:
            if self._llama is not None:
                return
            path = Path(self.model_path)
            if not path.is_file():
                msg = f"cannot load model {self.model_path}: no such file"
                raise GenerationError(msg)
            try:
                llama_class = _compact_state_llama()
                if not load_cpu_backends():
                    msg = f"cannot load model {self.model_path}: llama.cpp has no CPU backend"
                    raise GenerationError(msg)
            except ImportError as exc:
                msg = f"cannot load model {self.model_path}: llama-cpp-python is not installed"
                raise GenerationError(msg) from exc
            started = time.perf_counter()
            try:
                self._llama = llama_class(
                    model_path=str(path),
                    n_ctx=self.n_ctx,
                    n_threads=self.n_threads,
                    chat_format=self.chat_format,
                    seed=self.seed,
                    verbose=False,
                )
            except Exception as exc:
                msg = f"cannot load model {self.model_path}: {exc}"
                raise GenerationError(msg) from exc
            if self.prompt_cache_bytes > 0:
                # Keeps the model state after each prompt, so that a prompt starting like an
                # earlier one (the same instructions) skips re-reading that prefix.
                self._llama.set_cache(_bounded_ram_cache(self.prompt_cache_bytes))
            logger.info("loaded %s in %.1f s", path.name, time.perf_counter() - started)

    def stream(
        self,
        messages: Sequence[ChatMessage],
        options: GenerationOptions,
        *,
        cancelled: Callable[[], bool] | None = None,
    ) -> Iterator[str]:
        """Yield the reply piece by piece; see `LLM.stream`."""
        deadline = time.monotonic() + options.timeout_s
        self.warm_up()
        if not self._run_lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            msg = f"{self.name}: still busy with another request after {options.timeout_s:g} s"
            raise GenerationTimeout(msg)
        try:
            yield from self._generate(messages, options, deadline, cancelled)
        finally:
            self._run_lock.release()

    def _generate(
        self,
        messages: Sequence[ChatMessage],
        options: GenerationOptions,
        deadline: float,
        cancelled: Callable[[], bool] | None,
    ) -> Iterator[str]:
        llama = self._llama
        if llama is None:
            msg = f"model {self.model_path} was closed"
            raise GenerationError(msg)
        if cancelled is not None and cancelled():
            return
        try:
            chunks = cast(
                "Iterator[dict[str, Any]]",
                llama.create_chat_completion(
                    messages=[{"role": m.role, "content": m.content} for m in messages],  # type: ignore[misc]
                    max_tokens=options.max_tokens,
                    temperature=options.temperature,
                    stop=list(options.stop),
                    seed=self.seed,
                    stream=True,
                    grammar=self._grammar(options.grammar),
                ),
            )
        except Exception as exc:
            msg = f"{self.name} failed: {exc}"
            raise GenerationError(msg) from exc
        try:
            while True:
                try:
                    chunk = next(chunks)
                except StopIteration:
                    return
                except Exception as exc:
                    msg = f"{self.name} failed: {exc}"
                    raise GenerationError(msg) from exc
                if cancelled is not None and cancelled():
                    return
                if time.monotonic() > deadline:
                    msg = f"{self.name} gave no complete answer within {options.timeout_s:g} s"
                    raise GenerationTimeout(msg)
                choices = chunk.get("choices") or [{}]
                piece = choices[0].get("delta", {}).get("content")
                if piece:
                    yield piece
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()

    @staticmethod
    @functools.lru_cache(maxsize=64)
    def _grammar(text: str | None) -> LlamaGrammar | None:
        """The parsed grammar (parsed once per distinct text), or None."""
        if text is None:
            return None
        from llama_cpp import LlamaGrammar

        try:
            return LlamaGrammar.from_string(text, verbose=False)
        except ValueError as exc:
            msg = f"invalid decoding grammar: {exc}"
            raise GenerationError(msg) from exc

    def close(self) -> None:
        """Free the model; a later call loads it again."""
        with self._load_lock:
            if not self._run_lock.acquire(timeout=_CLOSE_WAIT_S):
                logger.warning("%s is still generating; not closing it", self.name)
                return
            try:
                llama, self._llama = self._llama, None
            finally:
                self._run_lock.release()
        if llama is not None:
            llama.close()
