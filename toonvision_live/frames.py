"""Frames, the one-slot ``LatestFrame`` mailbox, and the ``FrameSource`` protocol.

Every capture path (a game window through mss, a monitor or region, the demo
scene drawn in memory, recorded frames) is a ``FrameSource``, so ``run``,
``demo``, ``bench`` and the tests share one pipeline.  Frames cross threads only
through a ``LatestFrame``: ``put`` replaces an unread item (counted as dropped),
``get`` waits for the next one, and ``close`` wakes both sides.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import cv2
import numpy as np

from toonvision_live.geometry import ScreenRect

T = TypeVar("T")


class MailboxClosed(Exception):
    """The mailbox was closed: the stage on the other side stopped."""


class LatestFrame(Generic[T]):
    """A one-slot mailbox: the newest item wins, older unread ones are dropped and counted."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: T | None = None
        self._has_item = False
        self._closed = False
        self._consumers_waiting = 0
        self.put_count = 0
        self.dropped = 0

    def put(self, item: T) -> bool:
        """Store ``item``; True when the slot was empty (nobody was behind).

        Raises MailboxClosed once the mailbox is closed.
        """
        with self._cond:
            if self._closed:
                raise MailboxClosed
            was_empty = not self._has_item
            if not was_empty:
                self.dropped += 1
            self._item, self._has_item = item, True
            self.put_count += 1
            self._cond.notify_all()
            return was_empty

    def get(self, timeout: float | None = None) -> T:
        """Wait for an item and take it; MailboxClosed when closed, TimeoutError after ``timeout``."""
        with self._cond:
            self._consumers_waiting += 1
            self._cond.notify_all()  # a producer may be waiting for demand
            try:
                if not self._cond.wait_for(lambda: self._has_item or self._closed, timeout):
                    raise TimeoutError
            finally:
                self._consumers_waiting -= 1
            if not self._has_item:
                raise MailboxClosed
            item = self._item
            self._item, self._has_item = None, False
            return item  # type: ignore[return-value]

    def wait_for_consumer(self, timeout: float | None = None) -> bool:
        """Wait until a consumer is blocked in :meth:`get` on an empty slot (True), the mailbox is
        closed (True), or ``timeout`` passes (False).  Lets a producer work on demand."""
        with self._cond:
            return self._cond.wait_for(
                lambda: self._closed or (self._consumers_waiting > 0 and not self._has_item), timeout
            )

    def take(self) -> T | None:
        """The unread item if there is one, without waiting (None otherwise)."""
        with self._cond:
            if not self._has_item:
                return None
            item = self._item
            self._item, self._has_item = None, False
            return item

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed


_frame_ids = itertools.count(1)


def next_frame_id() -> int:
    return next(_frame_ids)


