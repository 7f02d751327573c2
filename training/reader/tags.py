"""Rendered Cog nametags for the reader: every tag variant, any line height, any degradation.

A sample is a tag drawn in the game's suit font (the glyph atlas made from
phase_3/models/fonts/vtRemingtonPortable.ttf by ``toonvision render glyphs``) on a translucent
grey card, blended over a street or a random background, degraded (light, scaling, blur, noise,
JPEG), sometimes cut by the screen edge or covered by another tag, then cropped by a jittered
card box and prepared by the runtime's own :func:`toonvision_live.classify.reader.tag_input`.

Variants (fractions of the samples): the three-line tag "Name / Department / Level N" of one of
the 32 Cogs; "Level N v2.0"; Skelecogs ("Skelecog / Department / Level N"); the two-line tag of
old clients ("Name / Level N", department ``none``); Corporate Clash names, its Boardbot
department and made-up names/departments (``other``).  Levels are half uniform 1..50, half in the
Cog's own range (tier..tier+4, up to +8 for HQs), so the reader reads digits, not priors.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from toonvision_live.classify.reader import (
    DEPT_CLASSES,
    INPUT_H,
    INPUT_W,
    MAX_LEVEL,
    NAME_CLASSES,
    tag_input,
)
from toonvision_live.demo.nametag import GlyphFont, rounded_card, suit_font
from toonvision_live.demo.street import make_street_background
from toonvision_live.taxonomy import COGS, SUIT_BY_CODE

#: Corporate Clash's own Cogs and Boardbots (names that are none of the 32): read as ``other``
CLASH_NAMES = (
    "Con Artist", "Connoisseur", "Swindler", "Middleman", "Toxic Manager", "Magnate", "Big Fish",
    "Head Honcho", "Multislacker", "Chainsaw Consultant", "Gatekeeper", "Treekiller", "Featherbedder",
    "Rainmaker", "Bellringer", "Deep Diver", "Tax Collector", "Witch Hunter", "Plutocrat", "Firestarter",
    "Duck Shuffler", "Short Seller", "Land Acquirer", "Major Player", "Case Manager", "Director",
    "Clerk", "President", "Supervisor", "Foreman",
)
OTHER_DEPTS = ("Scibot", "Boardbot", "Techbot", "Lobbybot", "Gadgetbot", "Workbot")
_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_VOWELS = "aeiouy"
BACKGROUND_SEEDS = tuple(range(6))
#: line-height mixture: (probability, low, high) in pixels
EM_MIXTURE = ((0.45, 4.0, 10.0), (0.35, 10.0, 24.0), (0.20, 24.0, 60.0))


@dataclass(frozen=True, slots=True)
class TagMix:
    """How a shard draws its tags: the line-height mixture and the share of two-line tags."""

    em_mixture: tuple[tuple[float, float, float], ...] = EM_MIXTURE
    two_line: float = 0.07
    uniform_level: float = 0.5  # share of levels drawn uniformly from 1..50 (the rest: in the Cog's range)
    rescale: float = 0.35  # chance of the window-scaling degradation (drawn smaller, scaled back up)
    jpeg: float = 0.5  # chance of JPEG compression
    jpeg_quality: tuple[int, int] = (25, 96)  # its quality, drawn from [low, high)


#: the default mix (train, validation and test shards)
DEFAULT_MIX = TagMix()
#: the "focus" shards of stage 5: more of what the stage-4 reader missed (small text, where the
#: level's units digit is lost, and the two-line tags of old clients: 7 % of the tags, 10 % of the misses)
FOCUS_MIX = TagMix(em_mixture=((0.65, 5.0, 14.0), (0.20, 14.0, 30.0), (0.15, 30.0, 60.0)), two_line=0.20)
#: the "small" shards of stage 6: most tags at 4.5-10 px (where stage 5 still missed the level's units
#: digit) and 80 % of the levels uniform over 1..50 (two digits, every units digit equally often)
SMALL_MIX = TagMix(em_mixture=((0.75, 4.5, 10.0), (0.25, 10.0, 30.0)), two_line=0.12, uniform_level=0.8)
#: the "hard" shards of stage 10: small text under the degradations the 5-8 px misses are made of (window
#: rescale, JPEG below 50), drawn more often than in the other mixes; levels as in the default mix
HARD_MIX = TagMix(em_mixture=((0.8, 4.5, 9.0), (0.2, 9.0, 16.0)), two_line=0.10, rescale=0.6, jpeg=0.65,
                  jpeg_quality=(25, 70))


@dataclass(frozen=True, slots=True)
class TagLabel:
    name: int  # index into NAME_CLASSES
    dept: int  # index into DEPT_CLASSES
    level: int  # 1..50
    v2: bool
    lines: tuple[str, ...]
    em: float  # line height in frame pixels
    hidden: bool = False  # partly covered by another tag or cut by the screen edge


@dataclass(frozen=True, slots=True)
class TagSet:
    images: np.ndarray  # [N, INPUT_H, INPUT_W] float16 (tag_input output)
    name: np.ndarray  # [N] int
    dept: np.ndarray
    level: np.ndarray  # 1..50
    v2: np.ndarray  # [N] 0/1
    em: np.ndarray  # [N] float32 line height in pixels
    texts: tuple[str, ...]  # the tag's lines joined by " / "
    hidden: np.ndarray | None = None  # [N] bool: partly covered or cut (None: not recorded)


def _word(rng: np.random.Generator, lo: int = 4, hi: int = 11) -> str:
    n = int(rng.integers(lo, hi + 1))
    chars = [_LETTERS[int(rng.integers(26))] if i % 2 == 0 else _VOWELS[int(rng.integers(6))] for i in range(n)]
    if rng.random() < 0.5:
        rng.shuffle(chars)
    return "".join(chars).capitalize()


def sample_label(rng: np.random.Generator, two_line: float = DEFAULT_MIX.two_line,
                 uniform_level: float = DEFAULT_MIX.uniform_level) -> TagLabel:
    """The text of one random tag and its classes (em left 0; set by the renderer); ``two_line`` is
    the share of the two-line tags of old clients, ``uniform_level`` that of levels uniform over 1..50."""
    u = rng.random()
    cog = COGS[int(rng.integers(len(COGS)))]
    dept_code = cog.suit
    if u < 0.70:
        name_cls, name_text = NAME_CLASSES.index(cog.key), cog.name
    elif u < 0.80:
        name_cls, name_text = NAME_CLASSES.index("skelecog"), "Skelecog"
    else:
        name_cls = NAME_CLASSES.index("other")
        name_text = CLASH_NAMES[int(rng.integers(len(CLASH_NAMES)))] if rng.random() < 0.6 else (
            _word(rng) if rng.random() < 0.6 else f"{_word(rng, 3, 7)} {_word(rng, 4, 9)}")
        if rng.random() < 0.5:
            dept_code = "boardbot"
    if rng.random() < uniform_level:
        level = int(rng.integers(1, MAX_LEVEL + 1))
    else:
        level = int(np.clip(cog.tier + rng.integers(0, 9 if rng.random() < 0.3 else 5), 1, MAX_LEVEL))
    v2 = bool(rng.random() < 0.18)
    dept_text = "Boardbot" if dept_code == "boardbot" else SUIT_BY_CODE[dept_code].name
    dept_cls = DEPT_CLASSES.index(dept_code)
    w = rng.random()
    if w < 0.05:
        dept_text = OTHER_DEPTS[int(rng.integers(len(OTHER_DEPTS)))] if rng.random() < 0.5 else _word(rng, 4, 7) + "bot"
        # "Boardbot" is among the other departments' texts but has its own class (until stage 5 such
        # tags were labelled "other": 0.4 % of the tags, read right and counted wrong)
        dept_cls = DEPT_CLASSES.index("boardbot" if dept_text == "Boardbot" else "other")
    level_text = f"Level {level}" + (" v2.0" if v2 else "")
    if w > 1 - two_line:  # the two-line tag of the earliest clients
        return TagLabel(name_cls, DEPT_CLASSES.index("none"), level, v2, (name_text, level_text), 0.0)
    return TagLabel(name_cls, dept_cls, level, v2, (name_text, dept_text, level_text), 0.0)


def sample_em(rng: np.random.Generator, mixture: tuple[tuple[float, float, float], ...] = EM_MIXTURE) -> float:
    probs = np.array([m[0] for m in mixture])
    lo, hi = mixture[int(rng.choice(len(mixture), p=probs / probs.sum()))][1:]
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def draw_tag(font: GlyphFont, lines: tuple[str, ...], em: float, rng: np.random.Generator) -> np.ndarray:
    """A tag card as straight-alpha RGBA float32 (0..1) at ``em`` pixels per line, style varied."""
    s = font.size_px
    widths = [font.line_width(t) for t in lines]
    pad_x, pad_top, pad_bottom = rng.uniform(0.18, 0.35), rng.uniform(0.28, 0.44), rng.uniform(0.25, 0.40)
    line_gap = rng.uniform(0.95, 1.08)
    first_base = pad_top * s + font.cap_height_px
    cw = int(np.ceil(max(widths) + 2 * pad_x * s))
    ch = int(np.ceil(first_base + (len(lines) - 1) * s * line_gap + pad_bottom * s))
    m = s
    text = np.zeros((ch + 2 * m, cw + 2 * m), np.float32)
    for i, (line, width) in enumerate(zip(lines, widths, strict=True)):
        font.draw_line(text, line, m + (cw - width) / 2, int(round(first_base + i * s * line_gap)) + m)
    text = text[m : m + ch, m : m + cw]
    card = rounded_card((cw, ch), int(rng.uniform(0.2, 0.4) * s), np.float32, 1.0)
    k = em / s
    out_wh = (max(3, int(round(cw * k))), max(3, int(round(ch * k))))
    interp = cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR
    text = np.clip(cv2.resize(text, out_wh, interpolation=interp), 0, 1) ** rng.uniform(0.6, 1.0)
    card = cv2.resize(card, out_wh, interpolation=interp)
    text_rgb = np.full(3, rng.uniform(0.03, 0.22), np.float32)
    if len(lines) and lines[-1].endswith("v2.0") and rng.random() < 0.3:
        text_rgb = np.array([rng.uniform(0.5, 0.8), 0.05, 0.05], np.float32)  # Clash's red V2.0
    card_rgb = np.full(3, rng.uniform(0.72, 0.88), np.float32) + rng.uniform(-0.03, 0.03, 3).astype(np.float32)
    a_card = card[:, :, None] * rng.uniform(0.35, 0.7)
    t = text[:, :, None]
    alpha = t + a_card * (1 - t)
    rgb = (text_rgb * t + card_rgb * a_card * (1 - t)) / np.maximum(alpha, 1e-6)
    return np.dstack([rgb, alpha]).astype(np.float32)


class _Backgrounds:
    def __init__(self) -> None:
        self.streets = [make_street_background((960, 540), seed)[0] for seed in BACKGROUND_SEEDS]

    def patch(self, w: int, h: int, rng: np.random.Generator) -> np.ndarray:
        u = rng.random()
        if u < 0.65:
            src = self.streets[int(rng.integers(len(self.streets)))]
            z = rng.uniform(0.3, 2.5)
            sw, sh = min(src.shape[1], max(4, int(w / z))), min(src.shape[0], max(4, int(h / z)))
            x, y = int(rng.integers(0, src.shape[1] - sw + 1)), int(rng.integers(0, src.shape[0] - sh + 1))
            part = cv2.resize(src[y : y + sh, x : x + sw], (w, h), interpolation=cv2.INTER_LINEAR)
            return part.astype(np.float32) / 255
        if u < 0.85:  # smooth random colour field
            small = rng.uniform(0, 1, (int(rng.integers(2, 6)), int(rng.integers(2, 6)), 3)).astype(np.float32)
            return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC).clip(0, 1)
        base = rng.uniform(0, 1, 3).astype(np.float32)  # flat colour with noise
        return np.clip(base + rng.normal(0, rng.uniform(0, 0.15), (h, w, 3)).astype(np.float32), 0, 1)


@lru_cache(maxsize=1)
def _backgrounds() -> _Backgrounds:
    return _Backgrounds()


def _blend(dst: np.ndarray, rgba: np.ndarray, x: int, y: int) -> None:
    h, w = rgba.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, dst.shape[1]), min(y + h, dst.shape[0])
    if x0 >= x1 or y0 >= y1:
        return
    src = rgba[y0 - y : y1 - y, x0 - x : x1 - x]
    a = src[:, :, 3:4]
    dst[y0:y1, x0:x1] = src[:, :, :3] * a + dst[y0:y1, x0:x1] * (1 - a)


def _degrade(img: np.ndarray, em: float, rng: np.random.Generator,
             record: dict[str, float] | None = None, mix: TagMix = DEFAULT_MIX) -> np.ndarray:
    """Light, window scaling, blur, noise and JPEG on a float RGB patch; returns uint8 RGB.  ``record``,
    when given, gets what was applied (``light``, ``rescale`` factor, ``blur`` sigma in pixels,
    ``noise`` sigma, ``jpeg`` quality); ``mix`` sets how often the window rescale and JPEG come (the random
    draws are the same for every mix, so a seed's tag differs between mixes only by those choices)."""
    rec: dict[str, float] = {} if record is None else record
    if rng.random() < 0.5:  # night, tint, contrast
        img = img * rng.uniform(0.55, 1.1, 3).astype(np.float32) + rng.uniform(-0.08, 0.08)
        img = np.clip(img, 0, 1) ** rng.uniform(0.7, 1.4)
        rec["light"] = 1.0
    h, w = img.shape[:2]
    if rng.random() < mix.rescale:  # drawn smaller and scaled up (window scaling, mipmapped text)
        f = rng.uniform(0.5, 0.95)
        small = cv2.resize(img, (max(2, int(w * f)), max(2, int(h * f))), interpolation=cv2.INTER_AREA)
        img = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR if rng.random() < 0.7 else cv2.INTER_NEAREST)
        rec["rescale"] = f
    if rng.random() < 0.35:
        rec["blur"] = sigma = rng.uniform(0.3, 0.5 + 0.06 * em)
        img = cv2.GaussianBlur(img, (0, 0), sigma)
    if rng.random() < 0.3:
        rec["noise"] = sd = rng.uniform(0.005, 0.04)
        img = img + rng.normal(0, sd, img.shape).astype(np.float32)
    out = np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8)
    if rng.random() < mix.jpeg:
        q = int(rng.integers(*mix.jpeg_quality))
        ok, buf = cv2.imencode(".jpg", out[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, q])
        if ok:
            out = np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1])
            rec["jpeg"] = q
    return out


