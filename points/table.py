"""The point catalog: every value the gateway exposes to a BMS, with a stable address.

One table of specs (`SITE_SPECS`, `CHARGER_SPECS`, `CONNECTOR_SPECS`, plus specs made per meter
value and per configuration key) is iterated by BACnet (`points.bacnet.device`), Modbus
(`points.modbus.server`) and the exports; none of them defines a point itself. Free of network I/O:
the installer (`points.service`) feeds it registry events and persists what it allocates.

Public API (used by points.bacnet.device, points.modbus.server, points.export.ede; a running gateway's table is
`gateway.points.table`, built by `gateway.main` and ready once the gateway has started):

    PointSpec(key, kind, offset, bacnet_type, modbus_type, units="", writable=False,
              commandable=False, source=None, on_write="", states=(), description="",
              stale_when_offline=True, min_value=None, max_value=None, cov_increment=None,
              outlets_only=False, dynamic=False, result_of="", relinquish_default=None,
              ocpp_source="")                  .coerce(value) validates a write
    Point(spec, charger_id, slot, connector_id, subject, subject_index)
        .name .instance .index .uid            identities, each from one function below
    object_instance(slot, local_index) -> int       the BACnet instance (one function)
    local_index(spec, connector_id, subject_index) -> int   offset inside a charger block
    point_name(slot, connector_id, spec, subject) -> str    the Object_Name / EDE name
    PointTable(clock)
        .load(offsets: dict[str, str])         persisted offsets (kv scope OFFSETS_SCOPE)
        .persist: Callable[[dict[str, str]], None] | None   told about new offsets/seen data
        .sync(registry)                        (re)build every point from the live model
        .restore(station, record) / .seen(charger_id)   points seen before a restart
        .handle(event, registry)               one registry ChangeEvent -> added/changed points
        .points() -> list[Point]               in (instance) order; .get(name) -> Point | None
        .read(point) -> Any                    present value: float | bool | int (1-based
                                               state) | str | None (unknown)
        .read_default(point) -> Any            relinquish default of a commandable point
        .has(point) -> bool                    still in the table
        .reliable(point) -> bool               False while the charger is offline (stale)
        .write(point, value) -> str            validate, then the writer carries out `on_write`;
                                               result text, or raises WriteRefused(reason, code)
        .writer: PointWriter | None            `points.commands.PointWrites` in a running gateway
        .added / .removed / .changed: list[Callable[[list[Point]], None]]   listeners
        .state: PointState                     results, smart-charging settings, site limits

Specs and value sources live in `points.catalog` (UNITS with BACnet codes, state texts,
MEASURANDS, STANDARD_CONFIG_KEYS, PointSpec.coerce for write validation, WriteRefused codes:
write-access-denied, value-out-of-range, invalid-value, charger-offline, rejected).
For Modbus: `spec.modbus_type` is float32 | uint16 | uint32 | string; multi-state values are
1-based state numbers; `points.modbus.layout` places every catalog spec in the register map and
finds the table's point of a register by its identity (`find(uid)`). Writes from any protocol go
through `await table.write(point, value)`; commandable points through `await table.command(point,
value, priority)`, so both protocols share one priority array. Both protocols listen to
`changed` only: each change reaches each protocol once.

Numbering (docs/bacnet.md): instance = slot * SLOT_STRIDE + local index; site points use
slot 0. Inside a slot: connector c (0..9) owns [c*500, c*500+500): fixed points at 0..99,
standard meter values at 100 + measurand*11 + phase, other meter values at 350 + a persisted
index; charger points at 5000..5199; configuration key k at 5200 + k and its write result at
7600 + k (standard keys fixed, vendor keys persisted from 100). Nothing is ever renumbered.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from gateway.chargers.standard_keys import standard_key
from gateway.model.station import ChangeEvent, ChangeKind, ConfigKey, Connector, MeterKey, Registry
from points.catalog import (
    CHARGER_SPECS,
    CONFIG_PREFIX,
    CONNECTOR_SPECS,
    MEASURAND_UNITS,
    RESULT_TEXT_MAX,
    SITE_SPECS,
    STANDARD_CONFIG_KEYS,
    Ctx,
    PointSpec,
    PointState,
    WriteRefused,
    config_result_spec,
    config_spec,
    meter_spec,
)
from points.identity import (
    CONFIG_MAX,
    MAX_CONNECTOR,
    MAX_SLOT,
    METER_EXTRA_BASE,
    METER_EXTRA_MAX,
    VENDOR_CONFIG_FIRST,
    Point,
    local_index,
    object_instance,
    point_name,
    safe_name,
    standard_meter_index,
)

__all__ = [
    "CHARGER_SPECS", "CONNECTOR_SPECS", "MAX_SLOT", "MEASURAND_UNITS", "OFFSETS_SCOPE",
    "SITE_SPECS", "Point", "PointSpec", "PointState", "PointTable", "WriteRefused", "local_index",
    "object_instance", "point_name", "safe_name", "standard_meter_index",
]

OFFSETS_SCOPE = "points.offsets"
# Reliability of a point's value (BACnet property names; Modbus shows them as valid flags).
# A commandable point's writer runs when the value in force changes; an unchanged value written
# again reaches it at most this often (a refresh the smart-charging BMS watchdog counts), so a
# burst of repeated BMS writes is one call, not one per write (issue 13 item 6).
COMMAND_REFRESH_S = 60.0
NO_FAULT, STALE, NOT_AVAILABLE = "noFaultDetected", "communicationFailure", "unreliableOther"
log = logging.getLogger(__name__)

Listener = Callable[[list["Point"]], None]


@dataclass
class PointTable:
    """Every point of the running gateway, kept in step with the registry."""

    clock: Callable[[], float]
    state: PointState = field(default_factory=PointState)
    writer: PointWriter | None = None
    added: list[Listener] = field(default_factory=list)
    removed: list[Listener] = field(default_factory=list)
    changed: list[Listener] = field(default_factory=list)
    persist: Callable[[dict[str, str]], None] | None = None
    write_wait_s: float = 2.0
    _offsets: dict[str, int] = field(default_factory=dict)
    _points: dict[tuple[str, int], Point] = field(default_factory=dict)
    _by_charger: dict[str, dict[tuple, Point]] = field(default_factory=dict)
    _stations: dict[str, Any] = field(default_factory=dict)
    _names: dict[str, Point] = field(default_factory=dict)
    _warned: set[str] = field(default_factory=set)
    # Commandable points: the 16-level priority array both protocols write (BACnet at the
    # priority of the request, Modbus at `modbus.bacnet_priority`), so they show one value.
    _priorities: dict[tuple[str, int], list[Any]] = field(default_factory=dict)
    _commanded_at: dict[tuple[str, int], float] = field(default_factory=dict)

    # --- offsets ---------------------------------------------------------------------------
    def load(self, offsets: dict[str, str]) -> None:
        """Offsets persisted earlier: `meter:<measurand>|<phase>|<location>`, `config:<key>`."""
        for key, value in offsets.items():
            if key.startswith(("meter:", "config:")):
                self._offsets[key] = int(value)

    def offsets(self) -> dict[str, int]:
        return dict(self._offsets)

    def _allocate(self, key: str, first: int, limit: int) -> int | None:
        if key in self._offsets:
            return self._offsets[key]
        prefix = key.split(":", 1)[0] + ":"
        used = {v for k, v in self._offsets.items() if k.startswith(prefix)}
        nxt = max(used | {first - 1}) + 1
        if nxt >= limit:
            log.warning("no free point offset for %s: not exposed", key)
            return None
        self._offsets[key] = nxt
        if self.persist is not None:
            self.persist({key: str(nxt)})
        return nxt

    def meter_index(self, measurand: str, phase: str, location: str) -> int | None:
        fixed = standard_meter_index(measurand, phase, location)
        if fixed is not None:
            return fixed
        extra = self._allocate(f"meter:{measurand}|{phase}|{location}", 0, METER_EXTRA_MAX)
        return None if extra is None else METER_EXTRA_BASE + extra

    def config_index(self, key: str) -> int | None:
        standard = standard_key(key)  # EVlink's HeartBeatInterval is HeartbeatInterval (issue 14 item 10)
        if standard in STANDARD_CONFIG_KEYS:
            return STANDARD_CONFIG_KEYS.index(standard)
        return self._allocate(f"config:{key}", VENDOR_CONFIG_FIRST, CONFIG_MAX)

    # --- building --------------------------------------------------------------------------
    def sync(self, registry: Any) -> list[Point]:
        """Build or rebuild the points of every station; returns the points that were added."""
        new = self._add([Point(spec) for spec in SITE_SPECS])  # existing points are kept as they are
        for station in list(registry.stations.values()):
            new += self.sync_station(station)
        return new

    def sync_station(self, station: Any) -> list[Point]:
        """Points for one station: none for guests or slots out of range; removed when dropped."""
        self._stations[station.charger_id] = station
        slot = station.slot
        current = self._by_charger.get(station.charger_id, {})
        if slot is not None and not 1 <= slot <= MAX_SLOT and station.charger_id not in self._warned:
            self._warned.add(station.charger_id)
            log.warning("%s: slot %s is beyond %d, so it has no points", station.charger_id, slot, MAX_SLOT)
        if slot is None or not 1 <= slot <= MAX_SLOT:
            if current:
                self._remove(list(current.values()))
            return []
        if current and next(iter(current.values())).slot != slot:
            self._remove(list(current.values()))
        wanted: list[Point] = [Point(s, station.charger_id, slot) for s in CHARGER_SPECS]
        for connector_id in sorted({0, *station.connectors, *(k.connector_id for k in station.meters)}):
            wanted += self._connector_points(station, connector_id)
        for key in station.meters:
            wanted += self._meter_points(station, key)
        for entry in station.config.values():
            wanted += self._config_points(station, entry)
        return self._add(wanted)

    def restore(self, station: Any, record: dict[str, Any]) -> list[Point]:
        """Points seen before a restart (a `seen` record), without touching the model.

        So a BMS does not lose objects while a charger has not reported again after a restart;
        until it does, their values read as unknown (and stale while it is offline).
        """
        if station.slot is None or not 1 <= station.slot <= MAX_SLOT:
            return []
        self._stations[station.charger_id] = station
        wanted = [Point(s, station.charger_id, station.slot) for s in CHARGER_SPECS]
        for connector_id in record.get("connectors", []):
            wanted += self._connector_points(station, int(connector_id))
        for connector_id, measurand, phase, location in record.get("meters", []):
            wanted += self._meter_points(station, MeterKey(int(connector_id), measurand, phase, location))
        for key, writable in record.get("config", {}).items():
            wanted += self._config_points(station, ConfigKey(key, None, readonly=not writable))
        return self._add(wanted)

    def seen(self, charger_id: str) -> dict[str, Any]:
        """What `restore` needs: the connectors, meter values and keys a charger has points for."""
        pts = list(self._by_charger.get(charger_id, {}).values())
        return {
            "connectors": sorted({p.connector_id for p in pts if p.spec.kind == "connector"}),
            "meters": sorted([p.connector_id, *p.subject] for p in pts if p.spec.kind == "meter"),
            "config": dict(sorted((p.subject, p.spec.writable) for p in pts if p.spec.kind == "config")),
        }

    def _connector_points(self, station: Any, connector_id: int) -> list[Point]:
        if not 0 <= connector_id <= MAX_CONNECTOR:
            return []
        return [Point(s, station.charger_id, station.slot, connector_id) for s in CONNECTOR_SPECS
                if not (s.outlets_only and connector_id == 0)]

    def _meter_points(self, station: Any, key: Any) -> list[Point]:
        if not 0 <= key.connector_id <= MAX_CONNECTOR:
            return []
        index = self.meter_index(key.measurand, key.phase, key.location)
        if index is None:
            return []
        subject = (key.measurand, key.phase, key.location)
        return [Point(meter_spec(*subject), station.charger_id, station.slot, key.connector_id,
                      subject, index)]

    def _config_points(self, station: Any, entry: Any) -> list[Point]:
        index = self.config_index(entry.key)
        if index is None:
            return []
        pts = [Point(config_spec(entry.key, not entry.readonly), station.charger_id, station.slot,
                     None, entry.key, index)]
        if not entry.readonly:
            pts.append(Point(config_result_spec(entry.key), station.charger_id, station.slot,
                             None, entry.key, index))
        return pts

    def _add(self, wanted: list[Point]) -> list[Point]:
        new = []
        for p in wanted:
            existing = self._points.get(p.uid)
            if existing is not None and existing.spec.writable == p.spec.writable:
                continue
            if existing is not None:  # a configuration key turned writable or read-only
                self._remove([existing])
            self._points[p.uid] = p
            self._names[p.name] = p
            self._by_charger.setdefault(p.charger_id, {})[p.uid] = p
            new.append(p)
        _tell(self.added, new)
        return new

    def _remove(self, gone: list[Point]) -> None:
        for p in gone:
            self._points.pop(p.uid, None)
            self._names.pop(p.name, None)
            self._by_charger.get(p.charger_id, {}).pop(p.uid, None)
        _tell(self.removed, gone)

    # --- events ----------------------------------------------------------------------------
    def handle(self, event: ChangeEvent, registry: Registry) -> None:
        """Apply one registry ChangeEvent: add points first seen, then report changed values."""
        station = registry.get(event.charger_id)
        if station is None:
            return
        if event.kind == ChangeKind.ADDED or not self._same_slot(station):
            # Only a slot decides which points a station has; connectors, meters and keys come
            # as their own events. Rebuilding ~118 points per connect, boot or heartbeat cost
            # most of a restart's reconnect storm (docs/benchmarks.md, "Restart").
            self.sync_station(station)
        elif event.kind == ChangeKind.CONNECTOR and event.connector_id is not None:
            self._add(self._connector_points(station, event.connector_id))
        elif event.kind == ChangeKind.METER and event.key:
            meter = [p for key in event.key for p in self._meter_points(station, key)]
            # Known meter values came with their connector's points: nothing to add. Building
            # and comparing ~27 points per sampled value cost a fifth of the loop at 1,500 msg/s.
            if not meter or any(p.uid not in self._points for p in meter):
                self._add(self._connector_points(station, event.connector_id or 0) + meter)
        elif event.kind == ChangeKind.CONFIG and event.key in station.config:
            self._add(self._config_points(station, station.config[event.key]))
        self.notify(self.affected(event))

    def _same_slot(self, station: Any) -> bool:
        current = self._by_charger.get(station.charger_id)
        return bool(current) and next(iter(current.values())).slot == station.slot

    def affected(self, event: ChangeEvent) -> list[Point]:
        """Points whose value may have changed with this event."""
        pts = self._by_charger.get(event.charger_id, {}).values()
        if event.kind == ChangeKind.CONNECTOR:
            return [p for p in pts if p.connector_id == event.connector_id and p.spec.kind == "connector"]
        if event.kind == ChangeKind.METER:
            subjects = {(k.measurand, k.phase, k.location) for k in event.key}
            return [p for p in pts if p.connector_id == event.connector_id
                    and (p.subject in subjects or p.spec.key in ("SessionEnergy", "SessionDuration"))]
        if event.kind == ChangeKind.CONFIG:
            return [p for p in pts if p.subject == event.key]
        if event.kind == ChangeKind.STATION and event.key and "online" not in event.key:
            # Fields of the station itself (boot, heartbeat, registration, ...) are read by its
            # charger points only; the others read its online state alone (reliability).
            return [p for p in pts if p.spec.kind == "charger"]
        return list(pts)

    def notify(self, pts: list[Point]) -> None:
        _tell(self.changed, pts)

    def has(self, point: Point) -> bool:
        return self._points.get(point.uid) is point

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

    # --- reading ---------------------------------------------------------------------------
    def points(self) -> list[Point]:
        return sorted(self._points.values(), key=lambda p: (p.instance, p.spec.bacnet_type))

    def get(self, name: str) -> Point | None:
        return self._names.get(name)

    def find(self, uid: tuple[str, int]) -> Point | None:
        """The table's point with this identity (object type, instance), if it has one."""
        return self._points.get(uid)

    def read(self, point: Point) -> Any:
        return point.spec.source(self._ctx(point)) if point.spec.source else None

    def _ctx(self, point: Point) -> Ctx:
        station = self._stations.get(point.charger_id)
        connector = None
        if station is not None and point.connector_id is not None:
            # Connector 0 or an outlet not reported yet reads as a fresh connector (Niagara 6.2:
            # not every charger implements connector 0), never as a missing value.
            connector = station.connectors.get(point.connector_id) or Connector(point.connector_id)
        return Ctx(point, station, connector, self.state, self.clock())

    def read_default(self, point: Point) -> Any:
        """Relinquish default of a commandable point (what applies when no BMS commands it)."""
        fn = point.spec.relinquish_default
        return fn(self._ctx(point)) if fn is not None else self.read(point)

    def reliable(self, point: Point) -> bool:
        """A live value: read now from the charger (or held by the gateway)."""
        return self.reliability(point) == NO_FAULT

    def reliability(self, point: Point, value: Any = ...) -> str:
        """One meaning on both protocols (docs/bacnet.md, docs/modbus.md, "Not available"):

        no-fault-detected: a live value; communication-failure: the last known value, stale
        (charger offline) or kept from before a restart and not yet confirmed by the charger;
        unreliable-other: no value at all ("not available").
        """
        if (self.read(point) if value is ... else value) is None:  # callers that read pass the value
            return NOT_AVAILABLE
        if point.spec.kind == "site":
            return NO_FAULT
        station = self._stations.get(point.charger_id)
        if station is None:
            return NO_FAULT
        if point.spec.ocpp_source.startswith("BootNotification:") and station.last_boot is None:
            return STALE  # identity kept from before a restart: no BootNotification since
        if not point.spec.stale_when_offline:
            return NO_FAULT
        if not station.online or self._restored(point, station):
            return STALE
        return NO_FAULT

    def _restored(self, point: Point, station: Any) -> bool:
        """A value restored after a restart that the charger has not sent again since."""
        if point.spec.kind == "meter":
            reading = station.meters.get(MeterKey(point.connector_id or 0, *point.subject))
            return reading is not None and reading.restored and _may_have_moved(
                station.connectors.get(point.connector_id or 0))
        if point.spec.kind == "connector":
            connector = station.connectors.get(point.connector_id)
            return connector is not None and connector.restored
        return False

    def connector_confirmed(self, station: Any, connector_id: int) -> bool:
        """The Modbus valid flag: online, reported since the start, no restored reading left."""
        connector = station.connectors.get(connector_id)
        if not station.online or connector is None or connector.restored:
            return False
        return not (_may_have_moved(connector)
                    and any(r.restored for k, r in station.meters.items() if k.connector_id == connector_id))

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


class PointWriter(Protocol):
    """Carries out a checked write and shows its result (`points.commands.PointWrites`)."""

    async def write(self, table: PointTable, point: Point, value: Any, wait_s: float) -> str:
        """The result text, or WriteRefused."""


def _may_have_moved(connector: Any) -> bool:
    """Whether a reading kept from before a restart may be out of date: unless the charger has
    confirmed the connector idle since (no transaction: no energy flows), it may."""
    return connector is None or connector.restored or connector.transaction_id is not None


def _tell(listeners: list[Listener], points: list[Point]) -> None:
    """Call each listener; one protocol's failure must not stop the others or the caller."""
    if not points:
        return
    for listener in list(listeners):
        try:
            listener(points)
        except Exception:
            log.exception("point listener %r failed", listener)


def _result_key(point: Point) -> tuple[str, int | None, str]:
    """Which result a point shows or writes: config keys by key, others by result_of."""
    if point.spec.kind in ("config", "config_result"):
        return (point.charger_id, None, f"{CONFIG_PREFIX}{point.subject}")
    return (point.charger_id, point.connector_id, point.spec.result_of or point.spec.key)

