#!/usr/bin/env bash
# Install everything ToonVision Live needs on a fresh Debian machine with Python 3.11:
# the Debian packages (X virtual screen, compositor, xdotool, Qt's xcb libraries) and a
# virtual environment in .venv with the runtime, the [train] toolkit and the test tools.
# Idempotent: a second run only checks what is there.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBIAN_PACKAGES=(
  xvfb xcompmgr xdotool x11-utils
  libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0 libxcb-image0 libxcb-render-util0
  libxcb-shape0 libxcb-randr0 libxcb-xinerama0 libxcb-xkb1 libxkbcommon-x11-0
  libegl1 libgl1 libfontconfig1 libdbus-1-3
)

missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.toonvision-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing ToonVision Live with the [train,test] extras into .venv (a few minutes the first time)"
  # the venv's own pip installs all of it (PEP 660 editable installs need pip >= 21.3; upgrading it first
  # cost 13 s on a busy machine); --no-compile: Python compiles the modules a run imports (a few hundred)
  # on first use instead of pip compiling all 9,500 files of the toolkit (TensorFlow is most of them):
  # 308 s instead of 344 + 13 s for the install on the busy 2-core machine, then ~5 s more on the first imports
  .venv/bin/python -m pip install -q --no-compile -e ".[train,test]"
  touch "$stamp"
fi
