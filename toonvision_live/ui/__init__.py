"""The user interface: the click-through overlay, the live session, hotkeys."""
