#!/usr/bin/env bash
# Set up, start a real Elasticsearch and Redis on free loopback ports, run the whole test suite
# (unit, integration, and slow tests with the real models), and stop the servers, also on
# failure. Extra arguments go to pytest, e.g. `bash scripts/test.sh -m "not slow"`.
# SHOPGUIDE_NO_SERVICES=1 skips the servers (the integration tests are then skipped).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh all
# shellcheck disable=SC1091
. .venv/bin/activate
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
if [ "${SHOPGUIDE_NO_SERVICES:-}" != 1 ]; then
  trap 'bash scripts/services.sh stop' EXIT
  eval "$(bash scripts/services.sh start)"
fi
python -m pytest "$@"
