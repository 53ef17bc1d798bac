"""Fixtures shared by the generation tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from generation.llm.gguf import PACKAGED_MODELS, part_files
from generation.llm.llama_cpp import LlamaCppLLM


@pytest.fixture(scope="session")
def smollm2() -> Iterator[LlamaCppLLM]:
    """The real SmolLM2-135M GGUF on llama.cpp (installed from PyPI), loaded once."""
    [path] = part_files(PACKAGED_MODELS["smollm2-135m-instruct-q4_1"])
    llm = LlamaCppLLM(str(path), n_ctx=1024, n_threads=2)
    llm.warm_up()
    yield llm
    llm.close()
