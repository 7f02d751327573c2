"""Degrade, never queue: lower the search and re-check rates while frames take too long.

The capture stage grabs a frame only when the worker is ready for it (one-slot mailbox), so when
CPU is short nothing queues, but each frame takes longer from grab to overlay.  The worker tells
the :class:`LoadGovernor` how old each result is when it is done (grab start to done); while the
smoothed age stays over ``slow_ms`` the governor halves the rate of label re-checks (down to a
quarter) and of full nametag searches (down to half), and raises it back once the age has stayed under ``fast_ms``
for ``hold_s``.  Boxes still follow every Cog on every frame and new Cogs are still classified at
once; only the optional work waits.  The status strip shows :attr:`LoadGovernor.message`.
"""

from __future__ import annotations

#: rate multipliers of the levels (1: full rate): label re-checks go down to a quarter, full searches
#: only to half (live on the overloaded machine, halving searches again lost more Cogs than it saved)
LEVELS = (1.0, 0.5, 0.25)
SEARCH_LEVELS = (1.0, 0.5, 0.5)


class LoadGovernor:
    """Picks the rate level from the age of the worker's results (see the module's text)."""

    def __init__(self, *, enabled: bool = True, slow_ms: float = 30.0, fast_ms: float = 15.0,
                 alpha: float = 0.1, step_s: float = 0.5, hold_s: float = 2.0) -> None:
        if not 0 < fast_ms < slow_ms:
            raise ValueError("need 0 < fast_ms < slow_ms")
        self.enabled = enabled
        self.slow_ms, self.fast_ms = slow_ms, fast_ms
        self.alpha = alpha
        self.step_s, self.hold_s = step_s, hold_s
        self.level = 0
        self.age_ms: float | None = None  # smoothed
        self.changes = 0
        self._changed_at = float("-inf")
        self._fast_since: float | None = None

    @property
    def rate(self) -> float:
        """Multiplier of the label re-check rate (1.0 at full rate)."""
        return LEVELS[self.level]

    @property
    def search_rate(self) -> float:
        """Multiplier of the full-search rate (1.0 at full rate)."""
        return SEARCH_LEVELS[self.level]

    @property
    def message(self) -> str:
        if self.level == 0:
            return ""
        return f"CPU busy: labels re-checked at {self.rate:.0%}, searches at {self.search_rate:.0%} rate"

    def observe(self, age_ms: float, now: float) -> None:
        """One result ``age_ms`` old (grab start to worker done) at ``now`` (perf_counter seconds)."""
        self.age_ms = age_ms if self.age_ms is None else (1 - self.alpha) * self.age_ms + self.alpha * age_ms
        if not self.enabled:
            return
        if self.age_ms > self.slow_ms:
            self._fast_since = None
            if self.level < len(LEVELS) - 1 and now - self._changed_at >= self.step_s:
                self._set(self.level + 1, now)
        elif self.age_ms < self.fast_ms:
            if self._fast_since is None:
                self._fast_since = now
            if self.level > 0 and now - self._fast_since >= self.hold_s and now - self._changed_at >= self.hold_s:
                self._set(self.level - 1, now)
                self._fast_since = now
        else:
            self._fast_since = None

    def _set(self, level: int, now: float) -> None:
        self.level, self._changed_at = level, now
        self.changes += 1