class TagRenderer:
    """Renders degraded tag crops and their labels, reproducibly from a seed."""

    def __init__(self) -> None:
        self.font = suit_font()
        self.backgrounds = _backgrounds()
        #: the degradations of the last sample (see :func:`_degrade`; empty: none, or not degraded)
        self.last_degradations: dict[str, float] = {}

    def sample(self, rng: np.random.Generator, label: TagLabel | None = None, em: float | None = None,
               degrade: bool = True, mix: TagMix = DEFAULT_MIX,
               ) -> tuple[np.ndarray, tuple[int, int, int, int], TagLabel]:
        """(patch uint8 RGB, card box in the patch, label) of one tag on its background."""
        label = label or sample_label(rng, mix.two_line, mix.uniform_level)
        em = em if em is not None else sample_em(rng, mix.em_mixture)
        tag = draw_tag(self.font, label.lines, em, rng)
        th, tw = tag.shape[:2]
        margin = int(np.ceil(em * 1.5)) + 2
        bg = self.backgrounds.patch(tw + 2 * margin, th + 2 * margin, rng)
        _blend(bg, tag, margin, margin)
        box = [margin, margin, margin + tw, margin + th]
        hidden = False
        if rng.random() < 0.10:  # covered by a nearer Cog's tag
            hidden = True
            other = draw_tag(self.font, sample_label(rng).lines, em * rng.uniform(0.9, 1.5), rng)
            oh, ow = other.shape[:2]
            side = int(rng.integers(4))
            cover = rng.uniform(0.1, 0.3)
            ox = margin + int(rng.uniform(-0.5, 0.5) * tw) + (tw - ow) // 2
            oy = margin + int(rng.uniform(-0.5, 0.5) * th) + (th - oh) // 2
            if side == 0:
                oy = margin - oh + int(cover * th)
            elif side == 1:
                oy = margin + th - int(cover * th)
            elif side == 2:
                ox = margin - ow + int(cover * tw)
            else:
                ox = margin + tw - int(cover * tw)
            _blend(bg, other, ox, oy)
        self.last_degradations = {}
        patch = (_degrade(bg, em, rng, self.last_degradations, mix) if degrade
                 else np.clip(bg * 255 + 0.5, 0, 255).astype(np.uint8))
        j = rng.uniform(-0.12, 0.3, 4) * em  # the crop stage's box is a little loose or tight
        x0, y0, x1, y1 = box[0] - j[0], box[1] - j[1], box[2] + j[2], box[3] + j[3]
        if rng.random() < 0.08:  # cut by the screen edge
            hidden = True
            cut = rng.uniform(0.05, 0.2)
            side = int(rng.integers(4))
            if side == 0:
                x0 += cut * tw
            elif side == 1:
                x1 -= cut * tw
            elif side == 2:
                y0 += cut * th * 0.5
            else:
                y1 -= cut * th * 0.5
        out_box = (int(round(x0)), int(round(y0)), int(round(x1)), int(round(y1)))
        return patch, out_box, TagLabel(label.name, label.dept, label.level, label.v2, label.lines, em, hidden)


