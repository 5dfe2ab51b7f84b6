"""The specs of the point table: what each point is, where its value comes from, how it is typed.

Kept apart from `points.table` (which numbers, names and tracks points) so the catalog reads as
the data it is. Offsets in these tables are addresses: append new specs, never reorder, never
reuse an offset (a test pins them).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from gateway.chargers.standard_keys import STANDARD_CONFIG_KEYS as STANDARD_CONFIG_KEYS
from gateway.charging.inputs import SEND_STATES
from gateway.charging.limit import SOURCES
from gateway.charging.profiles import NiagaraProfileSettings
from gateway.errors import WriteRefused
from gateway.model.station import CONNECTOR_STATUSES, ERROR_CODES
from gateway.model.timestamps import iso_z

# BACnet object types a point can have (bacpypes3 names) and their EDE numeric codes.
BACNET_TYPE_CODES = {
    "analog-input": 0, "analog-value": 2, "binary-input": 3, "binary-value": 5, "device": 8,
    "multi-state-input": 13, "multi-state-value": 19, "characterstring-value": 40,
}
# Our unit names -> (bacpypes3 EngineeringUnits name, BACnet code, text). Codes: notes 3.2.
UNITS: dict[str, tuple[str, int, str]] = {
    "": ("noUnits", 95, "no-units"),
    "W": ("watts", 47, "W"), "kW": ("kilowatts", 48, "kW"),
    "Wh": ("wattHours", 18, "Wh"), "kWh": ("kilowattHours", 19, "kWh"),
    "var": ("voltAmperesReactive", 11, "var"), "kvarh": ("kilovoltAmpereHoursReactive", 243, "kvarh"),
    "A": ("amperes", 3, "A"), "V": ("volts", 5, "V"), "degC": ("degreesCelsius", 62, "°C"),
    "s": ("seconds", 73, "s"), "%": ("percent", 98, "%"), "Hz": ("hertz", 27, "Hz"),
    "PF": ("powerFactor", 15, "power-factor"), "rpm": ("revolutionsPerMinute", 104, "rpm"),
}
# OCPP 1.6 Measurand (spec 7.31), in spec order; the position is the fixed meter offset.
MEASURANDS = (
    "Current.Export", "Current.Import", "Current.Offered", "Energy.Active.Export.Register",
    "Energy.Active.Import.Register", "Energy.Reactive.Export.Register",
    "Energy.Reactive.Import.Register", "Energy.Active.Export.Interval",
    "Energy.Active.Import.Interval", "Energy.Reactive.Export.Interval",
    "Energy.Reactive.Import.Interval", "Frequency", "Power.Active.Export", "Power.Active.Import",
    "Power.Factor", "Power.Offered", "Power.Reactive.Export", "Power.Reactive.Import", "RPM",
    "SoC", "Temperature", "Voltage",
)
PHASES = ("", "L1", "L2", "L3", "N", "L1-N", "L2-N", "L3-N", "L1-L2", "L2-L3", "L3-L1")
# The unit a point shows for each measurand family; readings are converted to it.
MEASURAND_UNITS = {
    "Current": "A", "Energy.Active": "kWh", "Energy.Reactive": "kvarh", "Frequency": "Hz",
    "Power.Active": "W", "Power.Factor": "PF", "Power.Offered": "W", "Power.Reactive": "var",
    "RPM": "rpm", "SoC": "%", "Temperature": "degC", "Voltage": "V",
}
# COV increments that do not flood a BMS (notes 3.3): 100 W, 10 Wh, 0.1 A, 1 V.
COV_INCREMENTS = {"W": 100.0, "kWh": 0.01, "kvarh": 0.01, "var": 100.0, "A": 0.1, "V": 1.0,
                  "degC": 0.5, "%": 1.0, "Hz": 0.1, "PF": 0.01, "rpm": 10.0, "s": 60.0}
# The OCPP 1.6 standard configuration keys are one table (gateway/chargers/standard_keys.py), append only:
# position = offset; imported above for the point table and Modbus.
CONFIG_PREFIX = "config:"
REGISTRATION_STATES = ("Accepted", "Pending", "Rejected")
AVAILABILITY_STATES = ("Operative", "Inoperative")
RESET_STATES = ("Idle", "Soft", "Hard")
# Niagara guide 6.3 smart-charging properties; OCPP ChargingRateUnit / kind / purpose.
SC_UNIT_STATES = ("A", "W")
SC_KIND_STATES = ("Absolute", "Recurring", "Relative")
SC_PURPOSE_STATES = ("ChargePointMaxProfile", "TxDefaultProfile", "TxProfile")
# Outcome of the last site-profile write; the first state when the connector has no session.
SC_SEND_STATES = ("Not available", *SEND_STATES)
LIMIT_SOURCE_STATES = SOURCES  # "none": no limit in force


class WriteCommand(StrEnum):
    """What a write to a point does (`PointSpec.on_write`); `points.commands.PointCommands` has one
    method per member."""

    CHANGE_CONFIGURATION = "change_configuration"
    RESET = "reset"
    CLEAR_CACHE = "clear_cache"
    UNLOCK = "unlock"
    REMOTE_START = "remote_start"
    REMOTE_STOP = "remote_stop"
    AVAILABILITY = "availability"
    REGISTRATION = "registration"
    SMART_SETTING = "smart_setting"
    SITE_POWER_LIMIT = "site_power_limit"
    SITE_CURRENT_LIMIT = "site_current_limit"


# Result points show one of these words, or the charger's answer (Accepted, Rejected,
# NotSupported, RebootRequired, Unlocked, UnlockFailed, ...), or Pending/Stored/Applied/Timeout/
# CALLERROR/Cancelled/Failed (a refusal: `gateway.errors.REFUSAL_OUTCOMES`): never more than
# RESULT_TEXT_MAX characters (a Modbus result register holds 16; issue 14 item 7).
RESULT_TEXT_MAX = 16


@dataclass
class SiteLimits:
    """What the BMS/EMS commands for the whole site; the allocator reads these."""

    power_limit_kw: float = 10000.0
    current_limit_a: float = 10000.0
    default_power_kw: float = 10000.0
    default_current_a: float = 10000.0


@dataclass
class PointState:
    """Values that live in the gateway, not in a charger: results, settings, site limits."""

    results: dict[tuple[str, int | None, str], str] = field(default_factory=dict)
    site: SiteLimits = field(default_factory=SiteLimits)
    not_exposed: dict[str, int] = field(default_factory=dict)  # protocol -> added chargers it cannot show
    # The smart-charging controller (gateway.charging.controller): the one owner of the Niagara
    # 6.3 settings and of the site limit in force; points only show and forward writes.
    charging: Any = None

    def smart_for(self, charger_id: str, connector_id: int) -> NiagaraProfileSettings:
        if self.charging is None:
            return NiagaraProfileSettings(connector_id=connector_id)
        return self.charging.settings_for(charger_id, connector_id)


@dataclass(frozen=True)
class Ctx:
    """What a source reads from: the point, its station and connector, gateway state, now."""

    point: Any
    station: Any
    connector: Any
    state: PointState
    now: float

    def result(self, name: str) -> str:
        p = self.point
        return self.state.results.get((p.charger_id, p.connector_id, name), "")

    def smart(self) -> NiagaraProfileSettings:
        return self.state.smart_for(self.point.charger_id, self.point.connector_id or 0)


Source = Callable[[Ctx], Any]


@dataclass(frozen=True)
class PointSpec:
    """One kind of point. `offset` is its address inside its block (see points.table)."""

    key: str
    kind: str  # site | charger | connector | meter | config | config_result
    offset: int
    bacnet_type: str
    modbus_type: str  # float32 | uint16 | uint32 | int32 | string (gateway-side text)
    units: str = ""
    writable: bool = False
    commandable: bool = False
    source: Source | None = None
    on_write: str = ""  # a WriteCommand, "" when not writable
    states: tuple[str, ...] = ()
    description: str = ""
    stale_when_offline: bool = True
    min_value: float | None = None
    max_value: float | None = None
    cov_increment: float | None = None
    outlets_only: bool = False
    dynamic: bool = False  # changes with time alone (refreshed periodically)
    result_of: str = ""  # for a result point: the key of the point whose writes it reports
    relinquish_default: Source | None = None
    ocpp_source: str = ""  # the OCPP field, for the EDE vendor-specific-address column

    @property
    def is_analog(self) -> bool:
        return self.bacnet_type.startswith("analog")

    def coerce(self, value: Any) -> Any:
        """A written value in the point's type, or WriteRefused (checked before anything runs)."""
        t = self.bacnet_type
        try:
            if t.startswith("analog"):
                v = float(value)
                if math.isnan(v) or math.isinf(v):
                    raise WriteRefused("not a number", "invalid-value")
                if (self.min_value is not None and v < self.min_value) or (
                        self.max_value is not None and v > self.max_value):
                    raise WriteRefused(f"{v:g} outside {self.min_value:g}..{self.max_value:g}",
                                       "value-out-of-range")
                return round(v, 3)  # BACnet REAL is float32: 33.3 arrives as 33.2999...
            if t.startswith("binary"):
                return bool(int(value)) if not isinstance(value, str) else value.lower() in ("1", "true", "active")
            if t.startswith("multi-state"):
                if isinstance(value, str) and value not in self.states:
                    raise WriteRefused(f"{value!r} is not one of {self.states}", "value-out-of-range")
                v = self.states.index(value) + 1 if isinstance(value, str) else int(value)
                if not 1 <= v <= len(self.states):
                    raise WriteRefused(f"state {v} outside 1..{len(self.states)}", "value-out-of-range")
                return v
        except (TypeError, ValueError):
            raise WriteRefused(f"{value!r} is not a valid {t} value", "invalid-value") from None
        return str(value)


