#!/usr/bin/env bash
# Install everything (scripts/setup.sh) and run the whole test suite.
# The type checker runs first (mypy on toonvision_live, configured in pyproject.toml), then the linter (ruff, same
# file), then pytest.
# The tests start their own X screen (Xvfb) and compositor (xcompmgr).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The tests' files (pytest's tmp_path) go to memory where there is a tmpfs: the product syncs every file it
# writes to the disk, which proves nothing a test checks and costs ~5 ms a file on a busy disk (hundreds
# of crops per dataset test).  Only the failed tests' folders are kept (pyproject: tmp_path_retention_policy).
if [ -z "${PYTEST_DEBUG_TEMPROOT:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
  export PYTEST_DEBUG_TEMPROOT=/dev/shm
fi
# mypy's cache outside the checkout, so a fresh clone (CI) reuses it: mypy checks each cached module against
# its file's hash, so a cache from another clone or venv is only used where the sources are the same.
export MYPY_CACHE_DIR="${MYPY_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/toonvision-live/mypy}"
.venv/bin/python -m mypy
.venv/bin/python -m ruff check --quiet .
exec .venv/bin/python -m pytest "$@"
