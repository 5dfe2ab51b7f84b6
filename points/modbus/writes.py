"""Client writes to the Modbus server: checked whole, then applied through the point table.

The inbound direction of `points.modbus.server` (which pushes model values out). pymodbus calls the
device `action` for every access, our own pushes included (FC3/FC4 with values, which no client
can send); FC 6/16/23 are client writes, FC22 (mask write) and coil writes are refused.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from pymodbus.constants import ExcCodes

from gateway.errors import LayoutError, ModbusWriteError, WriteRefused
from gateway.model.station import Station
from gateway.settings import ModbusSettings
from points.modbus.codec import RegType, decode, is_sentinel
from points.modbus.layout import locate
from points.modbus.registers import ModbusMap, Register, Scope
from points.modbus.values import table_value
from points.table import Point, PointTable

log = logging.getLogger("points.modbus.server")

CLIENT_WRITES = frozenset({6, 16, 23})  # write single, write multiple, read/write multiple
OWN_PUSHES = frozenset({3, 4})          # server.async_setValues with the read function codes
MASK_WRITE = 22
RELINQUISH = object()  # a commandable point written with its "not available" value
_REFUSAL = {"write-access-denied": ModbusWriteError.ADDRESS, "value-out-of-range": ModbusWriteError.VALUE,
            "invalid-value": ModbusWriteError.VALUE, "charger-offline": ModbusWriteError.DEVICE,
            "rejected": ModbusWriteError.DEVICE}
FLOAT32_MIN_NORMAL = 1.1754943508222875e-38


class WriteTarget(Protocol):
    """What a client write needs of the Modbus server (`points.modbus.server.ModbusPointServer`)."""

    FLAT_UNIT: int  # the unit id of the flat map (every other id is a charger's, with unit-id addressing)
    map: ModbusMap
    table: PointTable
    settings: ModbusSettings
    word_order: str

    def station_in(self, slot: int) -> Station | None:
        """The added charger in a slot, if any."""

    def point_of(self, reg: Register, station: Station | None, slot: int | None,
                 connector_id: int | None) -> Point | None:
        """The table's point a register shows in this block."""

    def note_client_registers(self, unit: int, address: int, regs: Sequence[int]) -> None:
        """Keep what pymodbus stored for an accepted write."""

    def show_table_value(self, reg: Register, slot: int | None, connector_id: int | None) -> None:
        """Push the register's table value after a write."""


@dataclass(frozen=True)
class PlannedWrite:
    register: Register
    point: Point
    value: object
    slot: int | None
    connector_id: int | None
    address: int
    registers: tuple[int, ...]


