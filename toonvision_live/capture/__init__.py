"""Capture stage: finding the game window (X11, Win32), grabbing it, handing frames over."""