def same_pixels(a: np.ndarray | None, b: np.ndarray | None, bands: int = 8) -> bool:
    """Whether two frames hold exactly the same pixels (the game did not redraw between two grabs).

    Compared a band of rows at a time, so a changed frame is told apart at its first changed band; two
    views of one buffer never count as the same (it may have been written over in between)."""
    if a is None or b is None or a.shape != b.shape or a.dtype != b.dtype or np.may_share_memory(a, b):
        return False
    if not (a.flags.c_contiguous and b.flags.c_contiguous and a.dtype == np.uint8 and a.ndim in (2, 3)):
        return bool(np.array_equal(a, b))
    step = max(1, -(-a.shape[0] // bands))  # OpenCV's largest difference: 2x as fast as np.array_equal
    return all(cv2.norm(a[y : y + step], b[y : y + step], cv2.NORM_INF) == 0 for y in range(0, a.shape[0], step))


@dataclass(frozen=True, slots=True)
class Frame:
    """One captured image and where/when it was taken.

    ``rgb`` is HxWx3 uint8; ``rect`` is the screen rectangle it shows (the game
    window's client area, clipped to the screen), so overlay boxes drawn at
    ``rect.left + x`` land on the pixels they were computed from.
    """

    frame_id: int
    rgb: np.ndarray
    grab_time: float  # time.perf_counter() when the grab finished
    grab_s: float  # how long the grab and colour conversion took
    rect: ScreenRect
    title: str = ""
    #: the pixels are the game window's own (X11 window grab under a compositor): the overlay,
    #: stacked on top, cannot be in them, so nothing in the frame needs to be read around its drawings
    overlay_free: bool = False

    @property
    def size_wh(self) -> tuple[int, int]:
        return (int(self.rgb.shape[1]), int(self.rgb.shape[0]))


class FrameSource(Protocol):
    """Something frames can be grabbed from, opened and used in the capture thread."""

    description: str

    def open(self) -> None:
        """Acquire OS resources (mss, X connection) in the calling thread."""

    def grab(self) -> Frame | None:
        """The next frame, or None while there is nothing to capture (``waiting_reason`` says why)."""

    @property
    def waiting_reason(self) -> str:
        """Why the last grab gave no frame ("" when it did)."""

    def close(self) -> None: ...


class RecordedSource:
    """Frames from a list of RGB images, replayed in a loop (for bench and tests)."""

    def __init__(self, images_rgb: Sequence[np.ndarray], *, loop: bool = True, rect: ScreenRect | None = None) -> None:
        if not images_rgb:
            raise ValueError("RecordedSource needs at least one image")
        self._images = list(images_rgb)
        self._loop = loop
        self._index = 0
        height, width = self._images[0].shape[:2]
        self._rect = rect or ScreenRect(0, 0, width, height)
        self.description = f"{len(self._images)} recorded frames"
        self._reason = ""

    def open(self) -> None:
        self._index = 0

    def grab(self) -> Frame | None:
        if self._index >= len(self._images):
            if not self._loop:
                self._reason = "the recording has ended"
                return None
            self._index = 0
        start = time.perf_counter()
        rgb = self._images[self._index]
        self._index += 1
        now = time.perf_counter()
        height, width = rgb.shape[:2]
        rect = ScreenRect(self._rect.left, self._rect.top, width, height)
        return Frame(next_frame_id(), rgb, now, now - start, rect, self.description)

    @property
    def waiting_reason(self) -> str:
        return self._reason

    def close(self) -> None:
        pass


class StageThread:
    """A pipeline stage running ``run_stage`` in its own daemon thread.

    The stage keeps its exception (``error``) for the supervisor; ``on_exit`` is
    called once from the stage's thread when it ends for any reason, so the
    supervisor can close the other mailboxes and nothing waits forever.
    """

    name = "stage"

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self.on_exit: list = []  # callables (stage) -> None

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"{self.name} was already started")
        self._thread = threading.Thread(target=self._main, name=f"toonvision-{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Ask the stage to stop (it also wakes from its mailbox once that is closed)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread; True when it has ended."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _main(self) -> None:
        try:
            self.run_stage()
        except MailboxClosed:
            pass  # the other side stopped: a normal way out
        except BaseException as exc:  # kept for the supervisor, which reports it
            self.error = exc
        finally:
            try:
                self.cleanup()
            except Exception as exc:  # a failing cleanup is still a reason worth reporting
                self.error = self.error or exc
            for callback in list(self.on_exit):
                callback(self)

    def run_stage(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def cleanup(self) -> None:
        """Release what the stage holds; runs in its thread, always."""


class Board(Generic[T]):
    """A value one thread publishes and others read (the newest wins; nothing queues).

    The overlay publishes the label cards it drew here and the worker reads them: the value is
    replaced whole, never mutated, so a reader always sees one consistent publication."""

    def __init__(self, value: T) -> None:
        self._lock = threading.Lock()
        self._value = value

    def publish(self, value: T) -> None:
        with self._lock:
            self._value = value

    def read(self) -> T:
        with self._lock:
            return self._value
