"""Run `uv pip install ARGS` into the running interpreter's environment with pip's own package sources.

scripts/setup.sh calls it as `.venv/bin/python scripts/uv_install.py UV ARGS...`: uv installs the same
packages as `pip install ARGS` would, several times faster (parallel downloads and unpacking, files
hard-linked from its cache).  uv reads no pip configuration, so this reads pip's (`pip config list`: the
config files and the PIP_* variables, the same precedence as `pip install`) and hands each setting to uv:
index URLs, find-links, constraint files, CA bundle, proxy, timeout.  uv looks at every index for the
best version, as pip does (--index-strategy unsafe-best-match).  A pip setting with no translation
here exits 3 before anything is installed, and setup.sh installs with pip instead.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys

# pip settings that change what gets installed -> uv's option (one per value)
LIST_OPTIONS = {
    "index-url": "--index-url",
    "extra-index-url": "--extra-index-url",
    "find-links": "--find-links",
    "constraint": "--constraint",
    "only-binary": "--only-binary",
    "no-binary": "--no-binary",
    "trusted-host": "--allow-insecure-host",
}
FLAGS = {"no-index": ["--no-index"], "pre": ["--prerelease", "allow"]}
# pip settings that uv takes from the environment
ENVIRONMENT = {
    "cert": ("SSL_CERT_FILE",),
    "client-cert": ("SSL_CLIENT_CERT",),
    "proxy": ("HTTPS_PROXY", "HTTP_PROXY"),
    "timeout": ("UV_HTTP_TIMEOUT",),
    "default-timeout": ("UV_HTTP_TIMEOUT",),
}
# pip settings that do not change which files end up in the environment
IGNORED = {
    "disable-pip-version-check", "no-cache-dir", "cache-dir", "progress-bar", "quiet", "verbose", "retries",
    "no-compile", "compile", "root-user-action", "no-input", "no-color", "log", "no-warn-script-location",
    "no-python-version-warning", "require-virtualenv", "exists-action", "upgrade-strategy", "isolated",
}
# pip install's order of precedence between config sections: a later one wins
SECTIONS = ("global", "install", ":env:")


def pip_settings() -> dict[str, str]:
    """pip's settings for `pip install`, after its precedence (config files, then PIP_* variables)."""
    listed = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], check=True, capture_output=True, text=True
    ).stdout
    by_section: dict[str, dict[str, str]] = {section: {} for section in SECTIONS}
    for line in listed.splitlines():
        name, sep, value = line.partition("=")
        section, dot, key = name.rpartition(".")
        if sep and dot and section in by_section:
            by_section[section][key.replace("_", "-")] = str(ast.literal_eval(value))
    settings: dict[str, str] = {}
    for section in SECTIONS:
        settings.update(by_section[section])
    return settings


def is_true(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def uv_command(settings: dict[str, str]) -> tuple[list[str], dict[str, str]] | str:
    """uv's options and environment for pip's settings, or the name of a setting uv can't take."""
    options = ["--index-strategy", "unsafe-best-match"]
    environment: dict[str, str] = {}
    for key, value in settings.items():
        if key in LIST_OPTIONS:
            for item in value.split():
                options += [LIST_OPTIONS[key], item]
        elif key in FLAGS:
            if is_true(value):
                options += FLAGS[key]
        elif key in ENVIRONMENT:
            for variable in ENVIRONMENT[key]:
                environment[variable] = value
        elif key not in IGNORED:
            return key
    return options, environment


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: python scripts/uv_install.py UV PIP-INSTALL-ARGS...", file=sys.stderr)
        return 2
    uv, args = argv[0], argv[1:]
    command = uv_command(pip_settings())
    if isinstance(command, str):
        print(f"setup: pip's setting '{command}' has no uv equivalent here", file=sys.stderr)
        return 3
    options, environment = command
    full = [uv, "pip", "install", "--python", sys.executable, *options, *args]
    return subprocess.run(full, env={**os.environ, **environment}).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
