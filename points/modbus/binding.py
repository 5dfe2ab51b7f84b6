"""Types the Modbus server and its write path share, kept apart so neither imports the other."""

from __future__ import annotations

from pymodbus.constants import ExcCodes

from points.modbus.layout import Scope


class WriteError(Exception):
    """A client write answered with a Modbus exception instead of being applied.

    02 illegal data address: nothing writable there, or a multi-register value written in part;
    03 illegal data value: out of range, not a state code, NaN, infinite or denormal; 04 server
    device failure: the charger is offline or refused the command within `modbus.write_wait_s`.
    """

    ADDRESS = ExcCodes.ILLEGAL_ADDRESS
    VALUE = ExcCodes.ILLEGAL_VALUE
    DEVICE = ExcCodes.DEVICE_FAILURE

    def __init__(self, code: ExcCodes, why: str) -> None:
        super().__init__(why)
        self.code = code


Area = tuple[Scope, int | None, int | None]  # (scope, slot, connector_id): one block area to render
