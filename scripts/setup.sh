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

# uv installs the same packages as pip, several times faster: it downloads and unpacks in parallel and
# hard-links the files from its cache (~/.cache/uv), so a second clone installs in seconds.  uv itself
# is installed with pip, once per machine, into ~/.cache/toonvision-live/uv-VERSION, and
# scripts/uv_install.py hands it pip's package sources (`pip config list`: indexes, find-links,
# constraints).  Whatever fails on that way (no uv to be had, a pip setting uv can't take, a failed
# uv install) falls back to plain pip.  TOONVISION_SETUP_PIP=1 installs with pip alone.
UV_VERSION=0.13.9
UV=""
NO_UV="${TOONVISION_SETUP_PIP:-}"
find_uv() {  # find_uv PIP-COMMAND...: sets UV, installing uv with that pip the first time
  [ -n "$UV" ] && return 0
  [ "$NO_UV" != 1 ] || return 1
  local uvdir="${XDG_CACHE_HOME:-$HOME/.cache}/toonvision-live/uv-$UV_VERSION" tmp
  if ! "$uvdir/bin/uv" --version >/dev/null 2>&1; then
    "$@" --version >/dev/null 2>&1 && mkdir -p "$(dirname "$uvdir")" && tmp=$(mktemp -d "$uvdir.XXXXXX") || return 1
    if ! PIP_ROOT_USER_ACTION=ignore "$@" install -q --no-compile --target "$tmp" "uv==$UV_VERSION" 2>"$tmp.log"; then
      echo "setup: could not install uv: $(tail -n 1 "$tmp.log")"
      rm -rf "$tmp" "$tmp.log"
      NO_UV=1
      return 1
    fi
    rm -rf "$uvdir" "$tmp.log" && mv "$tmp" "$uvdir" || return 1
  fi
  UV="$uvdir/bin/uv"
}
venv_with_uv() {  # python -m venv, with its ensurepip step (~30 s on a busy machine) done by uv: the same wheels
  local wheels
  mapfile -t wheels < <("$PYTHON" -c 'import ensurepip, pathlib
for w in sorted((pathlib.Path(ensurepip.__file__).parent / "_bundled").glob("*.whl")): print(w)') || return 1
  ((${#wheels[@]})) && "$PYTHON" -m venv --without-pip .venv \
    && "$UV" pip install -q --no-deps --python .venv/bin/python "${wheels[@]}" && return 0
  rm -rf .venv
  return 1
}

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PYTHON --version)"
  rm -rf .venv
  { find_uv "$PYTHON" -m pip && venv_with_uv; } || "$PYTHON" -m venv .venv
fi
stamp=.venv/.toonvision-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing ToonVision Live with the [train,test] extras into .venv (a few minutes the first time)"
  # Both compile the packages' bytecode (.pyc) at install: where PYTHONDONTWRITEBYTECODE is set (as on
  # this project's machines) Python never writes it on first use, so every process compiled TensorFlow's
  # modules again (its import 12.5 s of CPU instead of 5 s; the tests start dozens of processes).
  if ! { find_uv .venv/bin/python -m pip \
         && .venv/bin/python scripts/uv_install.py "$UV" -q --compile-bytecode -e ".[train,test]"; }; then
    echo "setup: installing with pip (a few minutes)"
    # the venv's own pip (PEP 660 editable installs need pip >= 21.3)
    .venv/bin/python -m pip install -q -e ".[train,test]"
  fi
  touch "$stamp"
fi
