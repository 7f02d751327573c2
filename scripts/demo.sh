#!/usr/bin/env bash
# Install everything (scripts/setup.sh) and run the demo: a Toontown-like street window
# with walking Cogs, watched by the real pipeline and labelled by the overlay.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/toonvision demo "$@"
