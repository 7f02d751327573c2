"""The game resource folder: cogs.json facts and the files each Cog is built from.

A resource root holds ``cogs.json`` plus the game's own ``phase_X/...`` files (see
../shared/game-resources/README.md).  :func:`load_resources` reads the facts and checks
that every file a Cog needs is there, so a missing file is named before anything renders.
No panda3d here: this module is cheap to import.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from toonvision_live.errors import ResourceError
from toonvision_live.taxonomy import COG_BY_KEY, COG_KEYS

#: project root (the folder holding pyproject.toml)
PROJECT_ROOT = Path(__file__).resolve().parents[2]

#: walk animations PyPI panda3d can load (decoded from the game's FFT-compressed files), per body type
WALK_ANIMS: dict[str, str] = {
    "A": "decoded/phase_4/models/char/suitA-walk.bam",
    "B": "decoded/phase_4/models/char/suitB-walk.bam",
    "C": "decoded/phase_3.5/models/char/suitC-walk.bam",
}
ANIMS: tuple[str, ...] = ("neutral", "walk")


@dataclass(frozen=True, slots=True)
class CogSpec:
    """How the game builds one Cog (Suit.generateSuit), paths relative to the resource root."""

    key: str
    name: str
    code: str
    suit: str  # project suit code bb/lb/cb/sb
    dept_name: str
    tier: int
    body: str  # A/B/C
    body_model: str
    anims: tuple[tuple[str, str], ...]  # (anim name, file) for neutral and walk
    head_model: str
    head_parts: tuple[str, ...]
    head_texture: str | None
    head_color: tuple[float, float, float, float] | None
    hand_color: tuple[float, float, float, float]
    suit_textures: tuple[tuple[str, str], ...]  # (node name torso/arms/legs, texture file)
    badge_node: str
    badge_color: tuple[float, float, float, float]
    scale: float
    height: float  # world height of the top of the head after scaling

    @property
    def label(self) -> str:
        return f"cog_{self.suit}_{self.key}"

    def anim_file(self, anim: str) -> str:
        for name, path in self.anims:
            if name == anim:
                return path
        raise ResourceError(f"Unknown animation '{anim}' for {self.name}: use one of {', '.join(ANIMS)}.")

    def files(self) -> tuple[str, ...]:
        """Every file this Cog is built from (relative paths)."""
        extra = (self.head_texture,) if self.head_texture else ()
        return (
            self.body_model,
            self.head_model,
            *(p for _, p in self.anims),
            *(p for _, p in self.suit_textures),
            *extra,
        )


@dataclass(frozen=True, slots=True)
class Badge:
    model: str
    parent_joint: str
    pos: tuple[float, float, float]
    hpr: tuple[float, float, float]
    scale: float


@dataclass(frozen=True, slots=True)
class GameResources:
    """A checked resource root: the facts of all 32 Cogs, in taxonomy order."""

    root: Path
    cogs: tuple[CogSpec, ...]
    badge: Badge
    head_joint: str

    def spec(self, key: str) -> CogSpec:
        for cog_spec in self.cogs:
            if cog_spec.key == key:
                return cog_spec
        raise ResourceError(f"Unknown Cog '{key}': use one of the 32 ToonVision keys, e.g. 'coldcaller'.")

    def path(self, relative: str) -> Path:
        return self.root / relative

    @property
    def max_height(self) -> float:
        return max(c.height for c in self.cogs)


def default_resources_path() -> Path | None:
    """../shared/game-resources beside the project root, if it holds cogs.json."""
    candidate = PROJECT_ROOT.parent / "shared" / "game-resources"
    return candidate if (candidate / "cogs.json").is_file() else None


def resolve_resources_path(path: str | Path | None) -> Path:
    """The resource root from ``--resources`` or the default; ResourceError when there is none."""
    if path is not None:
        return Path(path).expanduser().resolve()
    found = default_resources_path()
    if found is None:
        raise ResourceError(
            f"No game resource folder at {PROJECT_ROOT.parent / 'shared' / 'game-resources'}: "
            "pass --resources PATH (a folder holding cogs.json and the phase_X model files)."
        )
    return found


def _rgba(value: object, where: str) -> tuple[float, float, float, float]:
    if not (isinstance(value, list) and len(value) == 4 and all(isinstance(v, int | float) for v in value)):
        raise ResourceError(f"{where} must be a list of 4 numbers (RGBA).")
    return (float(value[0]), float(value[1]), float(value[2]), float(value[3]))


def _spec(raw: dict, cogs_json: Path) -> CogSpec:
    key = raw.get("key", "?")
    where = f"Cog '{key}' in {cogs_json}"
    try:
        body = raw["body"]
        return CogSpec(
            key=key,
            name=raw["name"],
            code=raw["code"],
            suit=raw["dept"],
            dept_name=raw["dept_name"],
            tier=int(raw["tier"]),
            body=body,
            body_model=raw["body_model"],
            anims=(
                ("neutral", raw["neutral_anim_pypi"]),
                ("walk", raw.get("walk_anim_pypi", WALK_ANIMS[body])),
            ),
            head_model=raw["head_model"],
            head_parts=tuple(raw["head_parts"]),
            head_texture=raw["head_texture"],
            head_color=None if raw["head_color"] is None else _rgba(raw["head_color"], f"head_color of {where}"),
            hand_color=_rgba(raw["hand_color"], f"hand_color of {where}"),
            suit_textures=tuple((part, raw["suit_textures"][part]) for part in ("torso", "arms", "legs")),
            badge_node=raw["badge_node"],
            badge_color=_rgba(raw["badge_color"], f"badge_color of {where}"),
            scale=float(raw["scale"]),
            height=float(raw["height"]),
        )
    except KeyError as exc:
        raise ResourceError(f"{where} lacks the field {exc.args[0]!r}: restore cogs.json from the resources.") from None
    except (TypeError, ValueError) as exc:
        raise ResourceError(f"{where} has a malformed field ({exc}): restore cogs.json.") from None


def load_resources(root: str | Path) -> GameResources:
    """Read ``root/cogs.json`` and check every file the 32 Cogs need exists.

    Raises ResourceError naming the missing folder, file or Cog.
    """
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise ResourceError(f"The game resource folder {root} does not exist: pass --resources PATH.")
    cogs_json = root / "cogs.json"
    if not cogs_json.is_file():
        raise ResourceError(f"{cogs_json} is missing: the resource folder must hold cogs.json (see its README).")
    try:
        raw = json.loads(cogs_json.read_text("utf-8"))
        entries = raw["cogs"]
        badge_raw = raw["badge"]
        badge = Badge(
            model=badge_raw["model"],
            parent_joint=badge_raw["parent_joint"],
            pos=tuple(badge_raw["pos"]),
            hpr=tuple(badge_raw["hpr"]),
            scale=float(badge_raw["scale"]),
        )
        head_joint = raw["head_joint"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ResourceError(f"{cogs_json} is not a valid Cog facts file ({exc}): restore it.") from None
    by_key = {}
    for entry in entries:
        spec = _spec(entry, cogs_json)
        if spec.key not in COG_BY_KEY:
            raise ResourceError(f"{cogs_json} lists an unknown Cog '{spec.key}': it must use the 32 ToonVision keys.")
        if COG_BY_KEY[spec.key].suit != spec.suit:
            raise ResourceError(f"{cogs_json} puts Cog '{spec.key}' in suit '{spec.suit}': fix its 'dept'.")
        by_key[spec.key] = spec
    missing_cogs = [k for k in COG_KEYS if k not in by_key]
    if missing_cogs:
        raise ResourceError(f"{cogs_json} lacks the Cog '{missing_cogs[0]}' ({len(missing_cogs)} missing): restore it.")
    cogs = tuple(by_key[k] for k in COG_KEYS)
    for spec in cogs:
        for relative in spec.files():
            if not (root / relative).is_file():
                raise ResourceError(
                    f"The resource file {root / relative} (needed by {spec.name}) is missing: "
                    "restore it in the game resource folder."
                )
    if not (root / badge.model).is_file():
        raise ResourceError(f"The resource file {root / badge.model} (the department badges) is missing: restore it.")
    return GameResources(root=root, cogs=cogs, badge=badge, head_joint=head_joint)
