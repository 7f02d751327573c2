"""The package itself: taxonomy, labels, atomic writes, CLI help, packaging."""

from __future__ import annotations

import errno
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from toonvision_live import fileio
from toonvision_live.errors import DataError, SaveError
from toonvision_live.taxonomy import COG_KEYS, COG_SUIT_INDEX, COGS, SUIT_CODES, SUITS, parse_label

ROOT = Path(__file__).resolve().parents[1]

DESIGN_ORDER = [
    "flunky",
    "pencilpusher",
    "yesman",
    "micromanager",
    "downsizer",
    "headhunter",
    "corporateraider",
    "thebigcheese",
    "bottomfeeder",
    "bloodsucker",
    "doubletalker",
    "ambulancechaser",
    "backstabber",
    "spindoctor",
    "legaleagle",
    "bigwig",
    "shortchange",
    "pennypincher",
    "tightwad",
    "beancounter",
    "numbercruncher",
    "moneybags",
    "loanshark",
    "robberbaron",
    "coldcaller",
    "telemarketer",
    "namedropper",
    "gladhander",
    "movershaker",
    "twoface",
    "themingler",
    "mrhollywood",
]


def test_taxonomy_matches_the_model_contract():
    assert SUIT_CODES == ("bb", "lb", "cb", "sb")
    assert [s.name for s in SUITS] == ["Bossbot", "Lawbot", "Cashbot", "Sellbot"]
    assert list(COG_KEYS) == DESIGN_ORDER
    # 8 Cogs per suit, in suit order, tiers 1..8
    for i, cog in enumerate(COGS):
        assert COG_SUIT_INDEX[i] == i // 8
        assert cog.tier == i % 8 + 1
        assert cog.levels == (cog.tier, cog.tier + 4)
        assert cog.body in "ABC"
    assert len({c.code for c in COGS}) == 32


@pytest.mark.parametrize(
    ("name", "kind", "suit", "key"),
    [
        ("cog_sb_coldcaller", "cog", "sb", "coldcaller"),
        ("toon_dog", "toon", None, "dog"),
        ("cog_bb_thebigcheese", "cog", "bb", "thebigcheese"),
    ],
)
def test_parse_label_accepts_toonvision_names(name, kind, suit, key):
    label = parse_label(name)
    assert (label.kind, label.suit, label.key, label.name) == (kind, suit, key, name)


@pytest.mark.parametrize("name", ["cog_lb_coldcaller", "cog_sb_nobody", "goon", "toon_", "cog_sb"])
def test_parse_label_rejects_unknown_or_wrong_suit(name):
    with pytest.raises(DataError) as info:
        parse_label(name)
    assert name in str(info.value)


