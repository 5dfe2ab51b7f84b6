"""BMS writes into the point table: validation, the 16-level priority arrays, the result points.

`PointTable` (points/table.py) inherits these. A write is checked here, then carried out by the
table's `writer` (`points.commands.PointWrites` in a running gateway); a commandable point keeps
one priority array that BACnet and Modbus both write (BACnet 19.2), so they show one value.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from gateway.errors import WriteRefused
from points.identity import Point
from points.spec import CONFIG_PREFIX, RESULT_TEXT_MAX, PointState

# A commandable point's writer runs when the value in force changes; an unchanged value written
# again reaches it at most this often (a refresh the smart-charging BMS watchdog counts), so a
# burst of repeated BMS writes is one call, not one per write (issue 13 item 6).
COMMAND_REFRESH_S = 60.0
log = logging.getLogger(__name__)


class ResultBoard(Protocol):
    """Where a writer shows a write's outcome (the table's result points)."""

    def set_result(self, point: Point, text: str) -> None:
        """Show `text` in the point's result point."""


class PointWriter(Protocol):
    """Carries out a checked write and shows its result (`points.commands.PointWrites`)."""

    async def write(self, table: ResultBoard, point: Point, value: Any, wait_s: float) -> str:
        """The result text, or WriteRefused."""


class TableWrites:
    """Writes and commands on the table's points; `PointTable` sets what these use."""

    clock: Callable[[], float]
    state: PointState
    writer: PointWriter | None
    write_wait_s: float
    _by_charger: dict[str, dict[tuple, Point]]
    # Commandable points: the 16-level priority array both protocols write (BACnet at the
    # priority of the request, Modbus at `modbus.bacnet_priority`), so they show one value.
    _priorities: dict[tuple[str, int], list[Any]]
    _commanded_at: dict[tuple[str, int], float]
    notify: Callable[[list[Point]], None]
    read_default: Callable[[Point], Any]

    def set_result(self, point: Point, text: str) -> None:
        """Show a write outcome in the point's result point (and its own value).

        Outcomes are short words (RESULT_TEXT_MAX characters, docs/bacnet.md "Writes"), so the
        same text fits a BACnet string and a Modbus result register; reasons go to the log.
        """
        if len(text) > RESULT_TEXT_MAX:
            log.warning("result text %r of %s cut to %d characters", text, point.name, RESULT_TEXT_MAX)
            text = text[:RESULT_TEXT_MAX]
        self.state.results[_result_key(point)] = text
        self.notify([p for p in self._by_charger.get(point.charger_id, {}).values()
                     if p.spec.kind in ("config_result", "charger", "connector", "site")
                     and _result_key(p) == _result_key(point)] or [point])


    # --- commands (priority arrays) ---------------------------------------------------------
    def priority_array(self, point: Point) -> list[Any]:
        """The 16 command slots of a commandable point (None: relinquished)."""
        return list(self._priorities.get(point.uid, [None] * 16))

    def restore_command(self, point: Point, value: Any, priority: int) -> None:
        """Put back a command kept across a restart, without running the writer again."""
        slots = self.priority_array(point)
        slots[priority - 1] = point.spec.coerce(value)
        self._priorities[point.uid] = slots
        self._commanded_at[point.uid] = self.clock()
        self.notify([point])

    def commanding_priority(self, point: Point) -> int | None:
        """The priority whose value is in force (BACnet current-command-priority), or None."""
        return next((i + 1 for i, v in enumerate(self.priority_array(point)) if v is not None), None)

    def effective(self, point: Point) -> Any:
        """The commanded value in force: the highest priority slot, else the relinquish default."""
        commanded = next((v for v in self.priority_array(point) if v is not None), None)
        return self.read_default(point) if commanded is None else commanded

    async def command(self, point: Point, value: Any, priority: int, wait_s: float | None = None) -> str:
        """Write (value None: relinquish) one priority of a commandable point (BACnet 19.2).

        The point's writer runs when the value in force changes (and, for an unchanged value,
        at most every COMMAND_REFRESH_S), so a burst of BMS writes is one call per change.
        A refused write stores nothing.
        """
        if not point.spec.commandable:
            raise WriteRefused("point is not commandable", "write-access-denied")
        if not 1 <= priority <= 16:
            raise WriteRefused(f"priority {priority} outside 1..16", "value-out-of-range")
        slots = self.priority_array(point)
        slots[priority - 1] = None if value is None else point.spec.coerce(value)
        effective = next((v for v in slots if v is not None), None)
        if effective is None:
            effective = self.read_default(point)
        text = ""
        now = self.clock()
        before = self.priority_array(point)
        changed = effective != self.effective(point)
        self._priorities[point.uid] = slots  # the writer sees the array it acts on (its priority)
        if changed or now - self._commanded_at.get(point.uid, -COMMAND_REFRESH_S) >= COMMAND_REFRESH_S:
            try:
                text = await self.write(point, effective, wait_s)
            except WriteRefused:
                self._priorities[point.uid] = before  # refused: nothing stored
                self.notify([point])  # a protocol that showed the array meanwhile shows it again
                raise
            self._commanded_at[point.uid] = now
        self.notify([point])
        return text

    # --- writing ---------------------------------------------------------------------------
    async def write(self, point: Point, value: Any, wait_s: float | None = None) -> str:
        """Apply a BMS write: refuse what cannot be applied, else hand it to the writer.

        Waits up to `wait_s` for the charger's answer so a quick refusal reaches the BMS as an
        error; a slower answer lands in the result point when it arrives.
        """
        spec = point.spec
        if not spec.writable or not spec.on_write:
            raise WriteRefused("point is read-only", "write-access-denied")
        value = spec.coerce(value)
        if self.writer is None:
            raise WriteRefused(f"{spec.on_write} is not available in this build", "write-access-denied")
        return await self.writer.write(self, point, value, wait_s if wait_s is not None else self.write_wait_s)



def _result_key(point: Point) -> tuple[str, int | None, str]:
    """Which result a point shows or writes: config keys by key, others by result_of."""
    if point.spec.kind in ("config", "config_result"):
        return (point.charger_id, None, f"{CONFIG_PREFIX}{point.subject}")
    return (point.charger_id, point.connector_id, point.spec.result_of or point.spec.key)