def iter_tag_samples(n: int, seed: int, renderer: TagRenderer | None = None,
                     em_range: tuple[float, float] | None = None, mix: TagMix = DEFAULT_MIX):
    """The ``n`` (patch, box, label) samples behind :func:`render_tag_set` of the same seed."""
    renderer = renderer or TagRenderer()
    rng = np.random.default_rng([seed, 0x7A6])
    for _ in range(n):
        em = float(np.exp(rng.uniform(*np.log(em_range)))) if em_range else None
        yield renderer.sample(rng, em=em, mix=mix)


def render_tag_set(n: int, seed: int, renderer: TagRenderer | None = None,
                   em_range: tuple[float, float] | None = None, mix: TagMix = DEFAULT_MIX) -> TagSet:
    """``n`` prepared reader inputs with labels; the same ``seed`` gives the same set."""
    images = np.empty((n, INPUT_H, INPUT_W), np.float16)
    cols: dict[str, list] = {k: [] for k in ("name", "dept", "level", "v2", "em", "hidden")}
    texts = []
    buf = np.empty((INPUT_H, INPUT_W), np.float32)
    for i, (patch, box, label) in enumerate(iter_tag_samples(n, seed, renderer, em_range, mix)):
        images[i] = tag_input(patch, box, out=buf)
        for key in cols:
            cols[key].append(getattr(label, key))
        texts.append(" / ".join(label.lines))
    return TagSet(images, np.array(cols["name"], np.int32), np.array(cols["dept"], np.int32),
                  np.array(cols["level"], np.int32), np.array(cols["v2"], np.int32),
                  np.array(cols["em"], np.float32), tuple(texts), np.array(cols["hidden"], bool))


