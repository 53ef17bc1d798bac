#!/usr/bin/env bash
# Set up, index the sample catalog and start the API on the embedded default (no servers).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# shellcheck disable=SC1091
. .venv/bin/activate
exec shopguide start "${1:-data/sample_catalog.jsonl}"
