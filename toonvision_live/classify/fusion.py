"""One label per Cog from two witnesses: the body classifier and the nametag reader.

The label is the most likely (identity, level, v2.0) given

* the classifier's suit and Cog heads (a body can only say which of the 32 Cogs it looks like);
* the reader's name, department, level and v2.0 heads (a tag can also say ``Skelecog``, ``Boardbot``
  or a name that is none of the 32: those are shown as such, never forced into the 32);
* the level range of each Cog as a prior: a Cog of tier k walks the streets at levels k..k+4
  (assets/taxonomy.json), a few levels higher in Cog HQs; a "Flunky Level 9" is a misread.

Each witness is tempered (mixed with a little of the uniform distribution) so that one confident
mistake cannot veto the other; a read that doubts itself (its name, department and level heads together
unsure) is tempered more, so a confident misread of a badly placed tag box cannot outweigh a sure body.
Where both witnesses are present and their own top picks name different Cogs, ``agree`` is False and
the overlay says so.

HP (Toontown Rewritten, since TTR 3.0): HP = (L+1)(L+2) for levels 1..11 and (L+1)(L+2)+14 from
level 12 on; a v2.0 Cog has a second (skeleton) layer with the same HP again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from toonvision_live.classify.classifier import CogPrediction
from toonvision_live.classify.reader import DEPT_CLASSES, MAX_LEVEL, NAME_CLASSES, TagReading
from toonvision_live.taxonomy import COG_BY_KEY, COGS, SUIT_BY_CODE, SUIT_CODES

#: how far above its street range a Cog is still met (Cog HQs, field offices), and the prior weight there
HQ_EXTRA_LEVELS, HQ_WEIGHT, OFF_RANGE_WEIGHT = 3, 0.05, 1e-4
#: uniform mass mixed into each witness (a confident mistake must not veto the other witness)
CLASSIFIER_TEMPER, READER_TEMPER = 0.3, 0.02
#: the reader's name head misses on held-out whole tags by line height (stage-3 reader: 4-5 px 8.3 %,
#: 5-6 px 6.9 %, 6-8 px 3.3 %, >= 8 px 1.7 %), as (line height below, uniform mass mixed in): four times
#: the miss rate, as a wrong read is usually still a confident one.  The shipped stage-5 reader, three
#: reads per tag, misses less (models/reader.json metrics_test_as_read: 4.9, 2.5, 0.5, 0.15 %), but four
#: times those (0.19, 0.10, 0.021, 0.006) named fewer Cogs on the demo replay (98.39 vs 98.53 %: a tag
#: box on the wrong Cog then outweighs the body), so these masses are kept
READER_NAME_TEMPER_BY_LINE = ((5.0, 0.33), (6.0, 0.28), (8.0, 0.13), (float("inf"), 0.07))
#: a read whose heads together are sure with probability c (TagReading.confidence) has its name, department and
#: level heads tempered by at least READ_DOUBT * (1 - c): on the demo replay a box on part of a card, or on a card
#: over the face of the Cog behind, read a confident wrong name beside an unsure level or department and outweighed
#: a sure body (`toonvision replay`, tag visible, seeds 0-7 / 8-15: 98.86 / 98.39 % -> 99.28 / 98.53 %; the name
#: head alone tempered so: 99.11 / 98.56 %, and at READ_DOUBT 0.5: 98.92 / 98.56 %)
READ_DOUBT = 1.0
#: a level (and its HP) is shown only when it is right with at least this chance (FusedLabel.level_conf: the read's
#: level head tempered, times the Cog's level range); below it the card names the Cog without a level.  On the
#: demo replay (8 streets, every matched track named right with a level shown, 4,963 Cog-frames) 70 levels were
#: wrong; 61 of them were under 0.4 sure, against 92 of the 4,893 right ones: shown 96.9 % of the levels, right
#: 99.81 % (98.59 % with all shown); at 0.3: 98.2 % shown, 99.49 % right; at 0.5: 95.4 %, 99.81 %
LEVEL_SHOW_MIN = 0.4
#: "v2.0" (and the second layer's HP) is shown only when the read says it at least this sure: the demo streets have
#: no v2.0 Cog, yet half-covered tags read "v2.0" on 54 of 5,007 level-showing card-frames of the 8-street replay (30
#: of them under 0.99); on the held-out test shard 3 of 1,489 whole v2.0 tags read v2.0 under 0.99 (4-5 px lines)
V2_SHOW_MIN = 0.99
SKELECOG, OTHER = NAME_CLASSES.index("skelecog"), NAME_CLASSES.index("other")
_N = len(NAME_CLASSES)
#: how often the reader saw each name class in training (training/reader/tags.sample_label: 70 % one of
#: the 32, 10 % Skelecog, 20 % other); its outputs are divided by this to undo that prior, so the
#: many made-up "other" names it was shown do not make "other" 9 times likelier than any one Cog
READER_NAME_PRIOR = np.array([0.70 / 32] * 32 + [0.10, 0.20])
_COG_SUIT_DEPT = np.array([DEPT_CLASSES.index(c.suit) for c in COGS])
_NONE_DEPT = DEPT_CLASSES.index("none")


def cog_hp(level: int) -> int:
    """HP of one layer of a Cog of ``level`` (Toontown Rewritten's rule)."""
    if level < 1:
        raise ValueError(f"a Cog level is at least 1, got {level}")
    hp = (level + 1) * (level + 2)
    return hp + 14 if level >= 12 else hp


def level_prior(tier: int) -> np.ndarray:
    """[50] prior weights of levels 1..50 for a Cog of ``tier`` (not normalised)."""
    levels = np.arange(1, MAX_LEVEL + 1)
    prior = np.full(MAX_LEVEL, OFF_RANGE_WEIGHT)
    prior[(levels > tier + 4) & (levels <= tier + 4 + HQ_EXTRA_LEVELS)] = HQ_WEIGHT
    prior[(levels >= tier) & (levels <= tier + 4)] = 1.0
    return prior


_LEVEL_PRIORS = np.stack([level_prior(c.tier) for c in COGS])  # [32, 50]


@dataclass(frozen=True, slots=True)
class FusedLabel:
    """The label shown for one Cog.

    ``kind``: ``cog`` (one of the 32; ``cog`` and ``suit`` set), ``skelecog``, ``boardbot`` or
    ``unknown`` (a tag naming none of the 32).  ``suit`` is the department's code where known
    (``boardbot`` for Boardbots).  ``level``/``hp`` are None without a readable tag or when the level is
    less than LEVEL_SHOW_MIN sure (``level_conf``); ``hp`` is one
    layer (a v2.0 Cog has two).  ``agree``: both witnesses' own top picks name the same Cog (None
    when only one witness saw it or the tag names none of the 32).  ``source``: body, tag or both.
    ``level_plausible``: the read level lies in the Cog's street or HQ range.
    """

    kind: str
    cog: str | None
    suit: str | None
    confidence: float
    level: int | None
    v2: bool
    hp: int | None
    agree: bool | None
    source: str
    level_plausible: bool = True
    level_conf: float = 1.0  # the chance that ``level`` is right, given the read and the Cog's level range

    @property
    def display_name(self) -> str:
        if self.kind == "cog" and self.cog is not None:
            return COG_BY_KEY[self.cog].name
        dept = SUIT_BY_CODE[self.suit].name if self.suit in SUIT_BY_CODE else None
        if self.kind == "skelecog":
            return f"Skelecog ({dept})" if dept else "Skelecog"
        if self.kind == "boardbot":
            return "Boardbot"
        return f"Unknown {dept}" if dept else "Unknown Cog"

    @property
    def total_hp(self) -> int | None:
        return None if self.hp is None else self.hp * (2 if self.v2 else 1)

    def card_text(self) -> str:
        """The overlay's line, e.g. ``Head Hunter · Lv 10 · 132 HP`` (v2.0: ``Lv 10 v2.0 · 132+132 HP``)."""
        parts = [self.display_name]
        if self.level is not None:
            parts.append(f"Lv {self.level}" + (" v2.0" if self.v2 else ""))
        if self.hp is not None:
            parts.append(f"{self.hp}+{self.hp} HP" if self.v2 else f"{self.hp} HP")
        return " · ".join(parts)


def reader_name_temper(line_px: float) -> float:
    """How much the name read of a tag with lines ``line_px`` high is tempered (unknown height: as >= 8 px)."""
    if line_px <= 0:
        return READER_NAME_TEMPER_BY_LINE[-1][1]
    return next(mass for below, mass in READER_NAME_TEMPER_BY_LINE if line_px < below)


def _temper(p: np.ndarray, mass: float) -> np.ndarray:
    return (1 - mass) * p + mass / len(p)


def _v2(reading: TagReading) -> bool:
    return reading.v2 and reading.v2_conf >= V2_SHOW_MIN


def fuse(prediction: CogPrediction | None, reading: TagReading | None) -> FusedLabel:
    """The most likely (identity, level, v2.0) from a classifier prediction and/or a tag reading."""
    if prediction is None and reading is None:
        raise ValueError("fuse needs a classifier prediction, a tag reading or both")
    if reading is None:
        assert prediction is not None
        return FusedLabel("cog", prediction.cog, prediction.suit, float(prediction.confidence or 0.0),
                          None, False, None, None, "body")
    # identity scores over the reader's 34 name classes
    doubt = READ_DOUBT * (1.0 - reading.confidence)
    score = _temper(reading.name_probs, max(reader_name_temper(reading.line_px), doubt)) / READER_NAME_PRIOR
    dept = _temper(reading.dept_probs, max(READER_TEMPER, doubt))
    # a two-line tag ("none") says nothing of the department
    dept_fit = dept[_COG_SUIT_DEPT] + dept[_NONE_DEPT] / 4
    level_read = _temper(reading.level_probs, max(READER_TEMPER, doubt))
    level_fit = (_LEVEL_PRIORS * level_read).sum(axis=1) / _LEVEL_PRIORS.sum(axis=1) * MAX_LEVEL
    score[: len(COGS)] *= dept_fit * level_fit
    agree: bool | None = None
    if prediction is not None and prediction.suit_probs is not None and prediction.entity_probs is not None:
        body = np.zeros(_N)
        body[: len(COGS)] = np.asarray(prediction.entity_probs) * np.asarray(prediction.suit_probs)[
            [SUIT_CODES.index(c.suit) for c in COGS]]
        body /= max(body.sum(), 1e-12)
        score *= _temper(body, CLASSIFIER_TEMPER)
        if reading.name in COG_BY_KEY:
            agree = reading.name == prediction.cog
    posterior = score / score.sum()
    best = int(posterior.argmax())
    source = "tag" if prediction is None else "both"
    if best < len(COGS):
        c = COGS[best]
        level_post = level_read * _LEVEL_PRIORS[best]
        lv = int(level_post.argmax()) + 1
        plausible = bool(_LEVEL_PRIORS[best, reading.level - 1] >= HQ_WEIGHT)
        sure = float(level_post[lv - 1] / level_post.sum())
        shown = sure >= LEVEL_SHOW_MIN
        return FusedLabel("cog", c.key, c.suit, float(posterior[best]), lv if shown else None,
                          shown and _v2(reading), cog_hp(lv) if shown else None, agree, source, plausible, sure)
    d = int(reading.dept_probs[: _NONE_DEPT].argmax())
    dept_code = DEPT_CLASSES[d]
    # no range prior for these: the read level itself, when sure enough
    level, v2 = (reading.level, _v2(reading)) if reading.level_conf >= LEVEL_SHOW_MIN else (None, False)
    if best == SKELECOG:
        suit = dept_code if dept_code in SUIT_BY_CODE else (prediction.suit if prediction else None)
        return FusedLabel("skelecog", None, suit, float(posterior[best]), level, v2,
                          None if level is None else cog_hp(level), agree, source, level_conf=reading.level_conf)
    kind = "boardbot" if dept_code == "boardbot" else "unknown"
    suit = dept_code if dept_code in SUIT_BY_CODE or kind == "boardbot" else None
    # Clash's own Cogs follow other HP rules: the level is shown, the HP is not guessed
    return FusedLabel(kind, None, suit, float(posterior[best]), level, v2, None, agree, source,
                      level_conf=reading.level_conf)


def fuse_all(predictions: list[CogPrediction | None], readings: list[TagReading | None]) -> list[FusedLabel]:
    """:func:`fuse` pairwise over two equally long lists."""
    return [fuse(p, r) for p, r in zip(predictions, readings, strict=True)]