def _iso(ts: float | None) -> str:
    """UTC time to the second (20 characters: fits a Modbus STRING(20); a BMS needs no ms)."""
    return iso_z(int(ts))[:19] + "Z" if ts else ""


def _state(states: tuple[str, ...], value: str | None) -> int | None:
    return states.index(value) + 1 if value in states else None


def _station(fn: Callable[[Any], Any]) -> Source:
    return lambda c: fn(c.station) if c.station is not None else None


def _connector(fn: Callable[[Any], Any]) -> Source:
    return lambda c: fn(c.connector) if c.connector is not None else None


def _result(c: Ctx) -> str:
    return c.result(c.point.spec.result_of)


def _serial(s: Any) -> str:
    return s.boot.charge_point_serial or s.boot.charge_box_serial


def _session_energy_kwh(c: Ctx) -> float | None:
    conn, st = c.connector, c.station
    if conn is None or conn.transaction_id is None or conn.meter_start_wh is None or st is None:
        return 0.0
    reading = st.reading(conn.connector_id, "Energy.Active.Import.Register")
    if reading is None:
        return 0.0
    return round(max(to_unit(reading.value, reading.unit, "kWh") - conn.meter_start_wh / 1000, 0.0), 3)


def _session_duration_s(c: Ctx) -> float:
    conn = c.connector
    if conn is None or conn.transaction_id is None or conn.session_start is None:
        return 0.0
    return float(max(int(c.now - conn.session_start), 0))


