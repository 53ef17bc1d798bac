#!/usr/bin/env bash
# ruff (lint and format check), mypy, and the import contracts in pyproject.toml (the
# direction of dependencies: benchmarks -> app -> training -> generation | personalization |
# indexer -> retrieval).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck disable=SC1091
. .venv/bin/activate
ruff check .
ruff format --check .
mypy
lint-imports --no-logo
