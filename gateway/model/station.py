"""The live model of every charger: connectors, meter readings, configuration keys.

Free of I/O (no websockets, ocpp, BAC0, pymodbus or SQLite): the session writes into it, the
point table, the BMS servers and the admin API read it, and subscribers hear about changes
through `Registry.subscribe`. The clock is injected so tests can drive time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, NamedTuple

# Appendix 2 of the Niagara guide / OCPP 1.6 ChargePointStatus, in spec order.
CONNECTOR_STATUSES = (
    "Available", "Preparing", "Charging", "SuspendedEVSE", "SuspendedEV",
    "Finishing", "Reserved", "Unavailable", "Faulted",
)
# Appendix 1 / OCPP 1.6 ChargePointErrorCode, in spec order.
ERROR_CODES = (
    "ConnectorLockFailure", "EVCommunicationError", "GroundFailure", "HighTemperature",
    "InternalError", "LocalListConflict", "NoError", "OtherError", "OverCurrentFailure",
    "PowerMeterFailure", "PowerSwitchFailure", "ReaderFailure", "ResetFailure",
    "UnderVoltage", "OverVoltage", "WeakSignal",
)

Clock = Callable[[], float]


@dataclass(slots=True)
class BootInfo:
    """What a charger says about itself in BootNotification (Niagara 6: device properties)."""

    vendor: str = ""
    model: str = ""
    charge_point_serial: str = ""
    charge_box_serial: str = ""
    firmware_version: str = ""
    iccid: str = ""
    imsi: str = ""
    meter_type: str = ""
    meter_serial: str = ""

    @classmethod
    def from_payload(cls, p: dict[str, Any]) -> BootInfo:
        return cls(
            vendor=p.get("chargePointVendor", ""), model=p.get("chargePointModel", ""),
            charge_point_serial=p.get("chargePointSerialNumber", ""),
            charge_box_serial=p.get("chargeBoxSerialNumber", ""),
            firmware_version=p.get("firmwareVersion", ""), iccid=p.get("iccid", ""),
            imsi=p.get("imsi", ""), meter_type=p.get("meterType", ""),
            meter_serial=p.get("meterSerialNumber", ""),
        )


@dataclass(slots=True)
class Connector:
    """One outlet; connector 0 is the charge point itself (Niagara 6.2)."""

    connector_id: int
    status: str = ""  # "": never reported (not available), not a status the charger never sent
    error_code: str = ""
    info: str = ""
    vendor_id: str = ""
    vendor_error_code: str = ""
    last_update: float = 0.0
    transaction_id: int | None = None
    id_tag: str = ""
    session_start: float | None = None
    meter_start_wh: float | None = None
    availability: str = "Operative"
    availability_answer: str = ""
    # Kept from before a gateway restart and not yet reported again by the charger (points show
    # it flagged as not confirmed); cleared by the next StatusNotification.
    restored: bool = False
    session_end: float | None = None  # StopTransaction timestamp of the last transaction


class MeterKey(NamedTuple):
    """Readings are kept raw, keyed the way OCPP qualifies them; totals are derived on read.

    A named tuple, not a dataclass: hashed and compared in C, and built for every sampled value
    of every MeterValues (a frozen dataclass's hash and __init__ were 5% of the loop at
    thousands of messages a second, docs/benchmarks.md).
    """

    connector_id: int
    measurand: str = "Energy.Active.Import.Register"
    phase: str = ""
    location: str = "Outlet"


@dataclass(slots=True)
class MeterReading:
    value: float
    unit: str
    timestamp: float
    context: str = "Sample.Periodic"
    restored: bool = False  # the last reading from before a gateway restart, not yet sent again


@dataclass(slots=True)
class ConfigKey:
    key: str
    value: str | None
    readonly: bool
    pending_value: str | None = None  # set after a RebootRequired answer


class ChangeKind(StrEnum):
    """The kinds of change the registry publishes; each has its own event type below."""

    ADDED = "added"          # StationAdded: a charger seen for the first time
    STATION = "station"      # StationChanged: boot, registration, online state, slot, ...
    CONNECTOR = "connector"  # ConnectorChanged: status, transaction, availability of one connector
    METER = "meter"          # MeterChanged: the readings of one MeterValues message
    CONFIG = "config"        # ConfigChanged: the configuration keys one read set, or that are gone
    REMOVED = "removed"      # StationRemoved: a guest dropped from the discovery list


@dataclass(frozen=True, slots=True)
class ChangeEvent:
    """What changed, for subscribers of `Registry.subscribe`; `kind` says which subclass it is."""

    kind: ClassVar[ChangeKind]
    charger_id: str
    connector_id: int | None = None
    key: Any = None


@dataclass(frozen=True, slots=True)
class StationAdded(ChangeEvent):
    kind: ClassVar[ChangeKind] = ChangeKind.ADDED


@dataclass(frozen=True, slots=True)
class StationRemoved(ChangeEvent):
    kind: ClassVar[ChangeKind] = ChangeKind.REMOVED


@dataclass(frozen=True, slots=True)
class StationChanged(ChangeEvent):
    kind: ClassVar[ChangeKind] = ChangeKind.STATION


@dataclass(frozen=True, slots=True)
class ConnectorChanged(ChangeEvent):
    kind: ClassVar[ChangeKind] = ChangeKind.CONNECTOR
    connector_id: int = 0


@dataclass(frozen=True, slots=True)
class MeterChanged(ChangeEvent):
    """`key`: the MeterKeys one message updated (one event per message, not per sampled value)."""

    kind: ClassVar[ChangeKind] = ChangeKind.METER
    connector_id: int = 0
    key: tuple[MeterKey, ...] = ()


@dataclass(frozen=True, slots=True)
class ConfigChanged(ChangeEvent):
    """`key`: the configuration keys set, or gone from the charger (then not in `Station.config`);
    one event per configuration read or change, not per key (a wallbox reports ~40 keys)."""

    kind: ClassVar[ChangeKind] = ChangeKind.CONFIG
    key: tuple[str, ...] = ()


@dataclass(slots=True)
class Station:
    charger_id: str
    slot: int | None = None  # None: a guest, not in the device database
    registration: str = "Pending"  # the answer this charger gets (device or guest setting)
    boot: BootInfo = field(default_factory=BootInfo)
    boot_status: str = ""  # what we answered to its last BootNotification
    online: bool = False
    connected: bool = False
    fault: bool = False
    connected_since: float | None = None
    last_seen: float | None = None
    last_heartbeat: float | None = None
    last_boot: float | None = None
    heartbeat_interval_s: int = 300
    reconnects: int = 0
    last_disconnect: str = ""
    last_disconnect_at: float | None = None
    subprotocol: str = ""
    remote_address: str = ""
    clock_skew_s: float | None = None
    connectors: dict[int, Connector] = field(default_factory=dict)
    meters: dict[MeterKey, MeterReading] = field(default_factory=dict)
    config: dict[str, ConfigKey] = field(default_factory=dict)
    unknown_config_keys: list[str] = field(default_factory=list)
    diagnostics_status: str = ""
    firmware_status: str = ""
    quirk_name: str | None = None  # assigned by an operator; None: matched on the BootNotification

    @property
    def is_guest(self) -> bool:
        return self.slot is None

    def connector(self, connector_id: int) -> Connector:
        """The connector, created on first report (Niagara 6.1)."""
        found = self.connectors.get(connector_id)
        if found is None:
            found = self.connectors[connector_id] = Connector(connector_id)
        return found

    def config_value(self, key: str, default: str | None = None) -> str | None:
        """A key's value; key names are case-insensitive (OCPP 1.6 chapter 9, CiString)."""
        entry = self.config.get(key)
        if entry is None:
            entry = next((e for k, e in self.config.items() if k.lower() == key.lower()), None)
        return entry.value if entry is not None and entry.value is not None else default

    def reading(self, connector_id: int, measurand: str, phase: str = "",
                location: str | None = None) -> MeterReading | None:
        """Newest reading for a measurand, any location unless one is named."""
        best = None
        for k, r in self.meters.items():
            if (k.connector_id == connector_id and k.measurand == measurand and k.phase == phase
                    and (location is None or k.location == location)):
                if best is None or r.timestamp > best.timestamp:
                    best = r
        return best


