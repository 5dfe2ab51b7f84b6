"""What the Modbus server serves: fields of the register layout bound to the model and the table.

Kept apart from the server so the point-table adapter (`points.modbus.fields`) and the write
path (`points.modbus.writes`) share these types without importing the server.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from pymodbus.constants import ExcCodes

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
    raises WriteError to answer the client with an exception code.
    """

    spec: FieldSpec
    read: Reader
    write: Writer | None = None
    dynamic: bool = False


class WriteError(Exception):
    """A client write answered with a Modbus exception instead of being applied.

    02 illegal data address: nothing writable there, or a multi-register value written in part;
    03 illegal data value: out of range, not a state code, NaN; 04 server device failure: the
    charger is offline or refused the command within `modbus.write_wait_s`.
    """

    ADDRESS = ExcCodes.ILLEGAL_ADDRESS
    VALUE = ExcCodes.ILLEGAL_VALUE
    DEVICE = ExcCodes.DEVICE_FAILURE

    def __init__(self, code: ExcCodes, why: str) -> None:
        super().__init__(why)
        self.code = code


Area = tuple[Scope, int | None, int | None]  # (scope, slot, connector_id): one block area to render
