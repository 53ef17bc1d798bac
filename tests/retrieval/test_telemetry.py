import os
import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "entry",
    [
        "retrieval.search",
        "app.main",
        "app.cli",
        "benchmarks.relevance",
        "generation.answers",
        "training.adapt",
        "indexer.indexer",
    ],
)
def test_haystack_telemetry_is_off_unless_asked_for(entry: str) -> None:
    """Whichever of our modules loads first, Haystack finds its telemetry switched off (it
    reads the variable once, when it is imported)."""
    env = {k: v for k, v in os.environ.items() if k != "HAYSTACK_TELEMETRY_ENABLED"}
    code = f"import {entry}, haystack.telemetry._telemetry as t; print(t.telemetry)"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "None"
