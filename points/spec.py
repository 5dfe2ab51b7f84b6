"""The vocabulary of points: object types, units, measurands, state texts, and `PointSpec`.

`points.catalog` writes every point in these words; `points.table` numbers and tracks them.
Offsets in the catalog are addresses: append new specs, never reorder, never reuse an offset.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from gateway.charging.inputs import SEND_STATES
from gateway.charging.limit import SOURCES
from gateway.charging.profiles import NiagaraProfileSettings
from gateway.errors import WriteRefused

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
