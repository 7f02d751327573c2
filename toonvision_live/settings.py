"""One frozen ``Settings`` object: defaults, then an optional TOML file, then CLI flags.

A single table (``FIELDS``) describes every setting once; it generates the CLI
flags (``add_settings_arguments``), checks TOML keys (unknown ones are rejected
with a close-match suggestion) and converts values.  No module reads the
environment or argv by itself: the CLI builds ``Settings`` and passes it down.

TOML example::

    window = "Toontown Rewritten"
    model = "models/toonvision.onnx"
    provider = "cpu"
    dataset = "~/toonvision-dataset"
    [hotkeys]
    save = "<ctrl>+<alt>+s"
"""

from __future__ import annotations

import argparse
import difflib
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from toonvision_live.errors import ConfigError

#: the game window titles we look for: Toontown Rewritten, Corporate Clash, and versioned
#: titles such as "Corporate Clash [1.4.2]" or "Toontown Rewritten [ToonVision demo]".
DEFAULT_WINDOW_PATTERN = r"^(Toontown Rewritten|Corporate Clash)\b"
PROVIDERS = ("auto", "cuda", "cpu")
CROP_STAGES = ("nametags", "detector", "combined")
#: the crop stages the tools compare: the settings' and detector-raw (the detector's own boxes)
CROP_STAGE_SEARCHES = (*CROP_STAGES, "detector-raw")
HOTKEY_ACTIONS = ("save", "toggle_overlay", "pause", "quit")
_HOTKEY_TOKEN = re.compile(r"^(<[a-z][a-z0-9_]*>|[^<>+\s])$")


@dataclass(frozen=True, slots=True)
class Hotkeys:
    """pynput GlobalHotKeys combinations, one per action."""

    save: str = "<ctrl>+<alt>+s"
    toggle_overlay: str = "<ctrl>+<alt>+o"
    pause: str = "<ctrl>+<alt>+p"
    quit: str = "<ctrl>+<alt>+q"

    def as_dict(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in HOTKEY_ACTIONS}


#: below this a Cog is drawn as "?" (name with "?", purple card).  0.7 was tried (2026-12-03): while guessed-tag Cogs
#: were shown from 50 % it flagged most cards naming a Cog that is not there; once they need 80 %
#: (find/confirm.GUESSED_MIN_CONFIDENCE) the rest of those are flagged at 0.5 already (live-like seed 0 for 20 s:
#: 160 of 223 at 0.5, 182 at 0.7; seeds 9, 12: 99 of 136 at both) and 0.7 only flagged 1 % more right cards
MIN_CONFIDENCE = 0.5


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the live app needs; build it with :func:`load_settings`."""

    window_pattern: str = DEFAULT_WINDOW_PATTERN
    monitor: int | None = None  # capture a whole monitor (1 = first) instead of a window
    region_xywh: tuple[int, int, int, int] | None = None  # capture a fixed screen region
    model_path: Path | None = None  # None: the shipped models/toonvision.onnx
    provider: str = "auto"  # auto (CUDA then CPU), cuda, cpu
    batch_size: int = 16  # most crops classified per frame
    min_confidence: float = MIN_CONFIDENCE  # below this a Cog is drawn as "?"
    min_proposal_score: float = 0.0  # proposals scoring below this are ignored
    dataset_dir: Path = Path("toonvision-dataset")
    hotkeys: Hotkeys = field(default_factory=Hotkeys)
    smoothing_s: float = 1.0  # seconds over which labels are smoothed per tracked Cog
    fps_cap: float = 60.0  # most frames captured per second
    requery_every: int = 15  # re-read the window geometry every N frames (always on failure; 1: ~2 ms CPU a grab)
    capture_on_demand: bool = True  # grab when the worker is ready (False: grab at fps_cap, drop unread)
    full_search_every: int = 4  # whole-frame nametag search every N frames, known tags followed between
    background_search: bool = True  # full searches on a helper thread, known tags followed every frame
    crop_stage: str = "detector"  # detector (+ nametag verifier), nametags (the search) or combined (docs/detector.md)

    @property
    def capture_target(self) -> str:
        if self.region_xywh is not None:
            return "region {},{},{},{}".format(*self.region_xywh)
        if self.monitor is not None:
            return f"monitor {self.monitor}"
        return f"window /{self.window_pattern}/"


# ---- value converters: each raises ValueError with a short reason ----------------------------


def _pattern(value: Any) -> str:
    text = str(value)
    if not text.strip():
        raise ValueError("it is empty")
    try:
        re.compile(text, re.IGNORECASE)
    except re.error as exc:
        raise ValueError(f"it is not a valid regular expression ({exc})") from None
    return text


def parse_size_wh(text: str) -> tuple[int, int]:
    """argparse type for a frame or window size such as ``1280x720`` (160x120 .. 7680x4320)."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a size like 1280x720") from None
    if not (160 <= width <= 7680 and 120 <= height <= 4320):
        raise argparse.ArgumentTypeError(f"'{text}' is outside 160x120 .. 7680x4320")
    return width, height


