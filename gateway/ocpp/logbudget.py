"""How much general-log text each charger may write a minute (issue 12: one unauthenticated
peer added 91 MB to the database in a few minutes).

Lines past the budget are counted, not kept: the first one of a minute is replaced by a note
saying the budget was reached, and the next line after the minute says how many were left
out. Transaction lines (`essential`) are always kept; they still count. Pure: the clock is
injected and nothing here touches the store.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

WINDOW_S = 60.0
_PRUNE_ABOVE = 4096  # charger ids tracked before stale windows are forgotten


@dataclass(slots=True)
class _Window:
    start: float
    spent: int = 0
    dropped_lines: int = 0
    dropped_bytes: int = 0


class LogBudget:
    """Per-charger bytes of general-log text per minute; `admit` decides each line."""

    def __init__(self, bytes_per_minute: int, clock: Callable[[], float]) -> None:
        self.bytes_per_minute = bytes_per_minute
        self.clock = clock
        self._windows: dict[str, _Window] = {}
        self.dropped_lines = 0  # since start, all chargers (the benchmark reports it)

    def admit(self, charger_id: str, size: int, essential: bool = False) -> tuple[bool, list[str]]:
        """Whether to keep a line of `size` bytes, and notes to write before it."""
        now = self.clock()
        window = self._windows.get(charger_id)
        notes: list[str] = []
        if window is None or now - window.start >= WINDOW_S:
            if window is not None and window.dropped_lines:
                notes.append(f"{window.dropped_lines} line(s), {window.dropped_bytes} bytes of general log "
                             f"not kept in the minute before: over the general-log budget of "
                             f"{self.bytes_per_minute} bytes per minute")
            if len(self._windows) > _PRUNE_ABOVE:
                self._prune(now)
            window = self._windows[charger_id] = _Window(now)
        fits = window.spent + size <= self.bytes_per_minute
        if fits or essential:
            window.spent += size
            return True, notes
        if not window.dropped_lines:
            notes.append(f"over the general-log budget of {self.bytes_per_minute} bytes per minute: "
                         "further lines of this minute are counted, not kept")
        window.dropped_lines += 1
        window.dropped_bytes += size
        self.dropped_lines += 1
        return False, notes

    def _prune(self, now: float) -> None:
        stale = [cid for cid, w in self._windows.items() if now - w.start >= 2 * WINDOW_S]
        for cid in stale:
            del self._windows[cid]
