"""Client writes to the Modbus server: checked whole, then applied through the point table.

The inbound direction of `points.modbus.server` (which pushes model values out). pymodbus calls the
device `action` for every access, our own pushes included (FC3/FC4 with values, which no client
can send); FC 6/16/23 are client writes, FC22 (mask write) and coil writes are refused.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pymodbus.constants import ExcCodes

from gateway.errors import LayoutError, ModbusWriteError
from points.modbus.binding import Binding, PointContext
from points.modbus.codec import RegType, decode
from points.modbus.layout import FieldSpec, Scope

if TYPE_CHECKING:
    from points.modbus.server import ModbusPointServer

log = logging.getLogger("points.modbus.server")

CLIENT_WRITES = frozenset({6, 16, 23})  # write single, write multiple, read/write multiple
OWN_PUSHES = frozenset({3, 4})          # server.async_setValues with the read function codes
MASK_WRITE = 22


class ClientWrites:
    """The write path of one server: resolve addresses, check values, run the points' commands."""

    def __init__(self, server: ModbusPointServer) -> None:
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
        """Check a client write whole, then apply each value through its binding's write.

        Every register written must belong to a writable field, and each field must be written
        completely: a FLOAT32 written half (FC6 on one word) would otherwise combine a new word
        with an old one into a value nobody sent.
        """
        server = self.server
        plan: list[tuple[Binding, PointContext, object, int, int]] = []
        i = 0
        while i < len(values):
            scope, slot, connector_id, offset = self._resolve(unit, address + i)
            placed = server.field_at(scope, offset)
            if placed is None or not placed.spec.writable:
                raise ModbusWriteError(ModbusWriteError.ADDRESS, f"address {address + i} is not a writable point")
            size = placed.spec.size
            if placed.offset != offset or i + size > len(values):
                raise ModbusWriteError(ModbusWriteError.ADDRESS,
                                 f"{placed.spec.field_id} takes {size} registers from its first address")
            station = None
            if scope is not Scope.SITE:
                station = server.station_in(slot or 0)
                if station is None:
                    raise ModbusWriteError(ModbusWriteError.ADDRESS, f"slot {slot} holds no charger")
            value = self.check_value(placed.spec, values[i:i + size])
            ctx = PointContext(station, connector_id if scope is Scope.CONNECTOR else None)
            plan.append((server.bindings[placed.spec.field_id], ctx, value, address + i, size))
            i += size
        for binding, ctx, value, at, size in plan:
            await self._apply_one(unit, binding, ctx, value, at, values[at - address:at - address + size])

    def _resolve(self, unit: int, address: int) -> tuple[Scope, int | None, int | None, int]:
        per_unit = unit != self.server.FLAT_UNIT
        try:
            scope, slot, connector_id, offset = self.server.layout.locate(address, per_unit=per_unit)
        except LayoutError as exc:
            raise ModbusWriteError(ModbusWriteError.ADDRESS, str(exc)) from None
        return scope, (unit if per_unit and scope is not Scope.SITE else slot), connector_id, offset

    def check_value(self, spec: FieldSpec, regs: Sequence[int]) -> object:
        """The value the client means, or ModbusWriteError 03 before anything runs."""
        codes = dict(spec.codes) if spec.codes else None
        value = decode(regs, spec.reg_type, word_order=self.server.word_order, codes=codes)
        if value is None:
            raise ModbusWriteError(ModbusWriteError.VALUE, f"{spec.field_id}: 'not available' is not a value to write")
        if spec.reg_type is RegType.ENUM16 and not isinstance(value, str):
            raise ModbusWriteError(ModbusWriteError.VALUE, f"{spec.field_id}: no state has code {value}")
        if spec.reg_type is RegType.BOOL16 and regs[0] not in (0, 1):
            raise ModbusWriteError(ModbusWriteError.VALUE, f"{spec.field_id}: a flag is 0 or 1")
        if isinstance(value, int | float) and not isinstance(value, bool):
            if isinstance(value, float) and value != value:  # NaN passes no range check
                raise ModbusWriteError(ModbusWriteError.VALUE, f"{spec.field_id}: NaN")
            if (spec.minimum is not None and value < spec.minimum) or \
                    (spec.maximum is not None and value > spec.maximum):
                raise ModbusWriteError(ModbusWriteError.VALUE,
                                 f"{spec.field_id}: {value} outside {spec.minimum}..{spec.maximum}")
        return value

    async def _apply_one(self, unit: int, binding: Binding, ctx: PointContext, value: object,
                         address: int, regs: Sequence[int]) -> None:
        """Run the point's command, then show the model's value again.

        The binding waits up to `modbus.write_wait_s` for the charger, so a quick refusal reaches
        the client as exception 04; a slower answer is acknowledged, and when it arrives the
        point table's change events re-render the area (a refused command puts the old value back).
        """
        assert binding.write is not None
        self.server.note_client_registers(unit, address, regs)
        try:
            await binding.write(ctx, value)
        finally:
            # pymodbus stores the client's registers right after the action returns; the area is
            # rendered once more after that, so the registers end up holding the model's value.
            self.server.show_model_value(binding, ctx)
