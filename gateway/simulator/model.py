"""State of a simulated charger without I/O: configuration keys, connectors, transactions, meter.

The ocpp/websockets side (`charge_point.py`, `simulator.py`) only decodes, calls in here and answers.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .profile import KeySpec

PHASE_SUFFIXES = {"L1", "L2", "L3", "N", "L1-N", "L2-N", "L3-N", "L1-L2", "L2-L3", "L3-L1"}


def iso(t: datetime) -> str:
    return t.isoformat(timespec="seconds").replace("+00:00", "Z")


def split_csl(value: str | None) -> list[str]:
    return [item.strip() for item in (value or "").split(",") if item.strip()]


class ConfigStore:
    """Configuration keys with the answers OCPP 1.6 5.3 / 5.8 gives, judged by each key's `KeySpec`."""

    def __init__(self, specs: dict[str, KeySpec]) -> None:
        self.specs = specs
        self.values: dict[str, str | None] = {name: spec.value for name, spec in specs.items()}

    def get(self, name: str, default: str | None = None) -> str | None:
        value = self.values.get(name)
        return default if value in (None, "") else value

    def get_int(self, name: str, default: int) -> int:
        try:
            return int(float(self.get(name) or default))
        except ValueError:  # e.g. the AC wallbox's documented default "10S"
            return default

    def get_bool(self, name: str, default: bool = False) -> bool:
        value = self.get(name)
        return default if value is None else value.strip().lower() == "true"

    def set_internal(self, name: str, value: str) -> None:
        """A change the charger makes itself (boot interval, availability), no checks."""
        if name in self.values:
            self.values[name] = value

    def change(self, name: str, value: str) -> str:
        """ChangeConfiguration: Accepted, Rejected, RebootRequired or NotSupported."""
        spec = self.specs.get(name)
        if spec is None:
            return "NotSupported"
        if spec.readonly:
            return "Rejected"
        checked = self._check(spec, value)
        if checked is None:
            return "Rejected"
        self.values[name] = checked
        return "RebootRequired" if spec.reboot_required else "Accepted"

    def _check(self, spec: KeySpec, value: str) -> str | None:
        if spec.max_length is not None and len(value) > spec.max_length:
            return None
        if spec.type in ("int", "float"):
            try:
                number = int(value) if spec.type == "int" else float(value)
            except ValueError:
                return None
            in_range = (spec.min is None or number >= spec.min) and (spec.max is None or number <= spec.max)
            if not in_range and number not in spec.also:
                return spec.out_of_range_value  # None -> Rejected
            return str(number)
        if spec.type == "bool":
            return value.lower() if value.lower() in ("true", "false") else None
        if spec.type == "csl":
            items = split_csl(value)
            if spec.max_items is not None and len(items) > spec.max_items:
                return None
            if spec.allowed and not all(_item_allowed(i, spec.allowed) for i in items):
                return None
            return ",".join(items)
        if spec.allowed and value not in spec.allowed:
            return None
        return value

    def entries(self, names: list[str] | None) -> tuple[list[dict[str, Any]], list[str]]:
        """GetConfiguration: known keys as OCPP KeyValue dicts, and the unknown names."""
        wanted = list(self.values) if not names else names
        known = [
            {"key": n, "readonly": self.specs[n].readonly, "value": self.values[n]}
            for n in wanted if n in self.values
        ]
        for entry in known:
            if entry["value"] is None:
                del entry["value"]
        return known, [n for n in wanted if n not in self.values]


def _item_allowed(item: str, allowed: tuple[str, ...]) -> bool:
    if item in allowed:
        return True
    base, _, suffix = item.rpartition(".")
    return base in allowed and suffix in PHASE_SUFFIXES


_local_ids = itertools.count(1)


@dataclass
class Transaction:
    """A transaction as the charger knows it; `transaction_id` stays None until the central system answers."""

    connector_id: int
    id_tag: str
    meter_start_wh: int
    start: datetime
    local_id: int = field(default_factory=lambda: next(_local_ids))
    transaction_id: int | None = None
    reservation_id: int | None = None
    samples: list[dict[str, Any]] = field(default_factory=list)  # for StopTransaction.transactionData
    stopped: bool = False


