"""Where the catalog's points read their values: small functions of a `Ctx` (points.spec).

Each returns None for "no value" (the point then says it is not available), never a fake 0.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway.model.timestamps import iso_z
from points.spec import Ctx, Source, to_unit


def iso_second(ts: float | None) -> str:
    """UTC time to the second (20 characters: fits a Modbus STRING(20); a BMS needs no ms)."""
    return iso_z(int(ts))[:19] + "Z" if ts else ""


def state_number(states: tuple[str, ...], value: str | None) -> int | None:
    return states.index(value) + 1 if value in states else None


def of_station(fn: Callable[[Any], Any]) -> Source:
    return lambda c: fn(c.station) if c.station is not None else None


def of_connector(fn: Callable[[Any], Any]) -> Source:
    return lambda c: fn(c.connector) if c.connector is not None else None


def result_text(c: Ctx) -> str:
    return c.result(c.point.spec.result_of)


def serial_of(s: Any) -> str:
    return s.boot.charge_point_serial or s.boot.charge_box_serial


def session_energy_kwh(c: Ctx) -> float | None:
    conn, st = c.connector, c.station
    if conn is None or conn.transaction_id is None or conn.meter_start_wh is None or st is None:
        return 0.0
    reading = st.reading(conn.connector_id, "Energy.Active.Import.Register")
    if reading is None:
        return 0.0
    return round(max(to_unit(reading.value, reading.unit, "kWh") - conn.meter_start_wh / 1000, 0.0), 3)


def session_duration_s(c: Ctx) -> float:
    conn = c.connector
    if conn is None or conn.transaction_id is None or conn.session_start is None:
        return 0.0
    return float(max(int(c.now - conn.session_start), 0))


def ended_with_session(connector: Any, reading_ts: float) -> bool:
    """A power or current reading from a transaction that has ended since: the flow is 0 now.

    Chargers that meter only during transactions (EVlink, manual 3.1: "only during a load")
    send no reading after StopTransaction; the last one would otherwise show 7 kW while Available.
    """
    if connector is None or connector.transaction_id is not None or connector.session_end is None:
        return False
    return reading_ts <= connector.session_end


def site_value(c: Ctx, key: str) -> Any:
    return c.state.charging.site_view()[key] if c.state.charging is not None else None


def writes_value(c: Ctx, key: str) -> Any:
    if c.state.charging is None:
        return None
    return c.state.charging.writes_of(c.point.charger_id)[key]


def control_value(c: Ctx, key: str) -> Any:
    if c.state.charging is None:
        return None
    found = c.state.charging.control.get((c.point.charger_id, c.point.connector_id or 0))
    return getattr(found, key) if found is not None else None


def smart_value(field_name: str) -> Source:
    return lambda c: getattr(c.smart(), field_name)


def smart_state(field_name: str, states: tuple[str, ...]) -> Source:
    return lambda c: state_number(states, getattr(c.smart(), field_name))
