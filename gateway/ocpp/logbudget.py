"""How much general-log text each charger may write a minute (issue 12: one unauthenticated
peer added 91 MB to the database in a few minutes).

Lines past the budget are counted, not kept: the first one of a minute is replaced by a note
saying the budget was reached, and the next line after the minute says how many were left
out. Transaction lines (`essential`) are always kept; they still count. No I/O of its own: the
clock is injected and `write` is handed the general log to write to.

`MeterBudget` does the same for meter values, per hour, with a burst of an hour's worth;
`OrphanStops` holds StopTransactions for unknown transactions to one such budget of rows.
Each keeps per-charger counts of what it refused (`refused_by`), shown by `/api/status`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

WINDOW_S = 60.0
EVENT_MAX_CHARS = 64  # the longest 1.6 event name, "DiagnosticsStatusNotificationConfirmation", is 41
_PRUNE_ABOVE = 4096  # charger ids tracked before stale windows are forgotten


@dataclass(slots=True)
class _Window:
    start: float
    spent: int = 0
    dropped_lines: int = 0
    dropped_bytes: int = 0


class GeneralLog(Protocol):
    def log(self, identifier: str, message_type: str, message: str, level: str = "info") -> None: ...


class LogBudget:
    """Per-charger bytes of general-log text per minute; `admit` decides each line."""

    def __init__(self, bytes_per_minute: int, clock: Callable[[], float], line_max_chars: int = 1000) -> None:
        self.bytes_per_minute = bytes_per_minute
        self.clock = clock
        self.line_max_chars = line_max_chars
        self._windows: dict[str, _Window] = {}
        self._pruned_at: float | None = None
        self.dropped_lines = 0  # since start, all chargers (the benchmark reports it)
        self.refused_by: dict[str, int] = {}  # lines not kept since start, per charger

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
            if len(self._windows) > _PRUNE_ABOVE and (self._pruned_at is None
                                                      or now - self._pruned_at >= WINDOW_S):
                self._prune(now)  # once a minute at most: each prune looks at every charger
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
        count(self.refused_by, charger_id)
        return False, notes

    def write(self, general_log: GeneralLog, charger_id: str, event: str, message: str, level: str = "info",
              essential: bool = False) -> bool:
        """Write one line cut to `line_max_chars` (the raw size noted) if the budget admits it."""
        text = clip(message, self.line_max_chars)
        if len(event) > EVENT_MAX_CHARS:  # an action name a peer invented
            event = event[:EVENT_MAX_CHARS] + "…"
        keep, notes = self.admit(charger_id, len(text), essential)
        for note in notes:
            general_log.log(charger_id, "LogBudget", note, "warning")
        if keep:
            general_log.log(charger_id, event, text, level)
        return keep

    def _prune(self, now: float) -> None:
        self._pruned_at = now
        stale = [cid for cid, w in self._windows.items() if now - w.start >= 2 * WINDOW_S]
        for cid in stale:
            del self._windows[cid]


def count(counts: dict[str, int], charger_id: str) -> None:
    """One more refusal for this charger; ids past `_PRUNE_ABOVE` are only in the totals (a peer
    inventing ids must not grow the table)."""
    if charger_id in counts or len(counts) < _PRUNE_ABOVE:
        counts[charger_id] = counts.get(charger_id, 0) + 1


def clip(text: str, limit: int, raw_size: int | None = None) -> str:
    """`text` cut to about `limit` characters, noting the size of what was sent."""
    if len(text) <= limit:
        return text
    size = raw_size if raw_size is not None else len(text.encode("utf-8", "replace"))
    return f"{text[:limit]}…({size} bytes)"


class MeterBudget:
    """Bytes of meter values each charger may store: a token bucket of `bytes_per_hour` that
    refills continuously, so an hour's worth may arrive at once (a charger's queue after an
    outage) but no peer fills the disk (issue 12). No I/O; the clock is injected."""

    def __init__(self, bytes_per_hour: int, clock: Callable[[], float]) -> None:
        self.capacity = bytes_per_hour
        self.per_second = bytes_per_hour / 3600.0
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # charger id -> (bytes left, when)
        self.refused = 0  # messages past the budget since start, all chargers
        self.refused_by: dict[str, int] = {}  # the same per charger

    def has_room(self, charger_id: str, size: int) -> bool:
        """Whether `size` would be admitted now, spending nothing."""
        now = self.clock()
        left, then = self._buckets.get(charger_id, (self.capacity, now))
        return size <= min(self.capacity, left + (now - then) * self.per_second)

    def admit(self, charger_id: str, size: int) -> bool:
        """Spend `size` bytes of this charger's budget, or say no (and spend nothing)."""
        now = self.clock()
        left, then = self._buckets.get(charger_id, (self.capacity, now))
        left = min(self.capacity, left + (now - then) * self.per_second)
        if size > left:
            self._buckets[charger_id] = (left, now)
            self.refused += 1
            count(self.refused_by, charger_id)
            return False
        if len(self._buckets) > _PRUNE_ABOVE:
            self._prune(now)
        self._buckets[charger_id] = (left - size, now)
        return True

    def _prune(self, now: float) -> None:
        """Forget chargers whose bucket is full again (they start full anyway)."""
        full = [cid for cid, (left, then) in self._buckets.items()
                if left + (now - then) * self.per_second >= self.capacity]
        for cid in full:
            del self._buckets[cid]


class OrphanStops:
    """StopTransactions for unknown transactions (issue 12: each added an orphan row and two
    always-kept log lines, without limit): `orphans_per_hour` rows per charger (a `MeterBudget`
    of rows); past it, one line a minute says how many were answered but not stored."""

    def __init__(self, orphans_per_hour: int, clock: Callable[[], float]) -> None:
        self.rows = MeterBudget(orphans_per_hour, clock)
        self.clock = clock
        self.orphans_per_hour = orphans_per_hour
        self._minutes: dict[str, _Window] = {}
        self._pruned_at = float("-inf")
        self.refused_by = self.rows.refused_by

    def may_store(self, charger_id: str) -> bool:
        """Whether an orphan row may be stored now (spends nothing: most stops are not orphans)."""
        return self.rows.has_room(charger_id, 1)

    def stored(self, charger_id: str) -> None:
        self.rows.admit(charger_id, 1)

    def not_stored(self, charger_id: str) -> str | None:
        """Count one orphan past the budget; the line to write, at most one a minute per charger."""
        self.rows.refused += 1
        count(self.refused_by, charger_id)
        now = self.clock()
        window = self._minutes.get(charger_id)
        if window is not None and now - window.start < WINDOW_S:
            window.dropped_lines += 1
            return None
        before = window.dropped_lines if window is not None else 0
        if len(self._minutes) > _PRUNE_ABOVE and now - self._pruned_at >= WINDOW_S:  # once a minute at most
            self._pruned_at = now
            self._minutes = {cid: w for cid, w in self._minutes.items() if now - w.start < WINDOW_S}
        self._minutes[charger_id] = _Window(now)
        more = f"; {before} more in the minute before" if before else ""
        return (f"StopTransaction for an unknown transaction answered but not stored: over this charger's "
                f"budget of {self.orphans_per_hour} orphan stops an hour{more}")
