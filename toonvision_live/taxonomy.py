"""The Cog taxonomy (4 suits, 32 Cogs), defined once in assets/taxonomy.json.

Both the runtime and the training toolkit read it from here; the order of
``SUITS`` and ``COGS`` is the order of the model's ``suit`` and ``entity``
outputs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources

from toonvision_live.errors import DataError


@dataclass(frozen=True, slots=True)
class Suit:
    code: str  # bb, lb, cb, sb
    name: str  # Bossbot, ...
    game_dept: str  # the game's department letter: c, l, m, s
    color: str  # overlay colour, "#RRGGBB"


@dataclass(frozen=True, slots=True)
class Cog:
    key: str  # ToonVision key, e.g. "coldcaller"
    name: str  # display name, e.g. "Cold Caller"
    suit: str  # suit code
    code: str  # in-game SuitDNA code, e.g. "cc"
    tier: int  # 1..8 within its suit
    levels: tuple[int, int]  # lowest and highest level
    body: str  # body type A/B/C

    @property
    def label(self) -> str:
        """The ToonVision/VOC object name, e.g. ``cog_sb_coldcaller``."""
        return f"cog_{self.suit}_{self.key}"


def _load() -> tuple[tuple[Suit, ...], tuple[Cog, ...]]:
    text = resources.files("toonvision_assets").joinpath("taxonomy.json").read_text("utf-8")
    raw = json.loads(text)
    suits = tuple(Suit(**s) for s in raw["suits"])
    cogs = tuple(
        Cog(key=c["key"], name=c["name"], suit=c["suit"], code=c["code"], tier=c["tier"],
            levels=(c["levels"][0], c["levels"][1]), body=c["body"])
        for c in raw["cogs"]
    )
    return suits, cogs


SUITS, COGS = _load()
SUIT_CODES: tuple[str, ...] = tuple(s.code for s in SUITS)
COG_KEYS: tuple[str, ...] = tuple(c.key for c in COGS)
SUIT_BY_CODE: dict[str, Suit] = {s.code: s for s in SUITS}
COG_BY_KEY: dict[str, Cog] = {c.key: c for c in COGS}
#: index of each Cog's suit in SUITS, in COGS order (used to check head agreement)
COG_SUIT_INDEX: tuple[int, ...] = tuple(SUIT_CODES.index(c.suit) for c in COGS)
#: street codes used in ToonVision file names
STREETS: tuple[str, ...] = ("br", "dd", "ddl", "dg", "mml", "ttc")


def cog(key: str) -> Cog:
    """The Cog with ToonVision key ``key``; a DataError names unknown keys."""
    try:
        return COG_BY_KEY[key]
    except KeyError:
        raise DataError(f"Unknown Cog '{key}': use one of the 32 ToonVision keys, e.g. 'coldcaller'.") from None


@dataclass(frozen=True, slots=True)
class Label:
    """A parsed VOC object name: ``cog_<suit>_<cog>`` or ``toon_<animal>``."""

    kind: str  # "cog" or "toon"
    suit: str | None
    key: str  # cog key or toon animal

    @property
    def name(self) -> str:
        return f"cog_{self.suit}_{self.key}" if self.kind == "cog" else f"toon_{self.key}"


def parse_label(name: str) -> Label:
    """Parse a label such as ``cog_sb_coldcaller`` or ``toon_dog``.

    Raises DataError for anything else, including a Cog under the wrong suit.
    """
    parts = name.strip().split("_")
    if len(parts) == 2 and parts[0] == "toon" and parts[1].isalpha():
        return Label("toon", None, parts[1].lower())
    if len(parts) == 3 and parts[0] == "cog":
        suit, key = parts[1], parts[2]
        known = COG_BY_KEY.get(key)
        if known is not None and known.suit == suit:
            return Label("cog", suit, key)
        if known is not None:
            raise DataError(
                f"Label '{name}' puts {known.name} under '{suit}', but it is a "
                f"{SUIT_BY_CODE[known.suit].name}: use '{known.label}'."
            )
    raise DataError(
        f"Unknown label '{name}': use 'cog_<suit>_<cog>' (e.g. 'cog_sb_coldcaller') or 'toon_<animal>'."
    )