def save_tag_set(path, tags: TagSet) -> None:
    """Write a TagSet as one .npz (uncompressed, float16 images)."""
    import io
    from pathlib import Path

    from toonvision_live.fileio import atomic_write_bytes

    buf = io.BytesIO()
    np.savez(buf, images=tags.images, name=tags.name, dept=tags.dept, level=tags.level, v2=tags.v2,
             em=tags.em, texts=np.array(tags.texts),
             hidden=tags.hidden if tags.hidden is not None else np.zeros(len(tags.name), bool))
    atomic_write_bytes(Path(path), buf.getvalue(), overwrite=True)


def load_tag_set(path) -> TagSet:
    """A saved TagSet; tags whose department line says "Boardbot" get the ``boardbot`` class (shards
    rendered before stage 5 labelled the ones drawn among the other departments ``other``)."""
    with np.load(path) as z:
        hidden = z["hidden"] if "hidden" in z.files else None
        texts = tuple(z["texts"].tolist())
        dept = np.array(z["dept"])
        dept[[i for i, t in enumerate(texts) if t.count(" / ") == 2 and t.split(" / ")[1] == "Boardbot"]] = (
            DEPT_CLASSES.index("boardbot"))
        return TagSet(z["images"], z["name"], dept, z["level"], z["v2"], z["em"], texts, hidden)