def _ended_with_session(connector: Any, reading_ts: float) -> bool:
    """A power or current reading from a transaction that has ended since: the flow is 0 now.

    Chargers that meter only during transactions (EVlink, manual 3.1: "only during a load")
    send no reading after StopTransaction; the last one would otherwise show 7 kW while Available.
    """
    if connector is None or connector.transaction_id is not None or connector.session_end is None:
        return False
    return reading_ts <= connector.session_end


def to_unit(value: float, unit: str, target: str) -> float:
    """Convert an OCPP reading (UnitOfMeasure, spec 7.45) to the point's unit."""
    unit = unit or "Wh"
    scale = {("kW", "W"): 1000, ("W", "kW"): 0.001, ("Wh", "kWh"): 0.001, ("kWh", "Wh"): 1000,
             ("varh", "kvarh"): 0.001, ("kvar", "var"): 1000, ("kVA", "var"): 1000}
    if unit == target or (unit, target) in (("Percent", "%"), ("Celsius", "degC"), ("VA", "var")):
        return value
    if (unit, target) in scale:
        return value * scale[(unit, target)]
    if (unit, target) == ("Fahrenheit", "degC"):
        return (value - 32) * 5 / 9
    if (unit, target) == ("K", "degC"):
        return value - 273.15
    return value


def meter_unit(measurand: str) -> str:
    for prefix, unit in MEASURAND_UNITS.items():
        if measurand.startswith(prefix):
            return unit
    return ""


@functools.cache  # one spec per measurand/phase/location: every MeterValues asks again
def meter_spec(measurand: str, phase: str, location: str) -> PointSpec:
    """The spec of a meter point (offset is the subject index, computed by the table)."""
    unit = meter_unit(measurand)

    def source(c: Ctx) -> float | None:
        st = c.station
        if st is None:
            return None
        reading = st.reading(c.point.connector_id, measurand, phase, location)
        if reading is None:
            return None
        if flow and _ended_with_session(c.connector, reading.timestamp):
            return 0.0
        return round(float(to_unit(reading.value, reading.unit, unit)), 4)
    flow = measurand.startswith(("Power.Active", "Current.Import", "Current.Export"))
    text = " ".join(x for x in (measurand, phase, f"at {location}") if x)
    return PointSpec(measurand, "meter", 0, "analog-input", "float32", unit, source=source,
                     description=f"MeterValues {text}", cov_increment=COV_INCREMENTS.get(unit, 1.0),
                     ocpp_source=f"MeterValues:{measurand}" + (f":{phase}" if phase else "")
                     + f":{location}")


