"""A MeterValues meterValue as the live model's readings and as a history row (OCPP 1.6 7.17).

Pure: the payload has passed the schema (gateway.ocpp.frames) before it gets here.
"""

from __future__ import annotations

import math
from typing import Any

from gateway.model.station import MeterKey, MeterReading
from gateway.ocpp.protocol import dumps

ENERGY = "Energy.Active.Import.Register"  # the default measurand (7.31)


def number(sv: dict[str, Any]) -> float | None:
    """A sampled value as a finite number; signed meter data, "NaN", "1e999" and garbage stay in
    the stored JSON only (a BMS point must never show a value no meter read)."""
    if sv.get("format") == "SignedData":
        return None
    try:
        value = float(sv.get("value"))
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def readings(connector_id: int, mv: dict[str, Any], ts: float) -> list[tuple[MeterKey, MeterReading]]:
    """The numeric sampled values of one meterValue, keyed as the live model keeps them."""
    found = []
    for sv in mv.get("sampledValue", []):
        value = number(sv)
        if value is None:
            continue
        key = MeterKey(connector_id, sv.get("measurand", ENERGY), sv.get("phase", ""), sv.get("location", "Outlet"))
        found.append((key, MeterReading(value, sv.get("unit", "Wh" if key.measurand.startswith("Energy") else ""),
                                        ts, sv.get("context", "Sample.Periodic"))))
    return found


def meter_row(charger_id: str, connector_id: int, tx_id: int | None, mv: dict[str, Any]) -> tuple:
    """One meterValue as a history row, with the energy register pulled out for queries."""
    values = mv.get("sampledValue", [])
    energy = next((number(sv) for sv in values
                   if sv.get("measurand", ENERGY) == ENERGY and sv.get("location", "Outlet") == "Outlet"
                   and not sv.get("phase")), None)
    return (charger_id, connector_id, tx_id, mv.get("timestamp"), energy,
            dumps(values))
