#!/usr/bin/env bash
# Set up .venv if needed, then run the whole test suite on the CPU. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES-}
exec .venv/bin/python -m pytest "$@"
