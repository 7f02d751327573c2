"""Global hotkeys through pynput ``GlobalHotKeys``: only the configured combinations.

pynput is imported inside :meth:`HotkeyListener.start` only, because importing
it needs a display.  The listener sees key events to match the registered
combinations and nothing else is kept: no key is logged or stored.  Callbacks
run on pynput's thread; pass something thread-safe (a Qt signal's ``emit``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from toonvision_live.errors import CaptureError, ConfigError
from toonvision_live.settings import Hotkeys

if TYPE_CHECKING:
    from pynput import keyboard

log = logging.getLogger(__name__)


class HotkeyListener:
    """Calls ``on_action(name)`` (save, toggle_overlay, pause, quit) when its combination is pressed."""

    def __init__(self, hotkeys: Hotkeys, on_action: Callable[[str], None]) -> None:
        self.hotkeys = hotkeys
        self.on_action = on_action
        self._listener: keyboard.GlobalHotKeys | None = None

    def _callback(self, action: str) -> Callable[[], None]:
        def fire() -> None:
            self.on_action(action)

        return fire

    def start(self) -> None:
        try:
            from pynput import keyboard  # only here: importing pynput needs a display
        except ImportError as exc:
            why = (str(exc).splitlines() or ["no keyboard backend"])[0].strip()
            raise CaptureError(f"Global hotkeys cannot start ({why}); run with --no-hotkeys.") from None

        mapping = {combo: self._callback(action) for action, combo in self.hotkeys.as_dict().items()}
        try:
            for combo in mapping:
                keyboard.HotKey.parse(combo)
        except ValueError as exc:
            raise ConfigError(
                f"The hotkey '{combo}' is not understood by pynput ({exc}); write it like '<ctrl>+<alt>+s'."
            ) from None
        self._listener = listener = keyboard.GlobalHotKeys(mapping)
        listener.start()
        listener.wait()  # until it is listening, so a key pressed right after start counts
        log.info("hotkeys: %s", ", ".join(f"{a.replace('_', ' ')} {c}" for a, c in self.hotkeys.as_dict().items()))

    def stop(self) -> None:
        """Stop listening.  On X11 pynput's thread only ends at the next key event after this (its
        "disable" request waits in the recording connection); it is a daemon thread, so it never
        holds the process up."""
        if self._listener is not None:
            self._listener.stop()
            self._listener.join(0.2)
            self._listener = None

    @property
    def running(self) -> bool:
        return self._listener is not None and self._listener.running