@functools.cache  # one spec per key: each charger that has the key asks again (restarts, boots)
def config_spec(key: str, writable: bool) -> PointSpec:
    def source(c: Ctx) -> str:
        entry = c.station.config.get(key) if c.station is not None else None
        return "" if entry is None or entry.value is None else str(entry.value)
    return PointSpec(key, "config", 0, "characterstring-value", "string", writable=writable,
                     on_write="change_configuration" if writable else "", source=source,
                     description=f"Configuration key {key}" + ("" if writable else " (read-only)"),
                     ocpp_source=f"GetConfiguration:{key}")


@functools.cache
def config_result_spec(key: str) -> PointSpec:
    return PointSpec(key, "config_result", 0, "characterstring-value", "string",
                     source=lambda c: c.state.results.get((c.point.charger_id, None, CONFIG_PREFIX + key), ""),
                     stale_when_offline=False, description=f"Answer to the last write of {key}",
                     ocpp_source="ChangeConfiguration.conf:status")


def _cmd(key: str, offset: int, bacnet_type: str, on_write: str, description: str,
         states: tuple[str, ...] = (), value: Any = False, kind: str = "connector",
         outlets_only: bool = True) -> tuple[PointSpec, PointSpec]:
    """A command point (write = action; reads its idle value) and its result point."""
    modbus = "uint16" if not bacnet_type.startswith("character") else "string"
    return (
        PointSpec(key, kind, offset, bacnet_type, modbus, writable=True, on_write=on_write,
                  states=states, source=lambda c: value, stale_when_offline=False,
                  description=description, outlets_only=outlets_only, ocpp_source=on_write),
        PointSpec(f"{key}-Result", kind, offset + 1, "characterstring-value", "string",
                  source=_result, stale_when_offline=False, result_of=key,
                  description=f"Outcome of the last {key} command", outlets_only=outlets_only),
    )


def _site(c: Ctx, key: str) -> Any:
    return c.state.charging.site_view()[key] if c.state.charging is not None else None


def _writes(c: Ctx, key: str) -> Any:
    if c.state.charging is None:
        return None
    return c.state.charging.writes_of(c.point.charger_id)[key]


def _control(c: Ctx, key: str) -> Any:
    if c.state.charging is None:
        return None
    found = c.state.charging.control.get((c.point.charger_id, c.point.connector_id or 0))
    return getattr(found, key) if found is not None else None


def _smart(field_name: str) -> Source:
    return lambda c: getattr(c.smart(), field_name)


def _smart_state(field_name: str, states: tuple[str, ...]) -> Source:
    return lambda c: _state(states, getattr(c.smart(), field_name))


SITE_SPECS: tuple[PointSpec, ...] = (
    PointSpec("PowerLimit", "site", 1, "analog-value", "float32", "kW", writable=True,
              commandable=True, on_write="site_power_limit", min_value=0.0, max_value=10000.0,
              source=lambda c: c.state.site.power_limit_kw, cov_increment=0.5,
              relinquish_default=lambda c: c.state.site.default_power_kw,
              description="Site power limit for all chargers (EMS)", ocpp_source="site"),
    PointSpec("CurrentLimit", "site", 2, "analog-value", "float32", "A", writable=True,
              commandable=True, on_write="site_current_limit", min_value=0.0, max_value=10000.0,
              source=lambda c: c.state.site.current_limit_a, cov_increment=0.5,
              relinquish_default=lambda c: c.state.site.default_current_a,
              description="Site current limit per phase for all chargers (EMS)", ocpp_source="site"),
    PointSpec("PowerLimit-InForce", "site", 3, "analog-input", "float32", "kW",
              source=lambda c: _site(c, "in_force_power_kw"), cov_increment=0.5,
              description="Site power limit applied now (BMS, manual, config or fallback)"),
    PointSpec("CurrentLimit-InForce", "site", 4, "analog-input", "float32", "A",
              source=lambda c: _site(c, "in_force_current_a"), cov_increment=0.5,
              description="Site current limit per phase applied now"),
    PointSpec("Limit-Reason", "site", 5, "characterstring-value", "string",
              source=lambda c: _site(c, "reason"),
              description="Why that limit applies: bms, manual, config, fallback: ..., no limit"),
    PointSpec("Limit-Source", "site", 6, "multi-state-input", "uint16", states=LIMIT_SOURCE_STATES,
              source=lambda c: _state(LIMIT_SOURCE_STATES, _site(c, "source") or "none"),
              description="Who set the limit in force: none, bms, manual, config, safe, last bms"),
    PointSpec("BMS-WatchdogExpired", "site", 7, "binary-input", "uint16", states=("Normal", "Expired"),
              source=lambda c: bool(_site(c, "watchdog_expired")),
              description="The BMS did not refresh its limit in time: the safe or last BMS value applies"),
    # No silent limits (issue 14 item 8): added chargers a protocol cannot show (points.capacity).
    PointSpec("Chargers-NotOnBACnet", "site", 50, "analog-input", "uint16", cov_increment=1.0,
              source=lambda c: float(c.state.not_exposed.get("bacnet", 0)),
              description="Added chargers without BACnet objects (slot beyond one device's capacity)"),
    PointSpec("Chargers-NotOnModbus", "site", 51, "analog-input", "uint16", cov_increment=1.0,
              source=lambda c: float(c.state.not_exposed.get("modbus", 0)),
              description="Added chargers without Modbus registers (slot beyond the map or unit ids)"),
)

