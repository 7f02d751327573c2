"""One exception hierarchy for every error a user can cause.

Each message is one sentence that says what went wrong and what to do.  The CLI
prints it without a traceback and exits non-zero.
"""

from __future__ import annotations


class ToonVisionError(Exception):
    """An error the user can fix (bad file, missing window, full disk, ...)."""

    exit_code = 2


class ConfigError(ToonVisionError):
    """Bad settings: an unknown key, a bad value, a malformed TOML file."""


class DataError(ToonVisionError):
    """A dataset file is missing, malformed or does not match the taxonomy."""


class ModelError(ToonVisionError):
    """A model file is missing, corrupt, or does not match its card."""


class CaptureError(ToonVisionError):
    """The screen or the game window cannot be captured."""


class ResourceError(ToonVisionError):
    """The game resource folder is missing a model, texture or animation."""


class SaveError(ToonVisionError):
    """A file could not be written (read-only folder, full disk, ...)."""
