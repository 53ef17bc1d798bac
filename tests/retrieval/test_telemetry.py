import os
import subprocess
import sys


def test_haystack_telemetry_is_off_unless_asked_for() -> None:
    env = {k: v for k, v in os.environ.items() if k != "HAYSTACK_TELEMETRY_ENABLED"}
    code = "import retrieval.search, haystack.telemetry._telemetry as t; print(t.telemetry)"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "None"