CHARGER_SPECS: tuple[PointSpec, ...] = (
    PointSpec("Online", "charger", 0, "binary-input", "uint16", source=_station(lambda s: s.online),
              states=("Offline", "Online"),
              stale_when_offline=False, description="Charger connected and answering",
              ocpp_source="websocket"),
    PointSpec("Registration", "charger", 1, "multi-state-value", "uint16", writable=True,
              on_write="registration", states=REGISTRATION_STATES, stale_when_offline=False,
              source=_station(lambda s: _state(REGISTRATION_STATES, s.registration)),
              description="BootNotification answer this charger gets",
              ocpp_source="BootNotification.conf:status"),
    PointSpec("Vendor", "charger", 2, "characterstring-value", "string", stale_when_offline=False,
              source=_station(lambda s: s.boot.vendor), description="chargePointVendor",
              ocpp_source="BootNotification:chargePointVendor"),
    PointSpec("Model", "charger", 3, "characterstring-value", "string", stale_when_offline=False,
              source=_station(lambda s: s.boot.model), description="chargePointModel",
              ocpp_source="BootNotification:chargePointModel"),
    PointSpec("Serial", "charger", 4, "characterstring-value", "string", stale_when_offline=False,
              source=_station(_serial), description="chargePointSerialNumber",
              ocpp_source="BootNotification:chargePointSerialNumber"),
    PointSpec("Firmware", "charger", 5, "characterstring-value", "string", stale_when_offline=False,
              source=_station(lambda s: s.boot.firmware_version), description="firmwareVersion",
              ocpp_source="BootNotification:firmwareVersion"),
    # dynamic: the model publishes no event for a Heartbeat, so the servers refresh it.
    PointSpec("LastHeartbeat", "charger", 6, "characterstring-value", "string", dynamic=True,
              stale_when_offline=False, source=_station(lambda s: _iso(s.last_heartbeat)),
              description="Time of the last Heartbeat (UTC)", ocpp_source="Heartbeat"),
    PointSpec("Reconnects", "charger", 7, "analog-input", "uint32", stale_when_offline=False,
              source=_station(lambda s: float(s.reconnects)), cov_increment=1.0,
              description="Reconnections since the gateway started", ocpp_source="websocket"),
    PointSpec("LastDisconnect", "charger", 8, "characterstring-value", "string",
              stale_when_offline=False,
              source=_station(lambda s: f"{_iso(s.last_disconnect_at)} {s.last_disconnect}".strip()),
              description="Time and reason of the last disconnection", ocpp_source="websocket"),
    # The Modbus charger block of map version 1 is full: these two are BACnet only.
    PointSpec("SC-Writes", "charger", 9, "analog-input", "", stale_when_offline=False,
              source=lambda c: _writes(c, "last_hour"),
              description="Charging-profile writes in the last hour (flash-wear guard)"),
    PointSpec("SC-WriteBudget", "charger", 10, "analog-input", "", stale_when_offline=False,
              source=lambda c: _writes(c, "budget_per_hour"),
              description="Charging-profile writes allowed per hour for this charger"),
    *_cmd("Reset", 20, "multi-state-value", "reset", "Write Soft or Hard to reset the charger",
          RESET_STATES, 1, "charger", False),
    *_cmd("ClearCache", 22, "binary-value", "clear_cache",
          "Write active to clear the authorization cache", ("Idle", "Clear"), False, "charger", False),
    # Niagara guide 6 device properties still missing (issue 14 item 12): BootNotification fields.
    PointSpec("ICCID", "charger", 30, "characterstring-value", "string", stale_when_offline=False,
              source=_station(lambda s: s.boot.iccid), description="ICCID of the modem's SIM card",
              ocpp_source="BootNotification:iccid"),
    PointSpec("IMSI", "charger", 31, "characterstring-value", "string", stale_when_offline=False,
              source=_station(lambda s: s.boot.imsi), description="IMSI of the modem's SIM card",
              ocpp_source="BootNotification:imsi"),
    PointSpec("MeterType", "charger", 32, "characterstring-value", "string", stale_when_offline=False,
              source=_station(lambda s: s.boot.meter_type), description="Type of the main electrical meter",
              ocpp_source="BootNotification:meterType"),
    PointSpec("MeterSerial", "charger", 33, "characterstring-value", "string", stale_when_offline=False,
              source=_station(lambda s: s.boot.meter_serial),
              description="Serial number of the main electrical meter",
              ocpp_source="BootNotification:meterSerialNumber"),
)

