"""Tests of the llama.cpp backend; the ``slow`` ones run the real SmolLM2-135M GGUF."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from generation.llm.base import (
    LLM,
    ChatMessage,
    GenerationError,
    GenerationOptions,
    GenerationTimeout,
    generate,
)
from generation.llm.llama_cpp import EXCLUDED_CPU_VARIANTS, LlamaCppLLM, best_cpu_variant

PROMPT = [
    ChatMessage("system", "You are a helpful shopping assistant."),
    ChatMessage("user", "Name three things to look for in running shoes."),
]


def _variant_folder() -> Path:
    llama_cpp = pytest.importorskip("llama_cpp")
    package = Path(llama_cpp.__file__).parent
    for folder in (package / "lib", package.parent / "bin"):
        if any(folder.glob("libggml-cpu-*.so")):
            return folder
    pytest.skip("llama.cpp was built with its CPU backend linked in")


class TestCpuVariant:
    def test_the_best_variant_this_cpu_runs_and_never_an_excluded_one(self) -> None:
        folder = _variant_folder()
        chosen = best_cpu_variant(folder)
        assert chosen is not None and chosen.parent == folder
        assert chosen.stem.removeprefix("libggml-cpu-") not in EXCLUDED_CPU_VARIANTS
        # x64 (plain x86-64) runs on any such CPU: with every other variant out, it is chosen
        others = frozenset(p.stem.removeprefix("libggml-cpu-") for p in folder.glob("*.so")) - {
            "x64"
        }
        if (folder / "libggml-cpu-x64.so").exists():
            assert best_cpu_variant(folder, others) == folder / "libggml-cpu-x64.so"

    def test_no_variant_when_all_are_excluded_or_none_is_there(self, tmp_path: Path) -> None:
        folder = _variant_folder()
        every = frozenset(p.stem.removeprefix("libggml-cpu-") for p in folder.glob("*.so"))
        assert best_cpu_variant(folder, every) is None
        assert best_cpu_variant(tmp_path) is None


class TestLlamaCppLLM:
    def test_is_an_llm_named_after_the_file(self) -> None:
        llm = LlamaCppLLM("/models/some-model.Q4_K_M.gguf")
        assert isinstance(llm, LLM)
        assert llm.name == "some-model.Q4_K_M.gguf"

    def test_missing_file(self, tmp_path: Path) -> None:
        path = tmp_path / "absent.gguf"
        with pytest.raises(GenerationError, match=str(path)):
            LlamaCppLLM(str(path)).warm_up()

    def test_bad_file(self, tmp_path: Path) -> None:
        path = tmp_path / "junk.gguf"
        path.write_bytes(b"not a gguf file" * 100)
        with pytest.raises(GenerationError, match=str(path)):
            LlamaCppLLM(str(path)).warm_up()

    @pytest.mark.slow
    def test_streams_text(self, smollm2: LlamaCppLLM) -> None:
        pieces = list(smollm2.stream(PROMPT, GenerationOptions(max_tokens=24)))
        assert pieces
        assert all(isinstance(piece, str) for piece in pieces)
        assert "".join(pieces).strip()

    @pytest.mark.slow
    def test_max_tokens(self, smollm2: LlamaCppLLM) -> None:
        reply = generate(smollm2, PROMPT, GenerationOptions(max_tokens=5))
        assert smollm2._llama is not None
        assert len(smollm2._llama.tokenize(reply.encode(), add_bos=False)) <= 6

    @pytest.mark.slow
    def test_greedy_is_repeatable(self, smollm2: LlamaCppLLM) -> None:
        options = GenerationOptions(max_tokens=12, temperature=0.0)
        assert generate(smollm2, PROMPT, options) == generate(smollm2, PROMPT, options)

    @pytest.mark.slow
    def test_cancelled_stops_early(self, smollm2: LlamaCppLLM) -> None:
        pieces: list[str] = []
        options = GenerationOptions(max_tokens=64)
        for piece in smollm2.stream(PROMPT, options, cancelled=lambda: len(pieces) >= 2):
            pieces.append(piece)
        assert len(pieces) == 2

    @pytest.mark.slow
    def test_deadline(self, smollm2: LlamaCppLLM) -> None:
        with pytest.raises(GenerationTimeout):
            generate(smollm2, PROMPT, GenerationOptions(max_tokens=64, timeout_s=0.0))

    @pytest.mark.slow
    def test_concurrent_calls_are_serialised(self, smollm2: LlamaCppLLM) -> None:
        options = GenerationOptions(max_tokens=8)
        expected = generate(smollm2, PROMPT, options)
        replies: list[str] = []
        threads = [
            threading.Thread(target=lambda: replies.append(generate(smollm2, PROMPT, options)))
            for _ in range(2)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert replies == [expected, expected]


@pytest.mark.slow
def test_the_prompt_cache_stays_within_its_capacity() -> None:
    """llama-cpp-python's saved states would copy a batch x vocabulary logits array that its
    own cache does not count; ours leaves it out (it is never read without logits_all) and
    counts everything else, so many different prompts cannot grow the process."""
    from generation.llm.gguf import PACKAGED_MODELS, part_files

    [path] = part_files(PACKAGED_MODELS["smollm2-135m-instruct-q4_1"])
    capacity = 4 << 20  # a few states of SmolLM2 (the KV cache of their tokens)
    llm = LlamaCppLLM(str(path), n_ctx=512, n_threads=2, prompt_cache_bytes=capacity)
    try:
        llm.warm_up()
        for i in range(6):
            prompt = [ChatMessage("user", f"Question {i}: name {i + 2} colours.")]
            generate(llm, prompt, GenerationOptions(max_tokens=2))
        assert llm._llama is not None
        cache = llm._llama.cache
        states = list(cache.cache_state.values())
        held = sum(s.llama_state_size + s.scores.nbytes + s.input_ids.nbytes for s in states)
        assert states and held <= capacity
        assert all(s.scores.shape[0] == 1 for s in states)  # no batch x vocabulary copy
        assert cache.cache_size == held
        # A prompt answered from a saved state decodes as the first time.
        again = [ChatMessage("user", "Question 5: name 7 colours.")]
        first = generate(llm, again, GenerationOptions(max_tokens=8))
        assert generate(llm, again, GenerationOptions(max_tokens=8)) == first
    finally:
        llm.close()