def _positive_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("it is not a whole number")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValueError("it is not a whole number") from None
    if isinstance(value, float) and value != number:
        raise ValueError("it is not a whole number")
    if number < 1:
        raise ValueError("it must be 1 or more")
    return number


def _region(value: Any) -> tuple[int, int, int, int]:
    parts = value.split(",") if isinstance(value, str) else list(value)
    try:
        x, y, w, h = (int(str(p).strip()) for p in parts)
    except ValueError:
        raise ValueError("it must be four whole numbers x,y,w,h") from None
    if w < 1 or h < 1:
        raise ValueError("its width and height must be 1 or more")
    return (x, y, w, h)


def _path(value: Any) -> Path:
    text = str(value).strip()
    if not text:
        raise ValueError("it is empty")
    return Path(text).expanduser()


def _provider(value: Any) -> str:
    text = str(value).strip().lower()
    if text not in PROVIDERS:
        raise ValueError(f"it must be one of {', '.join(PROVIDERS)}")
    return text


def _crop_stage(value: Any) -> str:
    text = str(value).strip().lower()
    if text not in CROP_STAGES:
        raise ValueError(f"it must be one of {', '.join(CROP_STAGES)}")
    return text


def _number_between(low: float, high: float, unit: str = "") -> Callable[[Any], float]:
    """A converter to a float within [low, high] (NaN refused), its errors naming the range."""

    def convert(value: Any) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError("it is not a number") from None
        if not low <= number <= high:
            raise ValueError(f"it must be between {low:g} and {high:g}{unit}")
        return number

    return convert


_fraction = _number_between(0.0, 1.0)
_seconds = _number_between(0.0, 60.0, " seconds")
_fps = _number_between(0.5, 1000.0)


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0"):
        return False
    raise ValueError("it must be true or false")


def _hotkey(value: Any) -> str:
    text = str(value).strip().lower()
    tokens = text.split("+") if text else []
    if not tokens or not all(_HOTKEY_TOKEN.match(t) for t in tokens):
        raise ValueError("it must look like '<ctrl>+<alt>+s' (modifiers in <>, joined by +)")
    if len(set(tokens)) != len(tokens):
        raise ValueError("it repeats a key")
    return text


@dataclass(frozen=True, slots=True)
class SettingField:
    """One setting: its TOML key, CLI flag, Settings attribute, converter and help."""

    key: str  # TOML key (and CLI flag without the dashes, '_' -> '-')
    attr: str  # Settings attribute
    convert: Callable[[Any], Any]
    help: str
    metavar: str | None = None

    @property
    def flag(self) -> str:
        return "--" + self.key.replace("_", "-")