CONNECTOR_SPECS: tuple[PointSpec, ...] = (
    PointSpec("Status", "connector", 0, "multi-state-input", "uint16", states=CONNECTOR_STATUSES,
              source=_connector(lambda c: _state(CONNECTOR_STATUSES, c.status)),
              description="StatusNotification status (Niagara appendix 2)",
              ocpp_source="StatusNotification:status"),
    PointSpec("ErrorCode", "connector", 1, "multi-state-input", "uint16", states=ERROR_CODES,
              source=_connector(lambda c: _state(ERROR_CODES, c.error_code)),
              description="StatusNotification errorCode (Niagara appendix 1)",
              ocpp_source="StatusNotification:errorCode"),
    PointSpec("Info", "connector", 2, "characterstring-value", "string",
              source=_connector(lambda c: c.info), description="StatusNotification info",
              ocpp_source="StatusNotification:info"),
    PointSpec("VendorErrorCode", "connector", 3, "characterstring-value", "string",
              source=_connector(lambda c: c.vendor_error_code),
              description="StatusNotification vendorErrorCode",
              ocpp_source="StatusNotification:vendorErrorCode"),
    PointSpec("Availability", "connector", 4, "multi-state-value", "uint16", writable=True,
              commandable=True, on_write="availability", states=AVAILABILITY_STATES,
              source=_connector(lambda c: _state(AVAILABILITY_STATES, c.availability)),
              relinquish_default=lambda c: 1, stale_when_offline=False,
              description="Enable (Operative) or disable (Inoperative); connector 0 = whole charger",
              ocpp_source="ChangeAvailability"),
    PointSpec("Availability-Result", "connector", 5, "characterstring-value", "string",
              source=_result, result_of="Availability", stale_when_offline=False,
              description="Answer to the last availability change"),
    PointSpec("TransactionId", "connector", 6, "analog-input", "uint32", cov_increment=1.0,
              source=_connector(lambda c: float(c.transaction_id or 0)),
              description="Active transaction id (0: none)", ocpp_source="StartTransaction.conf:transactionId"),
    PointSpec("IdTag", "connector", 7, "characterstring-value", "string",
              source=_connector(lambda c: c.id_tag if c.transaction_id is not None else ""),
              description="idTag of the active transaction", ocpp_source="StartTransaction:idTag"),
    PointSpec("SessionEnergy", "connector", 8, "analog-input", "float32", "kWh",
              source=_session_energy_kwh, cov_increment=0.01,
              description="Energy of the active transaction", ocpp_source="MeterValues-meterStart"),
    PointSpec("SessionDuration", "connector", 9, "analog-input", "uint32", "s",
              source=_session_duration_s, cov_increment=60.0, dynamic=True,
              description="Duration of the active transaction", ocpp_source="StartTransaction:timestamp"),
    *_cmd("Unlock", 20, "binary-value", "unlock", "Write active to unlock the connector", ("Idle", "Unlock")),
    *_cmd("RemoteStart", 22, "characterstring-value", "remote_start",
          "Write an idTag to start a transaction on this connector", value=""),
    *_cmd("RemoteStop", 24, "binary-value", "remote_stop",
          "Write active to stop the active transaction", ("Idle", "Stop")),
    PointSpec("SC-Enable", "connector", 40, "binary-value", "uint16", writable=True,
              on_write="smart_setting", source=_smart("enabled"), stale_when_offline=False,
              states=("Disabled", "Enabled"),
              description="Smart charging on (Niagara 6.3 Enable)", ocpp_source="SetChargingProfile"),
    PointSpec("SC-Unit", "connector", 41, "multi-state-value", "uint16", writable=True,
              on_write="smart_setting", states=SC_UNIT_STATES, stale_when_offline=False,
              source=_smart_state("unit", SC_UNIT_STATES),
              description="chargingRateUnit: A (current) or W (power)", ocpp_source="chargingRateUnit"),
    PointSpec("SC-Limit", "connector", 42, "analog-value", "float32", writable=True,
              on_write="smart_setting", min_value=0.0, max_value=1_000_000.0, cov_increment=0.1,
              source=_smart("limit"), stale_when_offline=False,
              description="Limit in the unit of SC-Unit", ocpp_source="chargingSchedulePeriod:limit"),
    PointSpec("SC-Kind", "connector", 43, "multi-state-value", "uint16", writable=True,
              on_write="smart_setting", states=SC_KIND_STATES, stale_when_offline=False,
              source=_smart_state("kind", SC_KIND_STATES), description="chargingProfileKind",
              ocpp_source="chargingProfileKind"),
    PointSpec("SC-Purpose", "connector", 44, "multi-state-value", "uint16", writable=True,
              on_write="smart_setting", states=SC_PURPOSE_STATES, stale_when_offline=False,
              source=_smart_state("purpose", SC_PURPOSE_STATES), description="chargingProfilePurpose",
              ocpp_source="chargingProfilePurpose"),
    PointSpec("SC-ProfileId", "connector", 45, "analog-value", "uint32", writable=True,
              on_write="smart_setting", min_value=1.0, max_value=2_147_483_647.0,
              source=lambda c: float(c.smart().profile_id), stale_when_offline=False,
              description="chargingProfileId", ocpp_source="chargingProfileId"),
    PointSpec("SC-StackLevel", "connector", 46, "analog-value", "uint16", writable=True,
              on_write="smart_setting", min_value=0.0, max_value=100.0,
              source=lambda c: float(c.smart().stack_level), stale_when_offline=False,
              description="stackLevel", ocpp_source="stackLevel"),
    PointSpec("SC-SendStatus", "connector", 47, "characterstring-value", "string",
              source=_smart("send_status"), stale_when_offline=False,
              description="Outcome of the last profile write", ocpp_source="SetChargingProfile.conf:status"),
    PointSpec("SC-Requested", "connector", 48, "analog-input", "float32", "A", outlets_only=True,
              source=lambda c: _control(c, "requested_a"), stale_when_offline=False, cov_increment=0.1,
              description="Share of the site limit the gateway asks for (0 = paused)"),
    PointSpec("SC-Applied", "connector", 49, "analog-input", "float32", outlets_only=True,
              source=lambda c: _control(c, "applied_limit"), stale_when_offline=False, cov_increment=0.1,
              description="Limit the charger reports it applies (GetCompositeSchedule)",
              ocpp_source="GetCompositeSchedule.conf"),
    PointSpec("SC-SendState", "connector", 50, "multi-state-input", "uint16", outlets_only=True,
              states=SC_SEND_STATES, stale_when_offline=False,
              source=lambda c: _state(SC_SEND_STATES, _control(c, "send_state") or "Not available"),
              description="Last site-profile write: Accepted, Rejected, Held back, Pending, ...",
              ocpp_source="SetChargingProfile.conf:status"),
    # Niagara guide 6.2 per-connector Last Update (issue 14 item 12).
    PointSpec("LastUpdate", "connector", 30, "characterstring-value", "string",
              source=_connector(lambda c: _iso(c.last_update)),
              description="Time of the connector's last StatusNotification or transaction change (UTC)",
              ocpp_source="StatusNotification"),
)


