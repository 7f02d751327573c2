"""overlay.py: the real PyQt6 overlay on Xvfb with the xcompmgr compositor, read back with mss, and the
LiveSession around it (real capture, real tiny onnxruntime model, real saver)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
from model_factory import make_tiny_model
from test_pipeline import street_frame

from toonvision_live.capture.stage import ScreenSource, bgra_to_rgb
from toonvision_live.capture.window import x11_compositor_running
from toonvision_live.classify.classifier import CogClassifier
from toonvision_live.classify.fusion import FusedLabel
from toonvision_live.demo.scene import SceneFrame
from toonvision_live.demo.window import DEMO_WINDOW_PATTERN, DemoWindow
from toonvision_live.errors import SaveError
from toonvision_live.fileio import read_image_rgb
from toonvision_live.find.nametags import propose_cog_boxes
from toonvision_live.frames import Frame
from toonvision_live.geometry import ScreenRect
from toonvision_live.pipeline import FrameResult, StageTimes
from toonvision_live.saver import SavedFrame
from toonvision_live.settings import load_settings
from toonvision_live.track import TrackedCog
from toonvision_live.ui.overlay import (
    OverlayWindow,
    cog_caption,
    cogs_summary,
    place_label_cards,
    suit_color,
)
from toonvision_live.ui.session import LiveSession


class StaticScene:
    """A scene that always shows one image (for DemoWindow in tests)."""

    def __init__(self, rgb: np.ndarray) -> None:
        self.rgb = rgb
        self.size_wh = (rgb.shape[1], rgb.shape[0])

    def frame(self, t_seconds: float) -> SceneFrame:
        return SceneFrame(self.rgb, (), ())


def grab(rect: ScreenRect) -> np.ndarray:
    import mss

    with mss.MSS() as sct:
        return bgra_to_rgb(np.asarray(sct.grab(rect.as_mss())))


def fake_result(rect: ScreenRect, cogs: tuple[TrackedCog, ...], index: int = 1) -> FrameResult:
    frame = Frame(index, np.zeros((rect.height, rect.width, 3), np.uint8), time.perf_counter(), 0.001, rect)
    return FrameResult(
        frame, (), cogs, StageTimes(1, 0, 1, 1, 1, 0), time.perf_counter(), "CPUExecutionProvider", index
    )


@dataclass(frozen=True)
class _Cog:
    cog: str
    suit: str
    confidence: float
    agree: bool = True
    fused: FusedLabel | None = None


def test_captions():
    assert cog_caption(_Cog("coldcaller", "sb", 0.97), 0.5) == "Cold Caller · Sellbot 97%"
    assert cog_caption(_Cog("bigwig", "lb", 0.31), 0.5) == "Big Wig? · Lawbot 31%"
    assert cog_caption(_Cog("flunky", "lb", 0.8, agree=False), 0.5) == "Flunky · Lawbot 80% !"
    # once the nametag is read: level and HP (TTR: (L+1)(L+2) up to level 11)
    read = FusedLabel("cog", "headhunter", "bb", 0.9, 10, False, 132, True, "both")
    assert cog_caption(_Cog("headhunter", "bb", 0.9, fused=read), 0.5) == "Head Hunter · Lv 10 · 132 HP"
    unsure = FusedLabel("cog", "headhunter", "bb", 0.3, 10, False, 132, False, "both")
    assert cog_caption(_Cog("headhunter", "bb", 0.3, agree=False, fused=unsure), 0.5) \
        == "Head Hunter? · Lv 10 · 132 HP !"
    # a level too unsure to show: the body's caption; a Skelecog without a level: still a Skelecog
    no_level = FusedLabel("cog", "headhunter", "bb", 0.9, None, False, None, True, "both", level_conf=0.3)
    assert cog_caption(_Cog("headhunter", "bb", 0.9, fused=no_level), 0.5) == "Head Hunter · Bossbot 90%"
    skele = FusedLabel("skelecog", None, "sb", 0.9, None, False, None, None, "tag", level_conf=0.3)
    assert cog_caption(_Cog("flunky", "bb", 0.9, fused=skele), 0.5) == "Skelecog (Sellbot)"


def test_the_status_line_counts_cogs_and_their_hp():
    """What a player plans gags by: how many Cogs are in view and their HP together (v2.0: both layers)."""
    head = FusedLabel("cog", "headhunter", "bb", 0.9, 10, False, 132, True, "both")
    v2 = FusedLabel("cog", "flunky", "bb", 0.9, 2, True, 12, True, "both")
    unsure = FusedLabel("cog", "flunky", "bb", 0.9, None, False, None, True, "both", level_conf=0.2)
    assert cogs_summary([]) == ""
    assert cogs_summary([_Cog("coldcaller", "sb", 0.97)]) == "1 Cog"
    assert cogs_summary([_Cog("headhunter", "bb", 0.9, fused=head), _Cog("flunky", "bb", 0.9, fused=v2)]) \
        == "2 Cogs · 156 HP"
    assert cogs_summary([_Cog("headhunter", "bb", 0.9, fused=head), _Cog("flunky", "bb", 0.9, fused=unsure),
                         _Cog("coldcaller", "sb", 0.97)]) == "3 Cogs · 132+ HP"
    # a card marked "?" (under min_confidence) is counted, its HP is not
    assert cogs_summary([_Cog("headhunter", "bb", 0.9, fused=head), _Cog("flunky", "bb", 0.6, fused=v2)], 0.7) \
        == "2 Cogs · 132+ HP"


def test_label_cards_keep_clear_of_nametags():
    size = (1280, 720)
    # free sky above the tag: the card sits just above it
    assert place_label_cards([(100, 300, 160, 480)], [(90, 250, 170, 290)], [(120, 20)], size) == [(70, 222, 190, 242)]
    # another Cog's tag right above: the card moves below the feet instead of hiding that tag
    cards = place_label_cards(
        [(100, 300, 160, 480), (400, 100, 470, 400)],
        [(90, 250, 170, 290), (60, 200, 180, 240)],
        [(120, 20), (120, 20)],
        size,
    )
    assert cards[0] == (70, 488, 190, 508)
    # at the top edge the card is clamped into the frame; two neighbours' cards never overlap
    cards = place_label_cards(
        [(100, 40, 160, 200), (150, 40, 210, 200)], [(90, 5, 170, 30), (140, 5, 220, 30)], [(120, 20), (120, 20)], size
    )
    for card in cards:
        assert card[0] >= 0 and card[2] <= 1280 and card[1] >= 0 and card[3] <= 720
    a, b = cards
    assert min(a[2], b[2]) <= max(a[0], b[0]) or min(a[3], b[3]) <= max(a[1], b[1])
    for card in cards:  # and neither covers a tag
        for tag in ((90, 5, 170, 30), (140, 5, 220, 30)):
            assert min(card[2], tag[2]) <= max(card[0], tag[0]) or min(card[3], tag[3]) <= max(card[1], tag[1])
    assert place_label_cards([], [], [], size) == []


def test_label_cards_also_avoid_tags_seen_lately_but_missing_now():
    size = (1280, 720)
    body, tag, card = [(100, 300, 160, 480)], [(90, 250, 170, 290)], [(120, 20)]
    lost = (60, 200, 180, 240)  # another Cog's tag, missing from this result only
    assert place_label_cards(body, tag, card, size, avoid_xyxy=[lost]) == [(70, 488, 190, 508)]
    # the Cog's own earlier tags (overlapping its tag now) do not push its card away
    assert place_label_cards(body, tag, card, size, avoid_xyxy=[(94, 252, 174, 292)]) == [(70, 222, 190, 242)]


def _placed_naively(bodies, tags, sizes, size_wh, gap, avoid):
    """The placement rule written out pair by pair (what place_label_cards computes with arrays)."""
    def cover(a, b):
        return max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))

    def grown(t):
        return (t[0] - 6, t[1] - 6, t[2] + 6, t[3] + 6)

    shown = [grown(t) for t in tags if t is not None]
    lost = [grown(t) for t in avoid if not any(cover(t, u) for u in shown)]
    placed = []
    for body, tag, (w, h) in zip(bodies, tags, sizes, strict=True):
        centre, top = (body[0] + body[2]) // 2, body[1] if tag is None else tag[1]
        spots = [(centre - w // 2, top - gap - h), (centre - w // 2, body[3] + gap)]
        spots += [] if tag is None else [(tag[0] - gap - w, tag[1]), (tag[2] + gap, tag[1])]
        best = None
        for left, upper in spots:
            left, upper = max(0, min(left, size_wh[0] - w)), max(0, min(upper, size_wh[1] - h))
            card = (left, upper, left + w, upper + h)
            cost = (100 * sum(cover(card, t) for t in shown) + 30 * sum(cover(card, t) for t in lost)
                    + 10 * sum(cover(card, c) for c in placed) + 4 * sum(cover(card, b) for b in bodies))
            if best is None or cost < best[0]:
                best = (cost, card)
        placed.append(best[1])
    return placed


def test_label_cards_are_placed_as_the_rule_says_on_random_crowds():
    from toonvision_live.ui.cards import CardPlacer

    placer = CardPlacer()
    rng = np.random.default_rng(3)
    for _ in range(300):
        width, height = (1280, 720) if rng.random() < 0.7 else (320, 200)
        n = int(rng.integers(0, 10))
        bodies, tags, sizes = [], [], []
        for _ in range(n):
            x, y = int(rng.integers(-20, width)), int(rng.integers(-20, height))
            w, h = int(rng.integers(5, 200)), int(rng.integers(5, 300))
            bodies.append((x, y, x + w, y + h))
            tags.append(None if rng.random() < 0.2 else (x - 10, y - int(rng.integers(20, 60)), x + w + 10, y - 4))
            sizes.append((int(rng.integers(50, 300)), int(rng.integers(15, 30))))
        avoid = []
        for _ in range(int(rng.integers(0, 200))):
            x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
            avoid.append((x, y, x + int(rng.integers(10, 150)), y + int(rng.integers(10, 50))))
        expected = _placed_naively(bodies, tags, sizes, (width, height), 8, avoid)
        assert place_label_cards(bodies, tags, sizes, (width, height), 8, avoid) == expected
        avoid_array = np.array(avoid).reshape(-1, 4)
        assert place_label_cards(bodies, tags, sizes, (width, height), 8, avoid_array) == expected
        # the overlay's placer remembers its last answer: asked again (or after others) it still answers right
        for _ in range(2):
            assert placer(bodies, tags, sizes, (width, height), 8, avoid_array) == expected


def test_a_drawing_s_parts_hold_every_pixel_it_paints(x_display, qtbot):
    """The overlay repaints only the parts of the old and new drawings: a pixel painted outside them
    would stay behind as a trail when the Cog walks on."""
    from PyQt6.QtGui import QColor, QImage, QPainter

    from toonvision_live.ui.overlay import CogDrawing

    for body in ((40, 50, 160, 330), (30, 30, 36, 41), (100, 60, 170, 64)):
        image = QImage(400, 400, QImage.Format.Format_ARGB32_Premultiplied)
        image.fill(QColor(0, 0, 0, 0))
        drawing = CogDrawing(body, (200, 10, 320, 33), "Cold Caller · Sellbot 97%", suit_color("sb"))
        painter = QPainter(image)
        OverlayWindow._corners(painter, drawing.body, drawing.color)
        painter.fillRect(drawing.card_rect, drawing.color)
        painter.end()
        alpha = np.frombuffer(image.constBits().asstring(image.sizeInBytes()), np.uint8).reshape(400, 400, 4)[..., 3]
        inside = np.zeros((400, 400), bool)
        for part in drawing.parts():
            inside[part.top() : part.bottom() + 1, part.left() : part.right() + 1] = True
        assert alpha.any() and not (alpha[~inside] > 0).any(), body
        assert drawing.extent.contains(drawing.card_rect)


def test_suit_colours_are_saturated():
    for code in ("bb", "lb", "cb", "sb"):
        color = suit_color(code)
        assert color.hsvSaturationF() > 0.5, code


def test_overlay_is_a_click_through_translucent_topmost_tool_window(x_display, qtbot):
    overlay = OverlayWindow(provider="CPUExecutionProvider")
    qtbot.addWidget(overlay)
    from PyQt6.QtCore import Qt

    flags = overlay.windowFlags()
    for flag in (
        Qt.WindowType.FramelessWindowHint,
        Qt.WindowType.WindowStaysOnTopHint,
        Qt.WindowType.Tool,
        Qt.WindowType.WindowTransparentForInput,
    ):
        assert flags & flag == flag, flag
    assert overlay.testAttribute(Qt.WidgetAttribute.WA_TranslucentBackground)
    assert overlay.windowTitle() == "ToonVision Live overlay"
    assert x11_compositor_running() is True  # the fixture runs xcompmgr


def _pixels_near(image: np.ndarray, rgb: tuple[int, int, int], tol: int = 40) -> np.ndarray:
    return np.abs(image.astype(int) - np.array(rgb)).sum(axis=2) < tol


def test_overlay_sits_on_the_frame_and_draws_boxes_and_suit_cards(x_display, qtbot):
    background = np.full((400, 600, 3), (70, 110, 70), np.uint8)
    window = DemoWindow(StaticScene(background), title="overlay backdrop")
    qtbot.addWidget(window)
    window.move(300, 200)
    window.show()
    qtbot.waitExposed(window)
    overlay = OverlayWindow(provider="CPUExecutionProvider")
    qtbot.addWidget(overlay)
    rect = ScreenRect(300, 200, 600, 400)
    cogs = (
        TrackedCog(1, (50, 60, 120, 260), "sb", "coldcaller", 0.97, True),
        TrackedCog(2, (300, 40, 380, 300), "lb", "bigwig", 0.88, True),
    )
    overlay.show_result(fake_result(rect, cogs))
    overlay.show()
    qtbot.waitExposed(overlay)
    qtbot.waitUntil(lambda: bool(overlay.paint_records), timeout=3000)
    g = overlay.geometry()
    assert (g.x(), g.y(), g.width(), g.height()) == (300, 200, 600, 400)
    sellbot, lawbot = suit_color("sb"), suit_color("lb")
    sb_rgb, lb_rgb = (
        (sellbot.red(), sellbot.green(), sellbot.blue()),
        (lawbot.red(), lawbot.green(), lawbot.blue()),
    )

    def drawn() -> bool:
        image = grab(rect)
        above_sb = image[60 - 8 - 20 : 60 - 8, 85 - 30 : 85 + 30]  # the card above the Sellbot (no tag given)
        above_lb = image[40 - 8 - 20 : 40 - 8, 340 - 30 : 340 + 30]
        return _pixels_near(above_sb, sb_rgb, 60).mean() > 0.3 and _pixels_near(above_lb, lb_rgb, 60).mean() > 0.3

    qtbot.waitUntil(drawn, timeout=3000)
    image = grab(rect)
    inside = image[70:250, 60:110]  # inside the Sellbot's box: untouched backdrop
    assert _pixels_near(inside, (70, 110, 70), 20).mean() > 0.95
    # cards are saturated (HSV S >= 100), never a light-grey, nametag-like card
    hsv = cv2.cvtColor(image[60 - 8 - 20 : 60 - 8, 85 - 30 : 85 + 30], cv2.COLOR_RGB2HSV)
    assert np.median(hsv[..., 1]) > 100
    record = overlay.paint_records[-1]
    assert record.result_index == 1 and record.latency_ms >= 0 and record.paint_ms >= 0
    # the worker is told where the cards are (frame pixels), so crops under them do not vote
    assert len(overlay.drawn_cards) >= 2
    assert any(c[0] <= 85 <= c[2] and c[3] <= 60 for c in overlay.drawn_cards)
    assert overlay.cards.read() == overlay.drawn_cards  # published, so no other thread reads the widget
    # only the changed parts are repainted: a Cog that walked on leaves no trail behind
    moved = (TrackedCog(1, (50 + 150, 60, 120 + 150, 260), "sb", "coldcaller", 0.97, True), cogs[1])
    overlay.show_result(fake_result(rect, moved, index=2))

    def moved_clean() -> bool:
        image = grab(rect)
        old_card = image[60 - 8 - 20 : 60 - 8, 85 - 30 : 85 + 30]
        new_card = image[60 - 8 - 20 : 60 - 8, 235 - 30 : 235 + 30]
        old_box = image[50:70, 40:60]  # the old top-left bracket
        return (_pixels_near(old_card, (70, 110, 70), 20).mean() > 0.95
                and _pixels_near(old_box, (70, 110, 70), 20).mean() > 0.95
                and _pixels_near(new_card, sb_rgb, 60).mean() > 0.3)

    qtbot.waitUntil(moved_clean, timeout=3000)
    # a waiting message clears the boxes; a flash shows
    overlay.set_message("The window 'Toontown Rewritten' is minimised or hidden: paused until it is shown.")
    overlay.flash("Saved x.png with 2 Cog crop(s)")
    assert overlay.result is None and overlay.flash_text.startswith("Saved")
    qtbot.waitUntil(lambda: not drawn(), timeout=3000)
    overlay.set_paused(True)
    assert "PAUSED" in overlay.status_text()
    overlay.show_result(fake_result(rect, moved, index=3))
    assert "2 Cogs" in overlay.status_text()


def test_the_crop_stage_is_not_fooled_by_the_overlay(x_display, qtbot):
    """Captured with the overlay on top, the Cogs are proposed as without it, and the overlay's own
    labels, boxes and status line over an empty street give no proposal."""
    frame = street_frame()
    window = DemoWindow(StaticScene(frame), title="overlay crop check")
    qtbot.addWidget(window)
    window.move(0, 0)
    window.show()
    qtbot.waitExposed(window)
    rect = ScreenRect(0, 0, 1280, 720)
    qtbot.waitUntil(lambda: np.abs(grab(rect).astype(int) - frame).mean() < 2, timeout=3000)
    bare = propose_cog_boxes(grab(rect))
    assert len(bare) == 4
    overlay = OverlayWindow(provider="CPUExecutionProvider")
    qtbot.addWidget(overlay)
    cogs = tuple(
        TrackedCog(i, p.body_xyxy, s, k, 0.9, True, tag_xyxy=p.tag_xyxy)
        for i, (p, s, k) in enumerate(
            zip(bare, ("bb", "lb", "cb", "sb"), ("flunky", "bigwig", "moneybags", "mrhollywood"), strict=True)
        )
    )
    # plus labels floating over the empty sky and ground
    cogs += (
        TrackedCog(9, (600, 20, 700, 200), "sb", "coldcaller", 0.99, True),
        TrackedCog(10, (900, 50, 1000, 250), "lb", "backstabber", 0.4, False),
    )
    overlay.show_result(fake_result(rect, cogs))
    overlay.flash("Saved 2026-11-23_12-00-00-000.png with 4 Cog crop(s)")
    overlay.show()
    qtbot.waitExposed(overlay)
    qtbot.waitUntil(lambda: np.abs(grab(rect).astype(int) - frame).mean() > 0.3, timeout=3000)
    covered = propose_cog_boxes(grab(rect))
    assert len(covered) == 4
    for before, after in zip(sorted(p.body_xyxy for p in bare), sorted(p.body_xyxy for p in covered), strict=True):
        assert np.abs(np.subtract(before, after)).max() <= 8
    # over an empty street, the overlay's drawings alone are never proposed as Cogs
    window.scene.rgb = street_frame(0)
    window.advance()
    qtbot.waitUntil(lambda: len(propose_cog_boxes(grab(rect))) == 0, timeout=3000)


# ---- LiveSession --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_classifier(tmp_path_factory) -> CogClassifier:
    return CogClassifier(make_tiny_model(tmp_path_factory.mktemp("model")), ["cpu"])


@pytest.fixture
def demo_window(x_display, qtbot):
    window = DemoWindow(StaticScene(street_frame()))
    qtbot.addWidget(window)
    window.move(40, 30)
    window.show()
    window.start()
    qtbot.waitExposed(window)
    yield window
    window.stop()


def _session(tmp_path: Path, classifier, dataset: Path | None = None) -> LiveSession:
    # plain rectangles under real nametags (test_pipeline.street_frame): only the nametag search takes them
    # for Cogs; the learned detector (the default crop stage) rightly does not
    settings = load_settings(overrides={"window": DEMO_WINDOW_PATTERN, "crop_stage": "nametags",
                                        "dataset": str(dataset or tmp_path)})
    return LiveSession(settings, ScreenSource.from_settings(settings), classifier, hotkeys=False)


def test_session_overlays_the_demo_window_and_saves(demo_window, qtbot, tmp_path, tiny_classifier):
    session = _session(tmp_path, tiny_classifier)
    session.start()
    try:
        qtbot.waitUntil(lambda: session.last_result is not None and len(session.last_result.cogs) == 4, timeout=10000)
        g = session.overlay.geometry()
        assert (g.x(), g.y(), g.width(), g.height()) == (40, 30, 1280, 720)
        qtbot.waitUntil(lambda: len(session.overlay.paint_records) >= 3, timeout=5000)
        session.on_action("save")
        qtbot.waitUntil(lambda: bool(session.saves), timeout=5000)
        saved = session.saves[0]
        assert isinstance(saved, SavedFrame) and len(saved.crops) == 4
        assert session.overlay.flash_text.startswith("Saved ") and session.overlay.isVisible()
        # the overlay was hidden for that grab: the saved frame is the bare game picture
        assert np.abs(read_image_rgb(saved.screenshot).astype(int) - street_frame()).mean() < 1.0
        session.on_action("pause")
        assert session.save_current() is False and "resume capture" in session.overlay.flash_text
        session.on_action("pause")
        session.on_action("pause")
        assert session.pipeline.paused and "PAUSED" in session.overlay.status_text()
        session.on_action("pause")
        assert not session.pipeline.paused
        session.on_action("toggle_overlay")
        assert not session.overlay.isVisible()
        session.on_action("toggle_overlay")
        assert session.overlay.isVisible()
    finally:
        session.stop()
    assert session.exit_reason == "" and not session.pipeline.running


def test_a_failing_save_is_reported_and_the_overlay_keeps_running(
    demo_window, qtbot, tmp_path, tiny_classifier, capsys
):
    session = _session(tmp_path, tiny_classifier, dataset=tmp_path / "not" / "there")
    session.start()
    try:
        qtbot.waitUntil(lambda: session.last_result is not None, timeout=10000)
        session.on_action("save")
        qtbot.waitUntil(lambda: bool(session.saves), timeout=5000)
        assert isinstance(session.saves[0], SaveError)
        assert "does not exist" in session.overlay.flash_text
        assert "does not exist" in capsys.readouterr().err
        before = session.last_result.index
        qtbot.waitUntil(lambda: session.last_result.index > before + 3, timeout=5000)  # still running
        assert session.overlay.isVisible() and session.exit_reason is None
    finally:
        session.stop()


def test_a_dead_stage_ends_the_session_with_its_reason(demo_window, qtbot, tmp_path, tiny_classifier, capsys):
    class Exploding:
        provider = "CPUExecutionProvider"

        def classify(self, batch):
            raise RuntimeError("the GPU fell off")

    session = _session(tmp_path, Exploding())
    with qtbot.waitSignal(session.finished, timeout=10000) as signal:
        session.start()
    assert signal.args == ["The inference stage stopped: RuntimeError: the GPU fell off"]
    assert session.exit_reason == signal.args[0]
    assert not session.overlay.isVisible()
    assert all(stage.join(1) for stage in session.pipeline.stages)
    assert "the GPU fell off" in capsys.readouterr().err


def test_a_save_with_no_new_frame_times_out_and_says_so(demo_window, qtbot, tmp_path, tiny_classifier, monkeypatch):
    monkeypatch.setattr("toonvision_live.ui.session.SAVE_TIMEOUT_S", 0.5)
    session = _session(tmp_path, tiny_classifier)
    session.start()
    try:
        qtbot.waitUntil(lambda: session.last_result is not None, timeout=10000)
        demo_window.hide()  # the game is minimised: no frame comes
        qtbot.waitUntil(lambda: "minimised or hidden" in session.overlay.message, timeout=5000)
        assert session.save_current() is True
        qtbot.waitUntil(lambda: "Nothing saved" in session.overlay.flash_text, timeout=3000)
        assert session.overlay.isVisible() and session.saves == []
        demo_window.show()
        qtbot.waitUntil(lambda: session.overlay.message == "", timeout=5000)
    finally:
        session.stop()


def test_the_same_cogs_again_keep_their_drawings_and_a_cleared_overlay_draws_them_anew(x_display, qtbot):
    overlay = OverlayWindow(provider="CPUExecutionProvider")
    qtbot.addWidget(overlay)
    rect = ScreenRect(0, 0, 600, 400)
    cogs = (TrackedCog(1, (50, 60, 120, 260), "sb", "coldcaller", 0.97, True, hits=3, tag_xyxy=(40, 20, 130, 50)),)
    overlay.show_result(fake_result(rect, cogs, index=1))
    first = overlay._drawings
    assert len(first) == 1 and first[0].caption == "Cold Caller · Sellbot 97%"
    again = (TrackedCog(1, (50, 60, 120, 260), "sb", "coldcaller", 0.97, True, hits=4, tag_xyxy=(40, 20, 130, 50)),)
    overlay.show_result(fake_result(rect, again, index=2))
    assert overlay._drawings is first  # only the hit count changed: nothing to lay out or repaint
    surer = (TrackedCog(1, (50, 60, 120, 260), "sb", "coldcaller", 0.99, True, hits=5, tag_xyxy=(40, 20, 130, 50)),)
    overlay.show_result(fake_result(rect, surer, index=3))
    assert overlay._drawings[0].caption == "Cold Caller · Sellbot 99%"
    overlay.set_message("The game window is gone; waiting for it.")
    assert overlay._drawings == []
    overlay.show_result(fake_result(rect, surer, index=4))  # the same Cog as before the message
    assert len(overlay._drawings) == 1 and overlay._drawings[0].caption == "Cold Caller · Sellbot 99%"
    overlay.show_result(fake_result(rect, (), index=5))
    overlay.show_result(fake_result(rect, surer, index=6))
    assert len(overlay._drawings) == 1