def test_indexed_writes_never_overwrite(tmp_path):
    img = np.zeros((6, 2, 3), np.uint8)
    paths = [fileio.write_indexed_png(tmp_path, "cog_sb_coldcaller", img) for _ in range(3)]
    assert [p.name for p in paths] == [f"cog_sb_coldcaller_{i}.png" for i in range(3)]
    (tmp_path / "cog_sb_coldcaller_9.png").write_bytes(b"keep")
    assert fileio.write_indexed_png(tmp_path, "cog_sb_coldcaller", img).name == "cog_sb_coldcaller_10.png"
    assert (tmp_path / "cog_sb_coldcaller_9.png").read_bytes() == b"keep"
    with pytest.raises(SaveError, match="overwrite"):
        fileio.atomic_write_bytes(tmp_path / "cog_sb_coldcaller_9.png", b"x")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_unreadable_image_names_the_file(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(DataError, match="broken.png"):
        fileio.read_image_rgb(bad)


#: every command and sub-command the README documents
COMMANDS = {
    "run": (), "demo": (), "bench": (), "replay": (), "train": (), "tune": (), "evaluate": (), "export": (),
    "render": ("crops", "scenes", "atlas", "sheet", "glyphs"),
    "dataset": ("extract", "check", "split", "report"),
}


def _help(*command: str) -> str:
    out = subprocess.run([sys.executable, "-m", "toonvision_live", *command, "--help"], capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout


def _listed(help_text: str) -> set[str]:
    """The command names a help text lists under COMMAND (indented four spaces, then their help)."""
    section = re.split(r"positional arguments:\n  [A-Z]+\n", help_text, maxsplit=1)[1].split("\n\n", 1)[0]
    return set(re.findall(r"^    ([a-z][\w-]*)", section, re.MULTILINE))


def test_cli_help_lists_every_subcommand_and_the_readme_documents_them():
    from toonvision_live.cli import build_parser

    top = _help()
    registered = set(build_parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    assert set(COMMANDS) <= registered, set(COMMANDS) - registered
    assert _listed(top) == registered
    readme = (ROOT / "README.md").read_text("utf-8")
    for name in registered:  # one added by another module must be documented too
        assert f"toonvision {name}" in readme, f"'toonvision {name}' is not in the README"
    for name, subs in COMMANDS.items():
        if subs:
            listed = _listed(_help(name))
            assert set(subs) <= listed, name
            for sub in listed:
                assert f"toonvision {name} {sub}" in readme, f"'toonvision {name} {sub}' is not in the README"


def test_runtime_imports_without_tensorflow():
    code = (
        "import sys, importlib, pkgutil, toonvision_live\n"
        "for m in pkgutil.iter_modules(toonvision_live.__path__):\n"
        "    if m.name not in ('__main__',): importlib.import_module('toonvision_live.' + m.name)\n"
        "bad = [m for m in ('tensorflow', 'keras', 'panda3d', 'pynput') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr


def test_every_package_is_listed_in_pyproject():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for top in ("toonvision_live", "training")
        for p in (ROOT / top).rglob("__init__.py")
    }
    assert found <= listed, f"add {sorted(found - listed)} to [tool.setuptools] packages"


def test_every_shipped_data_file_is_package_data():
    """A non-editable install must carry every asset and model file (pyproject package-data globs)."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    for package, folder in (("toonvision_assets", "assets"), ("toonvision_models", "models")):
        globs = data[package]
        for path in (ROOT / folder).iterdir():
            if path.is_file() and path.suffix != ".py":
                assert any(path.match(g) for g in globs), f"{path.name} is not in {package}'s package-data {globs}"


def test_a_warning_from_our_code_fails_the_test():
    """conftest's guard: a warning attributed to our code (here, this test module) is raised as an error,
    also when a library raises it on our behalf (numpy's floating-point warnings point at the caller)."""
    import warnings

    with pytest.raises(UserWarning, match="ours"):
        warnings.warn("ours", UserWarning, stacklevel=1)
    with pytest.raises(RuntimeWarning), np.errstate(divide="warn"):
        _ = np.float32(1.0) / np.float32(0.0)


def test_third_party_deprecations_are_ignored_by_module_name():
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.warn_explicit("old api", DeprecationWarning, "keras/src/x.py", 1, module="keras.src.x")
    assert caught == []


@pytest.mark.parametrize(("code", "words"), [
    (errno.ENOSPC, "the disk is full: free some space"),
    (errno.EROFS, "not writable (read-only or no permission): choose a writable dataset folder"),
    (errno.EACCES, "not writable"),
    (errno.ENOENT, "does not exist: create it or choose another dataset folder"),
    (errno.EIO, "Input/output error: check the dataset folder"),  # not in the table: the OS's words
])
def test_one_table_explains_failed_writes(code, words):
    assert words in fileio.why_not_written(OSError(code, os.strerror(code)), "dataset folder")


def test_a_failed_write_leaves_nothing_behind(tmp_path, monkeypatch):
    real = os.link
    calls = {"n": 0}

    def link_twice_then_fail(src, dst, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(src, dst, **kwargs)

    monkeypatch.setattr(os, "link", link_twice_then_fail)
    with pytest.raises(OSError, match="No space"):
        fileio.write_all_or_nothing([(tmp_path / f"{i}.txt", b"x") for i in range(4)])
    assert list(tmp_path.iterdir()) == []


def test_readme_layout_names_every_runtime_module_and_only_real_ones():
    readme = (ROOT / "README.md").read_text("utf-8")
    block = readme.split("## Layout", 1)[1].split("```", 2)[1]
    package = ROOT / "toonvision_live"
    for path in package.iterdir():
        name = path.name
        if name.startswith("_") or name == "__pycache__" or not (path.is_dir() or name.endswith(".py")):
            continue
        assert (f"{name}/" if path.is_dir() else name) in block, f"README's Layout misses toonvision_live/{name}"
    for name in set(re.findall(r"\b([a-z_]+\.py)\b", block)):
        assert list(package.rglob(name)), f"README's Layout names {name}, which toonvision_live does not have"


def test_runtime_modules_and_functions_stay_small():
    """The house rule: no module of toonvision_live over 500 lines, no function over 80."""
    import ast

    for path in sorted((ROOT / "toonvision_live").rglob("*.py")):
        source = path.read_text("utf-8")
        name = path.relative_to(ROOT)
        assert source.count("\n") <= 500, f"{name} has {source.count(chr(10))} lines (at most 500)"
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                assert lines <= 80, f"{name}: {node.name} has {lines} lines (at most 80)"
