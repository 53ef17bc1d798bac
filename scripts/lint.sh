#!/usr/bin/env bash
# ruff (lint and format check) and mypy over the project.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck disable=SC1091
. .venv/bin/activate
ruff check .
ruff format --check .
mypy