# --- Modbus (points.modbus.server) --------------------------------------------------------------
# Registers of each string point in the Modbus map, 2 ASCII characters per register; a string
# point not listed here is not served over Modbus (free text such as StatusNotification info or
# the last disconnect reason does not fit a fixed register map). Lengths follow the OCPP 1.6
# field sizes where they are short (CiString20 idTag and vendor/model, CiString25 serial,
# CiString50 firmware) and 16 characters for result texts ("Accepted", "Rejected", "Pending").
MODBUS_STRING_REGISTERS: dict[str, int] = {
    "Vendor": 10, "Model": 10, "Serial": 13, "Firmware": 25, "LastHeartbeat": 10,
    "Reset-Result": 8, "ClearCache-Result": 8,
    "VendorErrorCode": 8, "Availability-Result": 8, "IdTag": 10,
    "Unlock-Result": 8, "RemoteStart": 10, "RemoteStart-Result": 8, "RemoteStop-Result": 8,
    "SC-SendStatus": 8,
    "ICCID": 10, "IMSI": 8, "MeterType": 13, "MeterSerial": 13, "LastUpdate": 10,
}
# Meter values with registers, at the default location (Outlet): entry i sits at the meter area
# + 2i of every connector area. "u32" entries are the UINT32 Wh counter of the energy register
# before them. Append only: the position is the address.
MODBUS_METERS: tuple[tuple[str, str, str], ...] = (
    ("Power.Active.Import", "", ""), ("Energy.Active.Import.Register", "", ""),
    ("Energy.Active.Import.Register", "", "u32"),
    ("Current.Import", "L1", ""), ("Current.Import", "L2", ""), ("Current.Import", "L3", ""),
    ("Voltage", "L1-N", ""), ("Voltage", "L2-N", ""), ("Voltage", "L3-N", ""),
    ("Voltage", "L1", ""), ("Voltage", "L2", ""), ("Voltage", "L3", ""),
    ("Power.Active.Import", "L1", ""), ("Power.Active.Import", "L2", ""),
    ("Power.Active.Import", "L3", ""), ("Current.Import", "", ""), ("Voltage", "", ""),
    ("Current.Offered", "", ""), ("Power.Offered", "", ""), ("SoC", "", ""), ("Temperature", "", ""),
    ("Frequency", "", ""), ("Energy.Active.Export.Register", "", ""),
    ("Energy.Active.Export.Register", "", "u32"), ("Power.Active.Export", "", ""),
    ("Power.Factor", "", ""),
)
# OCPP 1.6 chapter 9: type and accessibility of each standard configuration key. Modbus serves
# integer keys as UINT32 and boolean keys as 0/1 (written back as "true"/"false"); CSL keys are
# text and not served over Modbus. "RW" keys are holding registers, "R" keys input registers.
STANDARD_CONFIG_TYPES: dict[str, tuple[str, str]] = {
    "AllowOfflineTxForUnknownId": ("boolean", "RW"), "AuthorizationCacheEnabled": ("boolean", "RW"),
    "AuthorizeRemoteTxRequests": ("boolean", "RW"), "BlinkRepeat": ("integer", "RW"),
    "ClockAlignedDataInterval": ("integer", "RW"), "ConnectionTimeOut": ("integer", "RW"),
    "ConnectorPhaseRotation": ("CSL", "RW"), "ConnectorPhaseRotationMaxLength": ("integer", "R"),
    "GetConfigurationMaxKeys": ("integer", "R"), "HeartbeatInterval": ("integer", "RW"),
    "LightIntensity": ("integer", "RW"), "LocalAuthorizeOffline": ("boolean", "RW"),
    "LocalPreAuthorize": ("boolean", "RW"), "MaxEnergyOnInvalidId": ("integer", "RW"),
    "MeterValuesAlignedData": ("CSL", "RW"), "MeterValuesAlignedDataMaxLength": ("integer", "R"),
    "MeterValuesSampledData": ("CSL", "RW"), "MeterValuesSampledDataMaxLength": ("integer", "R"),
    "MeterValueSampleInterval": ("integer", "RW"), "MinimumStatusDuration": ("integer", "RW"),
    "NumberOfConnectors": ("integer", "R"), "ResetRetries": ("integer", "RW"),
    "StopTransactionOnEVSideDisconnect": ("boolean", "RW"),
    "StopTransactionOnInvalidId": ("boolean", "RW"), "StopTxnAlignedData": ("CSL", "RW"),
    "StopTxnAlignedDataMaxLength": ("integer", "R"), "StopTxnSampledData": ("CSL", "RW"),
    "StopTxnSampledDataMaxLength": ("integer", "R"), "SupportedFeatureProfiles": ("CSL", "R"),
    "SupportedFeatureProfilesMaxLength": ("integer", "R"),
    "TransactionMessageAttempts": ("integer", "RW"),
    "TransactionMessageRetryInterval": ("integer", "RW"),
    "UnlockConnectorOnEVSideDisconnect": ("boolean", "RW"),
    "WebSocketPingInterval": ("integer", "RW"), "LocalAuthListEnabled": ("boolean", "RW"),
    "LocalAuthListMaxLength": ("integer", "R"), "SendLocalListMaxLength": ("integer", "R"),
    "ReserveConnectorZeroSupported": ("boolean", "R"), "ChargeProfileMaxStackLevel": ("integer", "R"),
    "ChargingScheduleAllowedChargingRateUnit": ("CSL", "R"),
    "ChargingScheduleMaxPeriods": ("integer", "R"),
    "ConnectorSwitch3to1PhaseSupported": ("boolean", "R"),
    "MaxChargingProfilesInstalled": ("integer", "R"),
}
