"""Progress bars and messages for the dataset commands (rich, on stderr)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

T = TypeVar("T")


def stderr_console() -> Console:
    """A console on the current ``sys.stderr`` (so pytest's capture sees it)."""
    return Console(file=sys.stderr, highlight=False, soft_wrap=True)


def track(items: Iterable[T], *, total: int, description: str, enabled: bool = True) -> Iterator[T]:
    """Yield ``items`` while drawing a progress bar on stderr when it is a terminal."""
    console = stderr_console()
    if not enabled or not console.is_terminal:
        yield from items
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(description, total=total)
        for item in items:
            yield item
            progress.advance(task)


def warn(message: str) -> None:
    """Print one user-facing sentence on stderr."""
    print(message, file=sys.stderr, flush=True)


@dataclass(slots=True)
class MessageLog:
    """Problems, warnings and notes of one run, each passed on to ``on_message`` as it happens."""

    on_message: Callable[[str], None] | None = None
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def _say(self, kind: str, text: str, into: list[str]) -> None:
        into.append(text)
        if self.on_message:
            self.on_message(f"{kind}: {text}")

    def problem(self, text: str) -> None:
        self._say("problem", text, self.problems)

    def warning(self, text: str) -> None:
        self._say("warning", text, self.warnings)

    def note(self, text: str) -> None:
        self._say("note", text, self.notes)