@dataclass
class Connector:
    """One connector: OCPP status, plug, availability, meter and the EV's behaviour."""

    id: int
    status: str = "Available"
    error_code: str = "NoError"
    vendor_error_code: str | None = None
    plugged: bool = False
    operative: bool = True
    scheduled_operative: bool | None = None  # a ChangeAvailability answered "Scheduled"
    transaction: Transaction | None = None
    reservation_id: int | None = None
    reserved_id_tag: str | None = None
    energy_wh: float = 0.0
    power_w: float = 0.0
    current_a: float = 0.0
    offered_a: float = 0.0
    soc_percent: float = 40.0
    ev_max_current_a: float = 32.0
    last_update: datetime | None = None
    locked: bool = False
    remote_start: tuple[str, bool] | None = None  # (id_tag, authorize) waiting for the cable


@dataclass
class Meter:
    """Electrical model: offered current follows the active limit, the EV draws up to its own maximum."""

    phases: int
    voltage_v: float
    max_current_a: float
    min_current_a: float
    ramp_s: float = 0.0  # the car ramps up over this long from 0 A to the maximum (real cars: seconds)

    def offered(self, limit_a: float | None) -> float:
        offered = self.max_current_a if limit_a is None else min(limit_a, self.max_current_a)
        # Below the minimum the EV cannot charge (IEC 61851; zappi "Any limit below 6A ... not charging").
        return 0.0 if offered < self.min_current_a else offered

    def advance(self, c: Connector, now: datetime, limit_a: float | None, charging: bool) -> None:
        """Integrate energy since the last update at the old power, then apply the new limit."""
        if c.last_update is not None and now > c.last_update:
            hours = (now - c.last_update).total_seconds() / 3600
            c.energy_wh += c.power_w * hours
            if c.power_w and c.soc_percent < 100:
                c.soc_percent = min(100.0, c.soc_percent + c.power_w * hours / 600)  # 60 kWh battery
        elapsed = (now - c.last_update).total_seconds() if c.last_update is not None else 0.0
        c.last_update = now
        c.offered_a = self.offered(limit_a)
        target = min(c.offered_a, c.ev_max_current_a) if charging else 0.0
        if self.ramp_s > 0 and target > c.current_a:
            # A raised limit is followed over seconds; a lower one at once (IEC 61851: within 5 s).
            target = min(target, c.current_a + self.max_current_a * max(elapsed, 0.0) / self.ramp_s)
        c.current_a = round(target, 3)
        c.power_w = round(c.current_a * self.voltage_v * self.phases, 1)

    def sample(self, c: Connector, measurands: list[str], now: datetime, context: str) -> dict[str, Any]:
        """One MeterValue (snake_case, as the ocpp library expects) with the configured measurands."""
        phases = [f"L{i}" for i in range(1, self.phases + 1)]
        values: list[dict[str, Any]] = []

        def add(measurand: str, value: float, unit: str, phase: str | None = None) -> None:
            v: dict[str, Any] = {"value": f"{value:.1f}" if unit != "Wh" else str(int(value)),
                                 "context": context, "measurand": measurand, "unit": unit}
            if phase:
                v["phase"] = phase
            if measurand != "SoC":
                v["location"] = "Outlet"
            values.append(v)

        for m in measurands:
            base, _, suffix = m.rpartition(".")
            name, phase = (base, suffix) if suffix in PHASE_SUFFIXES else (m, None)
            if name == "Energy.Active.Import.Register":
                add(name, c.energy_wh, "Wh")
            elif name == "Power.Active.Import":
                add(name, c.power_w, "W")
            elif name == "Current.Import":
                for p in [phase] if phase else phases:
                    add(name, c.current_a, "A", p)
            elif name == "Voltage":
                for p in [phase] if phase else phases:
                    add(name, self.voltage_v if c.plugged else 0.0, "V", p if "-" in p else f"{p}-N")
            elif name == "Current.Offered":
                add(name, c.offered_a, "A")
            elif name == "SoC" and c.plugged:
                add(name, c.soc_percent, "Percent")
            elif name in ("Frequency", "Power.Factor"):
                # OCPP 1.6 UnitOfMeasure has no Hz and no unit for a power factor: sent without a unit.
                value = "50.0" if name == "Frequency" else "1.00"
                values.append({"value": value, "context": context, "measurand": name, "location": "Outlet"})
            # Other measurands (Temperature...) are not modelled: left out as a charger would.
        return {"timestamp": iso(now), "sampled_value": values}
