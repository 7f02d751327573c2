#!/usr/bin/env bash
# Install everything (scripts/setup.sh) and run the whole test suite.
# The type checker runs first (mypy on toonvision_live, configured in pyproject.toml), then pytest.
# The tests start their own X screen (Xvfb) and compositor (xcompmgr).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m mypy
exec .venv/bin/python -m pytest "$@"
