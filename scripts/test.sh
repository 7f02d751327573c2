#!/usr/bin/env bash
# Install everything (scripts/setup.sh) and run the whole test suite.
# The tests start their own X screen (Xvfb) and compositor (xcompmgr).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
