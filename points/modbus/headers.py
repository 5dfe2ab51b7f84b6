"""Values of the header registers: the layout constants, counts and validity flags of a block.

Headers are Modbus framing (the BACnet side says the same with its device object and status
flags). The validity flags follow the table's reliability, so "live", "kept from before a
restart" and "stale" mean the same on both protocols.
"""

from __future__ import annotations

from typing import Protocol

from gateway.model.station import Station
from points.modbus.registers import (
    CHARGER_AREA,
    CHARGER_BASE,
    CHARGER_STRIDE,
    CONNECTOR_STRIDE,
    MAP_VERSION,
    MAX_CONNECTOR_ID,
)
from points.table import PointTable

_CONSTANTS = {"MapVersion": MAP_VERSION, "ChargerBase": CHARGER_BASE, "ChargerStride": CHARGER_STRIDE,
              "ConnectorArea": CHARGER_AREA, "ConnectorStride": CONNECTOR_STRIDE,
              "MaxConnectorId": MAX_CONNECTOR_ID}


class ServedSite(Protocol):
    """What the header values read of the Modbus server (`points.modbus.server.ModbusPointServer`)."""

    table: PointTable

    def added_stations(self) -> list[Station]:
        """The chargers with a slot, as of the server's last slot scan."""


def header_value(server: ServedSite, key: str, station: Station | None, slot: int | None,
                 connector_id: int | None) -> object:
    if key in _CONSTANTS:
        return _CONSTANTS[key]
    added = server.added_stations()
    if key == "ChargersAdded":
        return min(len(added), 0xFFFE)
    if key == "ChargersOnline":
        return min(sum(1 for s in added if s.online), 0xFFFE)
    if key == "HighestSlot":
        return max((s.slot for s in added if s.slot is not None), default=0)
    if key == "ChargersNotServed":
        return min(server.table.state.not_exposed.get("modbus", 0), 0xFFFE)  # as Site-Chargers-NotOnModbus
    if key == "Slot":
        return slot if station is not None else None
    if key == "Online":
        return station is not None and station.online
    if key == "Connectors":
        return None if station is None else sum(1 for c in station.connectors if c > 0)
    if key == "IdentityValid":
        return station is not None and station.last_boot is not None
    if key == "ConnectorId":
        return connector_id
    if key == "Valid":
        return station is not None and server.table.connector_confirmed(station, connector_id or 0)
    raise KeyError(f"no header register {key}")
