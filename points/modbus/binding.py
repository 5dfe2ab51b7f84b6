"""What the Modbus server serves: fields of the register layout bound to the model and the table.

Kept apart from the server so the point-table adapter (`points.modbus.fields`) and the write
path (`points.modbus.writes`) share these types without importing the server.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from gateway.model.station import Station
from points.modbus.layout import FieldSpec, Scope

Reader = Callable[["PointContext"], object]
Writer = Callable[["PointContext", object], Awaitable[object]]


@dataclass(frozen=True)
class PointContext:
    """Which block a value belongs to: the site (no station), a charger (connector_id None), or
    one of its connectors (connector 0 is the whole charger, as in OCPP)."""

    station: Station | None = None
    connector_id: int | None = None


@dataclass(frozen=True)
class Binding:
    """A field of the map with the functions that read it from the model and apply a write.

    `write` applies the point table's on_write (the same command a BACnet write gives) and
    raises ModbusWriteError to answer the client with an exception code.
    """

    spec: FieldSpec
    read: Reader
    write: Writer | None = None
    dynamic: bool = False


Area = tuple[Scope, int | None, int | None]  # (scope, slot, connector_id): one block area to render