class ClientWrites:
    """The write path of one server: resolve addresses, check values, run the points' commands."""

    def __init__(self, server: WriteTarget) -> None:
        self.server = server

    async def action(self, unit: int, function_code: int, start_address: int, address: int,
                     count: int, registers: list[int], set_values: list[int] | list[bool] | None,
                     ) -> ExcCodes | None:
        """pymodbus device action: reads and our own pushes pass; client writes are applied here.

        Masking half of a FLOAT32 or of a state code has no meaning, hence no FC22. Coils
        exist only because pymodbus needs the block.
        """
        if set_values is None or function_code in OWN_PUSHES:
            return None
        if function_code == MASK_WRITE:
            return ExcCodes.ILLEGAL_FUNCTION
        if function_code not in CLIENT_WRITES:  # FC5/FC15: nothing is writable among the coils
            return ExcCodes.ILLEGAL_ADDRESS
        try:
            await self.apply(unit, address, [int(v) for v in set_values])
        except ModbusWriteError as exc:
            log.info("Modbus write of %d register(s) at %d (unit %d) refused (exception %d): %s",
                     len(set_values), address, unit, int(exc.code), exc)
            return ExcCodes(exc.code)
        except Exception:
            log.exception("Modbus write at %d failed", address)
            return ExcCodes.DEVICE_FAILURE
        return None

    async def apply(self, unit: int, address: int, values: Sequence[int]) -> None:
        """Check a client write whole, then apply each value through the point table.

        Every register written must belong to a writable point, and each must be written
        completely: a FLOAT32 written half (FC6 on one word) would otherwise combine a new word
        with an old one into a value nobody sent.
        """
        plan: list[PlannedWrite] = []
        i = 0
        while i < len(values):
            plan.append(self._plan(unit, address + i, values[i:]))
            i += plan[-1].register.size
        for planned in plan:
            await self._apply_one(unit, planned)

    def _plan(self, unit: int, address: int, values: Sequence[int]) -> PlannedWrite:
        server = self.server
        scope, slot, connector_id, offset = self._resolve(unit, address)
        reg = server.map.at(scope, offset)
        if reg is None or not reg.writable:
            raise ModbusWriteError(ModbusWriteError.ADDRESS, f"address {address} is not a writable point")
        if reg.offset != offset or reg.size > len(values):
            raise ModbusWriteError(ModbusWriteError.ADDRESS, f"{reg.name()} takes {reg.size} registers from its first address")
        station = None
        if scope is not Scope.SITE:
            station = server.station_in(slot or 0)
            if station is None:
                raise ModbusWriteError(ModbusWriteError.ADDRESS, f"slot {slot} holds no charger")
        regs = tuple(values[:reg.size])
        value = self.check_value(reg, regs, bool(reg.spec and reg.spec.commandable))
        point = server.point_of(reg, station, slot, connector_id)
        if point is None:
            raise ModbusWriteError(ModbusWriteError.ADDRESS, f"{reg.name(slot or 0, connector_id)}: the charger has not reported it")
        return PlannedWrite(reg, point, value, slot, connector_id, address, regs)

    def _resolve(self, unit: int, address: int) -> tuple[Scope, int | None, int | None, int]:
        per_unit = unit != self.server.FLAT_UNIT
        try:
            scope, slot, connector_id, offset = locate(address, per_unit=per_unit)
        except LayoutError as exc:
            raise ModbusWriteError(ModbusWriteError.ADDRESS, str(exc)) from None
        return scope, (unit if per_unit and scope is not Scope.SITE else slot), connector_id, offset

    def check_value(self, reg: Register, regs: Sequence[int], commandable: bool = False) -> object:
        """The value the client means, or ModbusWriteError 03 before anything runs.

        A commandable point written with its "not available" value is relinquished (Modbus's
        NULL). Any other NaN, an infinity or a denormal float is refused: such a value is what
        a client gets by sending a float in the other word order (22.0 as 0x0000 0x41B0 reads as
        a denormal near 0, which would pause every charger; issue 14 item 6).
        """
        name = reg.name()
        if is_sentinel(regs, reg.reg_type, self.server.word_order):
            if commandable:
                return RELINQUISH
            raise ModbusWriteError(ModbusWriteError.VALUE, f"{name}: 'not available' is not a value to write")
        codes = dict(reg.codes) if reg.codes else None
        value = decode(regs, reg.reg_type, word_order=self.server.word_order, codes=codes)
        if value is None:  # another NaN, or a UINT32 of 0xFFFFFFFF: no value to apply
            raise ModbusWriteError(ModbusWriteError.VALUE, f"{name}: not a number")
        if reg.reg_type is RegType.FLOAT32:
            number = float(value)  # type: ignore[arg-type]
            if not math.isfinite(number) or (number != 0 and abs(number) < FLOAT32_MIN_NORMAL):
                raise ModbusWriteError(ModbusWriteError.VALUE, f"{name}: {number!r} is not a normal finite float "
                                 "(check the word order)")
        if reg.reg_type is RegType.ENUM16 and not isinstance(value, str):
            raise ModbusWriteError(ModbusWriteError.VALUE, f"{name}: no state has code {value}")
        if reg.reg_type is RegType.BOOL16 and regs[0] not in (0, 1):
            raise ModbusWriteError(ModbusWriteError.VALUE, f"{name}: a flag is 0 or 1")
        if isinstance(value, int | float) and not isinstance(value, bool):
            if (reg.minimum is not None and value < reg.minimum) or \
                    (reg.maximum is not None and value > reg.maximum):
                raise ModbusWriteError(ModbusWriteError.VALUE, f"{name}: {value} outside {reg.minimum}..{reg.maximum}")
        return value

    async def _apply_one(self, unit: int, planned: PlannedWrite) -> None:
        """Run the point's command, then show the table's value again.

        Waits up to `modbus.write_wait_s` for the charger, so a quick refusal reaches the client
        as exception 04; a slower answer is acknowledged, and when it arrives the table's change
        re-renders the area (a refused command puts the old value back). A commandable point is
        written at `modbus.bacnet_priority` of its priority array, the one BACnet shows.
        """
        server, table = self.server, self.server.table
        server.note_client_registers(unit, planned.address, planned.registers)
        wait_s = server.settings.write_wait_s
        try:
            if planned.point.spec.commandable:
                value = None if planned.value is RELINQUISH else planned.value
                await table.command(planned.point, value, server.settings.bacnet_priority, wait_s)
            else:
                await table.write(planned.point, table_value(planned.register, planned.value), wait_s)
        except WriteRefused as exc:
            raise ModbusWriteError(_REFUSAL.get(exc.code, ModbusWriteError.DEVICE), exc.reason) from None
        finally:
            # pymodbus stores the client's registers right after the action returns; the area is
            # rendered once more after that, so the registers end up holding the table's value.
            server.show_table_value(planned.register, planned.slot, planned.connector_id)