FIELDS: tuple[SettingField, ...] = (
    SettingField(
        "window",
        "window_pattern",
        _pattern,
        "regular expression matched (case-insensitive) against window titles "
        "(default: Toontown Rewritten or Corporate Clash, any version)",
        "PATTERN",
    ),
    SettingField("monitor", "monitor", _positive_int, "capture monitor N (1 = first) instead of a window", "N"),
    SettingField("region", "region_xywh", _region, "capture the screen region x,y,w,h instead of a window", "X,Y,W,H"),
    SettingField("model", "model_path", _path, "ONNX model (default: the shipped models/toonvision.onnx)", "FILE"),
    SettingField(
        "provider",
        "provider",
        _provider,
        "onnxruntime execution provider: auto (CUDA, then CPU), cuda or cpu",
        "NAME",
    ),
    SettingField("batch_size", "batch_size", _positive_int, "most Cog crops classified per frame", "N"),
    SettingField(
        "min_confidence",
        "min_confidence",
        _fraction,
        "below this confidence a Cog is labelled '?' (0..1)",
        "P",
    ),
    SettingField(
        "min_proposal_score",
        "min_proposal_score",
        _fraction,
        "ignore nametag proposals scoring below this (0..1)",
        "P",
    ),
    SettingField(
        "dataset",
        "dataset_dir",
        _path,
        "dataset folder where the save hotkey writes raw/screenshots and unsorted/cog",
        "DIR",
    ),
    SettingField(
        "smoothing",
        "smoothing_s",
        _seconds,
        "seconds over which each Cog's label is smoothed (0: each frame on its own)",
        "S",
    ),
    SettingField("fps_cap", "fps_cap", _fps, "most frames captured per second", "FPS"),
    SettingField(
        "capture_on_demand",
        "capture_on_demand",
        _bool,
        "grab a frame only when the worker is ready for it (true) or at the fps cap (false)",
        "BOOL",
    ),
    SettingField(
        "background_search",
        "background_search",
        _bool,
        "search the whole frame for nametags on a helper thread (the second core) while known tags are "
        "followed on every frame (true), or in turn every N frames (false, see --full-search-every)",
        "BOOL",
    ),
    SettingField(
        "full_search_every",
        "full_search_every",
        _positive_int,
        "search the whole frame for Cog nametags every N frames and follow the known ones in between "
        "(1: search every frame)",
        "N",
    ),
    SettingField(
        "crop_stage",
        "crop_stage",
        _crop_stage,
        "how Cogs are found: nametags (the nametag search), detector (the learned detector, "
        "models/detector.onnx, its tags confirmed by the nametag verifier) or combined (both)",
        "NAME",
    ),
    SettingField(
        "requery_every",
        "requery_every",
        _positive_int,
        "re-read the game window's position every N frames",
        "N",
    ),
)
_FIELD_BY_KEY = {f.key: f for f in FIELDS}


def _unknown(key: str, known: list[str], where: str) -> ConfigError:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(known)}."
    return ConfigError(f"Unknown setting '{key}' in {where}: {hint}")


def _bad(key: str, value: Any, why: str, where: str) -> ConfigError:
    return ConfigError(f"Setting '{key}' = {value!r} in {where} is invalid: {why}.")


def _hotkeys_from(raw: Any, base: Hotkeys, where: str) -> Hotkeys:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"Setting 'hotkeys' in {where} must be a table such as [hotkeys] save = \"<ctrl>+<alt>+s\".")
    values = base.as_dict()
    for key, value in raw.items():
        if key not in HOTKEY_ACTIONS:
            raise _unknown(f"hotkeys.{key}", [f"hotkeys.{a}" for a in HOTKEY_ACTIONS], where)
        try:
            values[key] = _hotkey(value)
        except ValueError as exc:
            raise _bad(f"hotkeys.{key}", value, str(exc), where) from None
    return _checked_hotkeys(Hotkeys(**values), where)


def _checked_hotkeys(hotkeys: Hotkeys, where: str) -> Hotkeys:
    seen: dict[str, str] = {}
    for action, combo in hotkeys.as_dict().items():
        canonical = "+".join(sorted(combo.split("+")))
        if canonical in seen:
            raise ConfigError(
                f"Hotkeys '{seen[canonical]}' and '{action}' in {where} are both {combo}: "
                "give each action its own combination."
            )
        seen[canonical] = action
    return hotkeys


