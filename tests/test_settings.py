"""Settings: defaults, TOML file, CLI overrides, one-sentence ConfigErrors with suggestions."""

from __future__ import annotations

import argparse
import re
from dataclasses import FrozenInstanceError, fields
from pathlib import Path

import pytest

from toonvision_live.errors import ConfigError
from toonvision_live.settings import (
    DEFAULT_WINDOW_PATTERN,
    FIELDS,
    Hotkeys,
    Settings,
    add_settings_arguments,
    load_settings,
    settings_from_args,
    settings_keys,
)


def test_every_settings_attribute_has_one_table_row():
    assert {f.attr for f in FIELDS} | {"hotkeys"} == {f.name for f in fields(Settings)}


@pytest.mark.parametrize(
    ("title", "matches"),
    [
        ("Toontown Rewritten", True),
        ("Toontown Rewritten [ToonVision demo]", True),
        ("Corporate Clash", True),
        ("Corporate Clash [1.4.2]", True),
        ("corporate clash v1.5.0", True),
        ("Toontown Rewritten Launcher notes.txt - gedit", True),  # starts with the title: accepted
        ("vim toontown rewritten.txt", False),
        ("ToonVision Live overlay", False),
        ("Firefox", False),
    ],
)
def test_default_window_pattern_matches_game_titles(title, matches):
    assert bool(re.search(DEFAULT_WINDOW_PATTERN, title, re.IGNORECASE)) is matches


def test_defaults_are_frozen():
    settings = load_settings()
    assert settings == Settings()
    assert settings.hotkeys.save == "<ctrl>+<alt>+s"
    with pytest.raises(FrozenInstanceError):
        settings.batch_size = 3  # type: ignore[misc]


def test_toml_then_cli_overrides(tmp_path: Path):
    config = tmp_path / "tv.toml"
    config.write_text(
        'window = "Corporate Clash"\nbatch_size = 8\nprovider = "CPU"\ndataset = "~/tv-data"\n'
        '[hotkeys]\nsave = "<ctrl>+<shift>+<f5>"\n',
        "utf-8",
    )
    settings = load_settings(config, {"batch_size": "4", "min_confidence": None})
    assert settings.window_pattern == "Corporate Clash"
    assert settings.batch_size == 4
    assert settings.provider == "cpu"
    assert settings.dataset_dir == Path("~/tv-data").expanduser()
    assert settings.hotkeys == Hotkeys(save="<ctrl>+<shift>+<f5>")


def test_command_line_capture_target_replaces_the_file_one(tmp_path: Path):
    config = tmp_path / "tv.toml"
    config.write_text("monitor = 2\n", "utf-8")
    assert load_settings(config).monitor == 2
    settings = load_settings(config, {"region": "-1920,0,1920,1080"})
    assert (settings.monitor, settings.region_xywh) == (None, (-1920, 0, 1920, 1080))
    assert settings.capture_target == "region -1920,0,1920,1080"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("batch_sise = 4\n", "did you mean 'batch_size'?"),
        ("[hotkeys]\nsav = 'a'\n", "did you mean 'hotkeys.save'?"),
        ("batch_size = 0\n", "it must be 1 or more"),
        ("batch_size = 2.5\n", "not a whole number"),
        ("min_confidence = 1.5\n", "between 0 and 1"),
        ("provider = 'tpu'\n", "auto, cuda, cpu"),
        ("region = '1,2,3'\n", "four whole numbers"),
        ("region = [0, 0, 0, 10]\n", "width and height"),
        ("window = '(unclosed'\n", "not a valid regular expression"),
        ("[hotkeys]\nsave = 'ctrl+s'\n", "<ctrl>+<alt>+s"),
        ("[hotkeys]\nsave = '<ctrl>+<alt>+p'\n", "give each action its own combination"),
        ("hotkeys = 3\n", "must be a table"),
        ("capture_on_demand = 'maybe'\n", "true or false"),
        ("monitor = 1\nregion = '0,0,10,10'\n", "choose one capture target"),
        ("batch_size = \n", "not valid TOML"),
    ],
)
def test_bad_settings_give_one_sentence(tmp_path: Path, text, message):
    config = tmp_path / "bad.toml"
    config.write_text(text, "utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(config)
    assert message in str(info.value)
    assert "\n" not in str(info.value).strip()


def test_missing_config_file(tmp_path: Path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")


def test_cli_flags_are_generated_from_the_table(tmp_path: Path):
    parser = argparse.ArgumentParser()
    add_settings_arguments(parser)
    config = tmp_path / "tv.toml"
    config.write_text("fps_cap = 30\n", "utf-8")
    args = parser.parse_args(
        [
            "--config",
            str(config),
            "--window",
            "Corporate",
            "--batch-size",
            "2",
            "--hotkey-quit",
            "<ctrl>+<alt>+x",
        ]
    )
    settings = settings_from_args(args)
    assert (settings.window_pattern, settings.batch_size, settings.fps_cap) == ("Corporate", 2, 30.0)
    assert settings.hotkeys.quit == "<ctrl>+<alt>+x"
    with pytest.raises(ConfigError, match="--batch-size|batch_size"):
        settings_from_args(parser.parse_args(["--batch-size", "many"]))
    assert "hotkeys.toggle_overlay" in settings_keys()