class Registry:
    """All stations known since start (the Niagara "Discover" list plus the device database)."""

    def __init__(self, clock: Clock = time.time) -> None:
        self.clock = clock
        self.stations: dict[str, Station] = {}
        self._subscribers: list[Callable[[ChangeEvent], None]] = []
        # False once a look found no guest `drop_oldest_guests` may drop; a disconnect or a slot
        # change may make one. Spares a look at every station on each guest's connect (a storm of
        # 10,000 new guests made that quadratic).
        self._idle_guests_possible = True

    def subscribe(self, callback: Callable[[ChangeEvent], None]) -> None:
        self._subscribers.append(callback)

    def publish(self, event: ChangeEvent) -> None:
        for callback in list(self._subscribers):
            callback(event)

    def get(self, charger_id: str) -> Station | None:
        return self.stations.get(charger_id)

    def ensure(self, charger_id: str) -> Station:
        station = self.stations.get(charger_id)
        if station is None:
            station = self.stations[charger_id] = Station(charger_id)
            self.publish(StationAdded(charger_id))
        return station

    def forget(self, charger_id: str) -> bool:
        """Drop a station from the live model (a guest the operator removed or the bound dropped)."""
        if self.stations.pop(charger_id, None) is None:
            return False
        self.publish(StationRemoved(charger_id))
        return True

    def drop_oldest_guests(self, max_guests: int) -> list[str]:
        """Keep at most `max_guests` guests (not in the device database): forget the ones seen
        longest ago first; a connected guest is never dropped. Returns the forgotten ids."""
        if len(self.stations) <= max_guests or not self._idle_guests_possible:
            return []
        guests = [s for s in self.stations.values() if s.slot is None]
        excess = len(guests) - max_guests
        if excess <= 0:
            return []
        idle = sorted((s for s in guests if not s.connected), key=lambda s: s.last_seen or 0.0)
        self._idle_guests_possible = len(idle) > excess
        dropped = [s.charger_id for s in idle[:excess]]
        for charger_id in dropped:
            self.forget(charger_id)
        return dropped

    def added_stations(self) -> list[Station]:
        """Chargers in the device database, in slot order."""
        return sorted((s for s in self.stations.values() if s.slot is not None),
                      key=lambda s: s.slot or 0)

    # --- updates the session makes; each publishes one event -----------------------------
    def set_online(self, station: Station, online: bool, reason: str = "",
                   fault_on_close: bool = True) -> None:
        now = self.clock()
        if online:
            if station.connected_since is not None or station.last_disconnect_at is not None:
                station.reconnects += 1
            station.online = station.connected = True
            station.fault, station.connected_since, station.last_seen = False, now, now
        else:
            station.connected = False
            self._idle_guests_possible = True
            station.online = not fault_on_close and station.online
            station.fault = fault_on_close
            station.connected_since = None
            station.last_disconnect, station.last_disconnect_at = reason, now
        self.publish(StationChanged(station.charger_id))

    def touch(self, station: Station) -> None:
        station.last_seen = self.clock()

    def update_station(self, station: Station, **changes: Any) -> None:
        if "slot" in changes:
            self._idle_guests_possible = True
        for name, value in changes.items():
            setattr(station, name, value)
        # `key`: the fields changed, so the point table refreshes only the points that read
        # them (set_online and refresh_liveness publish no key: online touches every point).
        self.publish(StationChanged(station.charger_id, key=tuple(changes)))

    def update_connector(self, station: Station, connector_id: int, **changes: Any) -> Connector:
        connector = station.connector(connector_id)
        for name, value in changes.items():
            setattr(connector, name, value)
        connector.last_update = self.clock()
        self.publish(ConnectorChanged(station.charger_id, connector_id))
        return connector

    def record_reading(self, station: Station, key: MeterKey, reading: MeterReading) -> None:
        self.record_readings(station, key.connector_id, reading.timestamp,
                             [(key, reading.value, reading.unit, reading.context)])

    def record_readings(self, station: Station, connector_id: int, timestamp: float,
                        readings: Sequence[tuple[MeterKey, float, str, str]]) -> None:
        """Store a message's readings, (key, value, unit, context) each, and publish ONE event whose
        key is the tuple of MeterKeys (an event per sampled value made subscribers the hot path at
        thousands of messages/s). A kept reading is updated in place: a new object for every
        sampled value lived until the charger's next message, and every young garbage collection
        walked tens of thousands of them at 5,000 chargers (docs/benchmarks.md)."""
        if not readings:
            return
        meters = station.meters
        for key, value, unit, context in readings:
            old = meters.get(key)
            if old is None:
                meters[key] = MeterReading(value, unit, timestamp, context)
            elif ((old.restored or timestamp >= old.timestamp)  # else replayed after an outage: history
                  # An energy register reading below the last one in the same unit (a register
                  # only grows, OCPP 1.6 7.31) stays out: a BMS trend never sees consumption go back.
                  and not (value < old.value and unit == old.unit and key.measurand.endswith(".Register"))):
                old.value, old.unit, old.timestamp, old.context, old.restored = value, unit, timestamp, context, False
        self.publish(MeterChanged(station.charger_id, connector_id, tuple(key for key, *_ in readings)))

    def set_config(self, station: Station, entry: ConfigKey) -> None:
        self.set_configs(station, [entry])

    def set_configs(self, station: Station, entries: Iterable[ConfigKey]) -> None:
        """Store the keys one configuration read found and publish ONE event for all of them."""
        keys = []
        for entry in entries:
            station.config[entry.key] = entry
            keys.append(entry.key)
        if keys:
            self.publish(ConfigChanged(station.charger_id, key=tuple(keys)))

    def drop_configs(self, station: Station, keys: Iterable[str]) -> None:
        """Forget keys the charger no longer has (a firmware update); ONE event for all of them."""
        gone = tuple(key for key in keys if station.config.pop(key, None) is not None)
        if gone:
            self.publish(ConfigChanged(station.charger_id, key=gone))

    def refresh_liveness(self, station: Station, multiple: float) -> bool:
        """Mark a silent charger offline (Niagara: ping fault without a closed socket)."""
        if not station.online or station.last_seen is None:
            return False
        if self.clock() - station.last_seen > multiple * max(station.heartbeat_interval_s, 1):
            station.online, station.fault = False, True
            if station.connected:
                station.last_disconnect = "no message within heartbeat timeout"
            self.publish(StationChanged(station.charger_id))
            return True
        return False
