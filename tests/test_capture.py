"""frames.py and capture.py: the one-slot mailbox, and real mss grabs of real X windows under Xvfb."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from test_window import XTestWindow

from toonvision_live.capture.stage import CaptureThread, ScreenSource, bgra_to_rgb
from toonvision_live.capture.window import X11WindowFinder
from toonvision_live.errors import CaptureError
from toonvision_live.frames import LatestFrame, MailboxClosed, RecordedSource
from toonvision_live.geometry import ScreenRect
from toonvision_live.settings import load_settings

RED = (220, 30, 30)
GREEN = (30, 200, 60)


# ---- LatestFrame ------------------------------------------------------------------------------


def test_latest_frame_keeps_only_the_newest_and_counts_drops():
    box: LatestFrame[int] = LatestFrame()
    assert box.put(1) is True
    assert box.put(2) is False
    assert box.put(3) is False
    assert (box.dropped, box.put_count) == (2, 3)
    assert box.get(timeout=0) == 3
    assert box.take() is None
    with pytest.raises(TimeoutError):
        box.get(timeout=0.01)


def test_closing_wakes_a_waiting_consumer_and_refuses_producers():
    box: LatestFrame[int] = LatestFrame()
    outcome = []

    def consumer():
        try:
            box.get()
        except MailboxClosed:
            outcome.append("closed")

    thread = threading.Thread(target=consumer)
    thread.start()
    time.sleep(0.05)
    box.close()
    thread.join(2)
    assert outcome == ["closed"] and not thread.is_alive()
    with pytest.raises(MailboxClosed):
        box.put(1)


def test_bgra_to_rgb_swaps_channels_without_touching_the_source():
    bgra = np.zeros((2, 3, 4), np.uint8)
    bgra[..., 0], bgra[..., 1], bgra[..., 2], bgra[..., 3] = 10, 20, 30, 255
    rgb = bgra_to_rgb(bgra)
    assert rgb.shape == (2, 3, 3) and rgb.flags.c_contiguous
    assert rgb[0, 0].tolist() == [30, 20, 10]
    assert bgra[0, 0].tolist() == [10, 20, 30, 255]


# ---- ScreenSource on real windows ------------------------------------------------------------


def _grab_until(source: ScreenSource, check, timeout: float = 3.0):
    """Grab until ``check(frame)`` holds (the compositor repaints the root a little later)."""
    deadline = time.monotonic() + timeout
    frame = None
    while time.monotonic() < deadline:
        frame = source.grab()
        if frame is not None and check(frame):
            return frame
        time.sleep(0.03)
    raise AssertionError(f"condition not met; last frame {frame and frame.rect}, reason {source.waiting_reason!r}")


def _mostly(frame, rgb) -> bool:
    return bool((np.abs(frame.rgb.astype(int) - rgb).sum(axis=2) < 30).mean() > 0.95)


@pytest.fixture
def window_source(x_display):
    source = ScreenSource.from_settings(load_settings(overrides={"window": "^Toontown Rewritten$"}))
    source.open()
    yield source
    source.close()


def test_grabs_the_window_client_area_and_follows_moves_and_resizes(window_source):
    game = XTestWindow("Toontown Rewritten", ScreenRect(100, 80, 320, 200), RED)
    try:
        frame = _grab_until(window_source, lambda f: _mostly(f, RED))
        assert frame.rect == ScreenRect(100, 80, 320, 200) and frame.rgb.shape == (200, 320, 3)
        game.move(900, 500)
        game.resize(400, 300)
        frame = _grab_until(window_source, lambda f: f.rect == ScreenRect(900, 500, 400, 300) and _mostly(f, RED))
        assert frame.size_wh == (400, 300)
        # tiny, then 4K: clipped to the 1920x1080 screen
        game.move(10, 10)
        game.resize(2, 2)
        frame = _grab_until(window_source, lambda f: f.rect == ScreenRect(10, 10, 2, 2))
        assert frame.rgb.shape == (2, 2, 3)
        game.move(0, 0)
        game.resize(3840, 2160)
        frame = _grab_until(window_source, lambda f: f.rect == ScreenRect(0, 0, 1920, 1080))
        assert frame.rgb.shape == (1080, 1920, 3)
        # partly off the left edge: only the visible part is grabbed
        game.resize(640, 360)
        game.move(-200, 100)
        frame = _grab_until(window_source, lambda f: f.rect == ScreenRect(0, 100, 440, 360) and _mostly(f, RED))
        game.move(-1000, 100)  # entirely off screen: paused with a reason
        _wait_reason(window_source, "off screen")
    finally:
        game.close()


def _wait_reason(source: ScreenSource, text: str, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if source.grab() is None and text in source.waiting_reason:
            return
        time.sleep(0.03)
    raise AssertionError(f"no '{text}' reason; last: {source.waiting_reason!r}")


def test_hidden_closed_and_reopened_windows(window_source):
    _wait_reason(window_source, "No window titled like")
    game = XTestWindow("Toontown Rewritten", ScreenRect(200, 200, 300, 200), RED)
    try:
        _grab_until(window_source, lambda f: _mostly(f, RED))
        game.unmap()
        _wait_reason(window_source, "minimised or hidden")
        game.map()
        _grab_until(window_source, lambda f: _mostly(f, RED))
    finally:
        game.close()
    _wait_reason(window_source, "No window titled like")
    reopened = XTestWindow("Toontown Rewritten", ScreenRect(600, 300, 200, 150), GREEN)
    try:
        frame = _grab_until(window_source, lambda f: _mostly(f, GREEN))
        assert frame.rect == ScreenRect(600, 300, 200, 150)
    finally:
        reopened.close()


def _all(frame, rgb) -> bool:
    return bool((np.abs(frame.rgb.astype(int) - rgb).sum(axis=2) < 30).all())


class _NoCompositorFinder(X11WindowFinder):
    """The real finder, telling the source that no compositor runs (the session's screen has one)."""

    def composited(self) -> bool:
        return False


def test_the_game_window_is_grabbed_by_itself_without_the_windows_on_top(window_source):
    """Under the compositor the game window's own pixels are grabbed: a window stacked on top of it
    (where the overlay sits) is not in the frame, which says so (overlay_free); a region grab of the
    same rectangle, or a window grab without a compositor, sees the window on top."""
    where = ScreenRect(300, 200, 320, 200)
    game = XTestWindow("Toontown Rewritten", where, RED)
    try:
        _grab_until(window_source, lambda f: _mostly(f, RED))
        cover = XTestWindow("on top", ScreenRect(350, 250, 200, 100), GREEN)
        try:
            region = ScreenSource(region=where)
            region.open()
            try:
                seen = _grab_until(region, lambda f: (f.rgb[100, 150] == GREEN).all())
                assert not seen.overlay_free
            finally:
                region.close()
            frame = _grab_until(window_source, lambda f: f.rect == where)
            assert window_source.grabs_window_itself and frame.overlay_free
            assert _all(frame, RED), frame.rgb[100, 150]
            plain = ScreenSource(window_pattern="^Toontown Rewritten$", finder_factory=_NoCompositorFinder)
            plain.open()
            try:
                frame = _grab_until(plain, lambda f: (f.rgb[100, 150] == GREEN).all())
                assert not plain.grabs_window_itself and not frame.overlay_free
            finally:
                plain.close()
        finally:
            cover.close()
    finally:
        game.close()


def test_a_compositor_started_or_stopped_mid_run_switches_the_grab(x_display, monkeypatch):
    """The compositor check is repeated (every COMPOSITOR_CHECK_S; 0 here): the finder's answer
    flips, and the source goes from window grabs to screen grabs and back without a re-find."""
    import toonvision_live.capture.stage as capture

    monkeypatch.setattr(capture, "COMPOSITOR_CHECK_S", 0.0)
    answers = [True]

    class Switching(X11WindowFinder):
        def composited(self) -> bool:
            return answers[-1]

    game = XTestWindow("Toontown Rewritten", ScreenRect(300, 200, 320, 200), RED)
    source = ScreenSource(window_pattern="^Toontown Rewritten$", finder_factory=Switching)
    source.open()
    try:
        assert _grab_until(source, lambda f: _mostly(f, RED)).overlay_free
        answers.append(False)
        assert not source.grab().overlay_free and not source.grabs_window_itself
        answers.append(True)
        assert source.grab().overlay_free
    finally:
        source.close()
        game.close()


def test_monitor_and_region_fallbacks(x_display):
    game = XTestWindow("anything", ScreenRect(0, 0, 64, 48), GREEN)
    try:
        region = ScreenSource.from_settings(load_settings(overrides={"region": "0,0,64,48"}))
        region.open()
        try:
            frame = _grab_until(region, lambda f: _mostly(f, GREEN))
            assert frame.rect == ScreenRect(0, 0, 64, 48)
        finally:
            region.close()
        monitor = ScreenSource.from_settings(load_settings(overrides={"monitor": 1}))
        monitor.open()
        try:
            assert monitor.grab().rgb.shape == (1080, 1920, 3)
        finally:
            monitor.close()
        outside = ScreenSource(region=ScreenRect(5000, 5000, 10, 10))
        outside.open()
        assert outside.grab() is None and "outside the screen" in outside.waiting_reason
        outside.close()
    finally:
        game.close()
    missing = ScreenSource(monitor=7)
    with pytest.raises(CaptureError, match="Monitor 7 does not exist"):
        missing.open()
    missing.close()


# ---- CaptureThread ----------------------------------------------------------------------------


def test_capture_thread_pauses_reports_and_resumes(x_display):
    latest = LatestFrame()
    statuses = []
    got = []

    def consume():  # a worker that always wants the next frame
        try:
            while True:
                got.append(latest.get())
        except MailboxClosed:
            pass

    consumer = threading.Thread(target=consume)
    consumer.start()
    source = ScreenSource(window_pattern="^Toontown Rewritten$")
    thread = CaptureThread(source, latest, fps_cap=120, on_status=statuses.append, retry_s=0.05)
    thread.start()
    try:
        deadline = time.monotonic() + 3
        while not statuses and time.monotonic() < deadline:
            time.sleep(0.02)
        assert statuses and statuses[0].startswith("No window titled like") and not got
        game = XTestWindow("Toontown Rewritten", ScreenRect(50, 50, 160, 90), RED)
        try:
            deadline = time.monotonic() + 3
            while not got and time.monotonic() < deadline:
                time.sleep(0.02)
            assert got and got[0].rect == ScreenRect(50, 50, 160, 90)
            assert statuses[-1] == ""  # resumed
            thread.set_paused(True)
            time.sleep(0.1)
            count = len(got)
            time.sleep(0.2)
            assert len(got) == count
            thread.set_paused(False)
            deadline = time.monotonic() + 3
            while len(got) == count and time.monotonic() < deadline:
                time.sleep(0.02)
            assert len(got) > count
        finally:
            game.close()
    finally:
        thread.stop()
        assert thread.join(3)
        consumer.join(3)
    assert thread.error is None and not consumer.is_alive()
    assert latest.closed  # closing the mailbox is how the consumer learns capture ended


def test_capture_thread_keeps_its_exception(x_display):
    class Broken(RecordedSource):
        def grab(self):
            raise RuntimeError("grab exploded")

    latest = LatestFrame()
    thread = CaptureThread(Broken([np.zeros((4, 4, 3), np.uint8)]), latest, on_demand=False)
    thread.start()
    assert thread.join(3)
    assert isinstance(thread.error, RuntimeError) and latest.closed
    with pytest.raises(MailboxClosed):
        latest.get(timeout=1)


def test_capture_is_paced_by_the_fps_cap():
    latest = LatestFrame()
    thread = CaptureThread(RecordedSource([np.zeros((4, 4, 3), np.uint8)]), latest, fps_cap=20, on_demand=False)
    thread.start()
    time.sleep(0.5)
    thread.stop()
    thread.join(2)
    # 20 fps for 0.5 s: about 10 frames, never hundreds (a loose bound: this asserts pacing, not speed)
    assert 3 <= thread.frames <= 14
    assert latest.dropped == thread.frames - 1


def test_on_demand_capture_grabs_only_for_a_waiting_consumer():
    latest = LatestFrame()
    thread = CaptureThread(RecordedSource([np.zeros((4, 4, 3), np.uint8)]), latest, fps_cap=200)
    thread.start()
    try:
        time.sleep(0.3)
        assert thread.frames == 0  # nobody asked
        frames = [latest.get(timeout=2) for _ in range(5)]
        assert [f.frame_id for f in frames] == sorted(f.frame_id for f in frames)
        time.sleep(0.2)
        assert thread.frames == 5 and latest.dropped == 0  # one grab per request, none wasted
    finally:
        thread.stop()
        latest.close()
        assert thread.join(2)


def test_wait_for_consumer():
    box: LatestFrame[int] = LatestFrame()
    assert box.wait_for_consumer(0.01) is False
    waiter = threading.Thread(target=lambda: box.get(timeout=2))
    waiter.start()
    assert box.wait_for_consumer(2) is True
    box.put(1)
    waiter.join(2)
    assert box.wait_for_consumer(0.01) is False
    box.close()
    assert box.wait_for_consumer(0.01) is True


def test_a_window_grab_converted_straight_from_shared_memory_matches_mss_s_path(x_display):
    """grab_window_rgb (BGRA -> RGB out of the MIT-SHM segment, no copy first) gives the pixels of
    grab_window then cvtColor, for every sub-rectangle asked; a rectangle outside the window fails
    as mss does, and closing the grabber afterwards works (no view of the segment is left)."""
    import cv2
    from mss.exception import ScreenShotError

    from toonvision_live.capture.x11grab import X11WindowGrabber

    game = XTestWindow("Toontown Rewritten", ScreenRect(100, 80, 320, 200), RED)
    grabber = X11WindowGrabber()
    try:
        deadline = time.monotonic() + 3.0
        corner = ScreenRect(0, 0, 8, 8)
        while time.monotonic() < deadline and not (grabber.grab_window_rgb(game.id, corner) == RED).all():
            time.sleep(0.05)
        from mss.linux.xshmgetimage import ShmStatus

        assert grabber.shm_status == ShmStatus.AVAILABLE  # Xvfb has MIT-SHM: the direct path ran
        for rect in (ScreenRect(0, 0, 320, 200), ScreenRect(10, 20, 100, 50), ScreenRect(319, 199, 1, 1)):
            rgb = grabber.grab_window_rgb(game.id, rect)
            assert rgb.shape == (rect.height, rect.width, 3) and rgb.flags.c_contiguous
            assert np.array_equal(rgb, cv2.cvtColor(grabber.grab_window(game.id, rect), cv2.COLOR_BGRA2RGB))
            assert (rgb == RED).all()
        with pytest.raises(ScreenShotError):
            grabber.grab_window_rgb(game.id, ScreenRect(300, 0, 100, 50))
    finally:
        grabber.close()
        game.close()
