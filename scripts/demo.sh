#!/usr/bin/env bash
# Install everything (scripts/setup.sh) and run the demo: a Toontown-like street window
# with walking Cogs, watched by the real pipeline and labelled by the overlay.
# Without a desktop (no DISPLAY) it runs on a private virtual screen for 20 seconds and
# writes demo-screenshot.png instead.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ -z "${DISPLAY:-}" ] && [ "$#" -eq 0 ]; then
  echo "demo: no desktop here (DISPLAY is not set): running on a virtual screen for 20 s, screenshot in demo-screenshot.png"
  exec .venv/bin/toonvision demo --xvfb --seconds 20 --screenshot demo-screenshot.png
fi
exec .venv/bin/toonvision demo "$@"
