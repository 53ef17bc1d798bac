#!/usr/bin/env bash
# Set up, index the sample catalog and start the API on the embedded default (no servers).
# Search is served as soon as the index is ready. On a first run the local generator (llama.cpp,
# compiled from source, and its weights) is installed meanwhile in the background; until it is
# loaded the answer endpoints reply 503 with Retry-After, and /health says how far it is.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh core
if ! bash scripts/setup.sh installed generator; then
  echo "==> installing the local generator in the background (log: .venv/setup-generator.log);" \
    "search is served meanwhile"
  nohup bash scripts/setup.sh generator > .venv/setup-generator.log 2>&1 &
fi
# shellcheck disable=SC1091
. .venv/bin/activate
exec shopguide start "${1:-data/sample_catalog.jsonl}"
