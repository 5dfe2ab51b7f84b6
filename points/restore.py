"""Last known truth after a restart: connector status and the last meter readings come back.

A BMS trends a point for years; after a gateway restart it must not read "Unavailable" while a
car charges, or an energy register of 0 (issue 14 items 1 and 2). The status of each connector
is kept in the database when it changes; the last readings are in the stored MeterValues. Both
are put back into the model at start, marked `restored`, so the points show them flagged as not
yet confirmed (BACnet reliability communication-failure, Modbus valid flag 0) until the charger
reports them again. The boot identity comes back from the device record (`Gateway.on_boot`).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from gateway.model.station import Connector, MeterReading, Station
from gateway.model.timestamps import parse_timestamp
from gateway.ocpp.meter_rows import readings as sampled_readings

log = logging.getLogger(__name__)
STATUS_SCOPE = "points.status"  # kv: charger id -> JSON {connector id: [status, error, ...]}
METER_ROWS = 50  # newest MeterValues rows searched for the last reading of each value
_FIELDS = ("status", "error_code", "info", "vendor_error_code", "last_update", "session_end")


def status_record(station: Station) -> str:
    """What is kept of a charger's connectors (compared before writing: unchanged is not written)."""
    return json.dumps({str(c.connector_id): [getattr(c, f) for f in _FIELDS]
                       for c in station.connectors.values() if c.status}, sort_keys=True)


async def restore_last_known(history: Any, stations: list[Station]) -> dict[str, str]:
    """Put back the kept statuses and last readings; returns the status records read."""
    records = await history.kv_get(STATUS_SCOPE)
    for station in stations:
        try:
            _restore_statuses(station, json.loads(records.get(station.charger_id) or "{}"))
        except (ValueError, TypeError):
            log.warning("ignoring unreadable status record of %s", station.charger_id)
        await _restore_readings(history, station)
    return records


def _restore_statuses(station: Station, record: dict[str, list[Any]]) -> None:
    for connector_id, values in record.items():
        connector = station.connectors.get(int(connector_id))
        if connector is None:
            connector = station.connectors[int(connector_id)] = Connector(int(connector_id))
        if connector.status:  # reported since the start already
            continue
        for name, value in zip(_FIELDS, values, strict=False):
            setattr(connector, name, value)
        connector.restored = True


async def _restore_readings(history: Any, station: Station) -> None:
    for row in await history.latest_meter_rows(station.charger_id, METER_ROWS):
        ts = parse_timestamp(row.get("ts"))
        if ts is None:
            continue
        try:
            sampled = json.loads(row["sampled_values"])
        except ValueError:
            continue
        for key, value, unit, context in sampled_readings(int(row["connector_id"]), {"sampledValue": sampled}):
            if key not in station.meters:  # rows come newest first
                station.meters[key] = MeterReading(value, unit, ts, context, restored=True)