def _apply(settings: Settings, values: Mapping[str, Any], where: str) -> Settings:
    changes: dict[str, Any] = {}
    known = [*_FIELD_BY_KEY, "hotkeys"]
    for key, value in values.items():
        if key == "hotkeys":
            changes["hotkeys"] = _hotkeys_from(value, settings.hotkeys, where)
            continue
        spec = _FIELD_BY_KEY.get(key)
        if spec is None:
            raise _unknown(key, known, where)
        try:
            changes[spec.attr] = spec.convert(value)
        except ValueError as exc:
            raise _bad(key, value, str(exc), where) from None
    return replace(settings, **changes)


def read_toml(path: Path) -> dict[str, Any]:
    """The TOML file as a dict; ConfigError names the file when it is missing or malformed."""
    path = Path(path).expanduser()
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"The settings file {path} does not exist: check the --config path.") from None
    except OSError as exc:
        raise ConfigError(f"The settings file {path} cannot be read ({exc.strerror}).") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"The settings file {path} is not valid TOML ({exc}); fix it.") from None


def load_settings(config: Path | None = None, overrides: Mapping[str, Any] | None = None) -> Settings:
    """Defaults, then the TOML file ``config`` (if given), then ``overrides`` (TOML keys).

    ``overrides`` values may be strings as typed on the command line; ``None``
    values mean "not given".  Choosing ``monitor`` or ``region`` on the command
    line wins over a window pattern from the file.
    """
    settings = Settings()
    if config is not None:
        settings = _apply(settings, read_toml(config), str(config))
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    if given.keys() & {"window", "monitor", "region"}:
        settings = replace(settings, monitor=None, region_xywh=None)  # the command line picks the target
    if given:
        settings = _apply(settings, given, "the command line")
    if settings.monitor is not None and settings.region_xywh is not None:
        raise ConfigError("Both a monitor and a region are set: choose one capture target.")
    return settings


def add_settings_arguments(parser: argparse.ArgumentParser, *, capture: bool = True) -> None:
    """Add one flag per setting (and --config, --hotkey-*) to ``parser``.

    With ``capture=False`` the capture-target flags (window, monitor, region) are left out.
    """
    parser.add_argument("--config", type=Path, metavar="FILE", help="TOML settings file (flags override it)")
    for spec in FIELDS:
        if not capture and spec.key in ("window", "monitor", "region"):
            continue
        default = getattr(Settings(), spec.attr)
        shown = "" if default is None or "default" in spec.help else f" (default {str(default).lower()})"
        parser.add_argument(spec.flag, dest=f"setting_{spec.key}", metavar=spec.metavar, help=spec.help + shown)
    for action in HOTKEY_ACTIONS:
        default = getattr(Hotkeys(), action)
        parser.add_argument(
            f"--hotkey-{action.replace('_', '-')}",
            dest=f"hotkey_{action}",
            metavar="KEYS",
            help=f"hotkey to {action.replace('_', ' ')} (default {default})",
        )


def settings_from_args(args: argparse.Namespace, **forced: Any) -> Settings:
    """Build Settings from parsed flags (added by :func:`add_settings_arguments`).

    ``forced`` are TOML-keyed values set by the command itself (e.g. the demo's window title).
    """
    overrides: dict[str, Any] = {}
    for spec in FIELDS:
        value = getattr(args, f"setting_{spec.key}", None)
        if value is not None:
            overrides[spec.key] = value
    hotkeys = {a: getattr(args, f"hotkey_{a}", None) for a in HOTKEY_ACTIONS}
    hotkeys = {a: v for a, v in hotkeys.items() if v is not None}
    if hotkeys:
        overrides["hotkeys"] = hotkeys
    overrides.update(forced)
    return load_settings(getattr(args, "config", None), overrides)


def settings_keys() -> list[str]:
    """Every TOML key (for docs and tests)."""
    return [*_FIELD_BY_KEY, *(f"hotkeys.{a}" for a in HOTKEY_ACTIONS)]
