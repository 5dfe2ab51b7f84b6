"""The point table: every value the gateway exposes to a BMS, with a stable address.

The specs live in `points.catalog`; this table makes a `Point` of each spec for the site, each
added charger, each connector, meter value and configuration key it has seen, and follows the
live model (`handle(event, registry)`: one registry event in, the added and changed points out
to the `added` / `removed` / `changed` listeners). BACnet (`points.bacnet.device`), Modbus
(`points.modbus.server`) and the exports iterate it; none of them defines a point itself. Free of
network I/O: the installer (`points.service`) feeds it and persists what it allocates (`persist`,
`load`, kv scope `OFFSETS_SCOPE`). Reading and reliability are in `points.table_values`; writes and
the one priority array both protocols share (`write`, `command`) in `points.table_writes`.

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
from typing import Any

from gateway.chargers.standard_keys import standard_key
from gateway.errors import WriteRefused
from gateway.model.station import ChangeEvent, ChangeKind, ConfigKey, MeterKey, Registry
from points.catalog import (
    CHARGER_SPECS,
    CONNECTOR_SPECS,
    SITE_SPECS,
    STANDARD_CONFIG_KEYS,
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
from points.spec import MEASURAND_UNITS, PointSpec, PointState
from points.table_values import NO_FAULT, NOT_AVAILABLE, STALE, TableValues
from points.table_writes import COMMAND_REFRESH_S, PointWriter, TableWrites

__all__ = [
    "CHARGER_SPECS", "COMMAND_REFRESH_S", "CONNECTOR_SPECS", "MAX_SLOT", "MEASURAND_UNITS", "NOT_AVAILABLE",
    "NO_FAULT", "OFFSETS_SCOPE", "SITE_SPECS", "STALE", "Point", "PointSpec", "PointState", "PointTable",
    "PointWriter", "WriteRefused", "local_index", "object_instance", "point_name", "safe_name",
    "standard_meter_index",
]

OFFSETS_SCOPE = "points.offsets"
log = logging.getLogger(__name__)

Listener = Callable[[list["Point"]], None]


@dataclass
class PointTable(TableValues, TableWrites):
    """Every point of the running gateway, kept in step with the registry.

    Reading (`TableValues`, points/table_values.py) and writing (`TableWrites`,
    points/table_writes.py) are inherited; this class builds the points and follows the model.
    """

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
    # What each charger has points for, so that an event about something known builds nothing:
    # ("connector", id), ("meter", connector id, subject), ("config", key, writable).
    _subjects: dict[str, set[tuple[Any, ...]]] = field(default_factory=dict)
    # The station object and slot each charger's points were last built for (`sync_station`).
    _built: dict[str, tuple[Any, int | None]] = field(default_factory=dict)
    _unsaved_offsets: dict[str, str] = field(default_factory=dict)  # persisted with the next points
    # Each connector's points a MeterValues changes, by (charger, connector, subject): a meter
    # point's subject is (measurand, phase, location), the session points' is SESSION. So
    # `affected` looks up the event's keys instead of filtering every point of the charger.
    _meter_index: dict[tuple[str, int | None, Any], list[Point]] = field(default_factory=dict)
    # Commandable points' priority arrays and when their writer last ran (points/table_writes.py).
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
        self._unsaved_offsets[key] = str(nxt)  # persisted in one write with the points (`_add`)
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
        self._built[station.charger_id] = (station, station.slot)
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
        """Keep the points not kept yet; persist the offsets they took and announce them, once."""
        if self._unsaved_offsets:
            unsaved, self._unsaved_offsets = self._unsaved_offsets, {}
            if self.persist is not None:
                self.persist(unsaved)
        new = []
        for p in wanted:
            uid = p.uid
            existing = self._points.get(uid)
            if existing is not None and existing.spec.writable == p.spec.writable:
                continue
            if existing is not None:  # a configuration key turned writable or read-only
                self._remove([existing])
            self._points[uid] = p
            self._names[p.name] = p
            self._by_charger.setdefault(p.charger_id, {})[uid] = p
            subject = _subject_of(p)
            if subject is not None:
                self._subjects.setdefault(p.charger_id, set()).add(subject)
            metered = _metered_by(p)
            if metered is not None:
                self._meter_index.setdefault(metered, []).append(p)
            new.append(p)
        _tell(self.added, new)
        return new

    def _remove(self, gone: list[Point]) -> None:
        for p in gone:
            self._points.pop(p.uid, None)
            self._names.pop(p.name, None)
            self._by_charger.get(p.charger_id, {}).pop(p.uid, None)
            self._subjects.get(p.charger_id, set()).discard(_subject_of(p))
            metered = _metered_by(p)
            if metered is not None and p in self._meter_index.get(metered, ()):
                self._meter_index[metered].remove(p)
                if not self._meter_index[metered]:
                    del self._meter_index[metered]
        _tell(self.removed, gone)

    # --- events ----------------------------------------------------------------------------
    def handle(self, event: ChangeEvent, registry: Registry) -> None:
        """Apply one registry ChangeEvent: add points first seen, then report changed values."""
        station = registry.get(event.charger_id)
        if station is None:
            return
        built = self._built.get(station.charger_id)
        # Only a new station object or a new slot changes which points a charger has: every
        # connector, meter value and key arrives with an event of its own.
        unchanged = built is not None and built[0] is station and built[1] == station.slot
        if unchanged and station.charger_id not in self._by_charger:
            return  # a guest (or a slot out of range) as it was built: no points, nothing to tell
        if event.kind in (ChangeKind.ADDED, ChangeKind.STATION) or station.charger_id not in self._by_charger:
            if not unchanged:
                self.sync_station(station)
        else:
            self._add_new(event, station)
        self.notify(self.affected(event))

    def _add_new(self, event: ChangeEvent, station: Any) -> None:
        """The points of what this event shows for the first time; nothing is built for what
        has points already (a busy loop: ~27 points per sampled value, 1,500 messages a second)."""
        known = self._subjects.get(station.charger_id, set())
        if event.kind == ChangeKind.CONNECTOR and event.connector_id is not None:
            if ("connector", event.connector_id) not in known:
                self._add(self._connector_points(station, event.connector_id))
        elif event.kind == ChangeKind.METER and event.key:
            connector_id = event.connector_id or 0
            new = [k for k in event.key if ("meter", k.connector_id, (k.measurand, k.phase, k.location)) not in known]
            if new or ("connector", connector_id) not in known:
                self._add(self._connector_points(station, connector_id)
                          + [p for key in new for p in self._meter_points(station, key)])
        elif event.kind == ChangeKind.CONFIG:  # one event for a whole configuration read
            entries = [station.config[key] for key in event.key if key in station.config]
            self._add([p for entry in entries if ("config", entry.key, not entry.readonly) not in known
                       for p in self._config_points(station, entry)])

    def affected(self, event: ChangeEvent) -> list[Point]:
        """Points whose value may have changed with this event."""
        pts = self._by_charger.get(event.charger_id, {}).values()
        if event.kind == ChangeKind.CONNECTOR:
            return [p for p in pts if p.connector_id == event.connector_id and p.spec.kind == "connector"]
        if event.kind == ChangeKind.METER:
            index, charger_id, connector_id = self._meter_index, event.charger_id, event.connector_id
            found: list[Point] = []
            for key in dict.fromkeys((k.measurand, k.phase, k.location) for k in event.key):
                found += index.get((charger_id, connector_id, key), ())
            return found + index.get((charger_id, connector_id, SESSION), [])
        if event.kind == ChangeKind.CONFIG:
            keys = set(event.key)
            return [p for p in pts if p.spec.kind in ("config", "config_result") and p.subject in keys]
        if event.kind == ChangeKind.STATION and event.key and "online" not in event.key:
            # Fields of the station itself (boot, heartbeat, registration, ...) are read by its
            # charger points only; the others read its online state alone (reliability).
            return [p for p in pts if p.spec.kind == "charger"]
        return list(pts)

    def notify(self, pts: list[Point]) -> None:
        _tell(self.changed, pts)

    def has(self, point: Point) -> bool:
        return self._points.get(point.uid) is point

    # --- finding -----------------------------------------------------------------------------
    def points(self) -> list[Point]:
        return sorted(self._points.values(), key=lambda p: (p.instance, p.spec.bacnet_type))

    def points_of(self, charger_id: str) -> list[Point]:
        """One charger's points ("": the site's), unsorted: no walk over every charger's."""
        return list(self._by_charger.get(charger_id, {}).values())

    def get(self, name: str) -> Point | None:
        return self._names.get(name)

    def find(self, uid: tuple[str, int]) -> Point | None:
        """The table's point with this identity (object type, instance), if it has one."""
        return self._points.get(uid)


def _subject_of(point: Point) -> tuple[Any, ...] | None:
    """What a point shows, as `PointTable._subjects` keeps it (None: always built with its charger)."""
    kind = point.spec.kind
    if kind == "connector":
        return ("connector", point.connector_id)
    if kind == "meter":
        return ("meter", point.connector_id, point.subject)
    if kind == "config":
        return ("config", point.subject, point.spec.writable)
    return None


SESSION = "session"  # the subject of the connector points every MeterValues may change
_SESSION_SPECS = ("SessionEnergy", "SessionDuration")


def _metered_by(point: Point) -> tuple[str, int | None, Any] | None:
    """Where `PointTable._meter_index` files a point a MeterValues changes (None: elsewhere)."""
    if point.spec.kind == "meter":
        return (point.charger_id, point.connector_id, point.subject)
    if point.spec.key in _SESSION_SPECS:
        return (point.charger_id, point.connector_id, SESSION)
    return None


def _tell(listeners: list[Listener], points: list[Point]) -> None:
    """Call each listener; one protocol's failure must not stop the others or the caller."""
    if not points:
        return
    for listener in list(listeners):
        try:
            listener(points)
        except Exception:
            log.exception("point listener %r failed", listener)
