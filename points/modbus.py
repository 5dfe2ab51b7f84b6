"""The Modbus TCP server: the point table served as registers in the gateway's event loop.

Values are pushed when the model changes (`Registry.subscribe`), not computed per request: a
BMS polling hundreds of registers a second then costs only pymodbus' own request handling.
Events are coalesced per block area and flushed once per loop turn, so a MeterValues message
with twenty samples costs one register update per connector.

pymodbus 3.16 (notes 2.1-2.2): the datastore is the server's own `SimCore`; the only ways in
are `server.async_setValues` for pushes and the device `action` coroutine for client access.
The action also runs for our own pushes (FC3/FC4), so only FC 6/16/23 are client writes.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pymodbus.constants import ExcCodes
from pymodbus.pdu.device import ModbusDeviceIdentification
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from gateway.config import ModbusSettings
from gateway.errors import OperationError
from gateway.station import ChangeEvent, Station
from points.modbus_codec import EncodeError, RegType, decode, encode
from points.modbus_layout import (
    CHARGER_AREA,
    CHARGER_BASE,
    CHARGER_STRIDE,
    CONNECTOR_STRIDE,
    MAP_VERSION,
    MAX_CONNECTORS,
    MAX_FLAT_SLOT,
    MAX_UNIT_ID,
    SITE_SIZE,
    FieldSpec,
    LayoutError,
    Placed,
    RegisterLayout,
    Scope,
    charger_block_base,
    connector_area_base,
)

if TYPE_CHECKING:
    from gateway.app import Gateway

log = logging.getLogger(__name__)

CLIENT_WRITES = frozenset({6, 16, 23})  # write single, write multiple, read/write multiple
FC_HOLDING, FC_INPUT = 3, 4
FLAT_UNIT = 0                           # SimDevice id 0 answers every unit id without its own device

Reader = Callable[["PointContext"], object]
Writer = Callable[["PointContext", object], Awaitable[object]]


@dataclass(frozen=True)
class PointContext:
    """Which block a value belongs to: the site (no station), a charger, or one of its connectors."""

    gateway: Gateway
    station: Station | None = None
    connector_id: int | None = None


@dataclass(frozen=True)
class Binding:
    """A field of the map with the functions that read it from the model and apply a write.

    `write` is the point table's on_write (the same command a BACnet write gives); it raises
    ValueError for a value the point refuses (exception 03) and OperationError when the charger
    cannot carry it out (exception 04).
    """

    spec: FieldSpec
    read: Reader
    write: Writer | None = None


class WriteRefused(Exception):
    """A client write answered with a Modbus exception instead of being applied."""

    def __init__(self, code: ExcCodes, why: str) -> None:
        super().__init__(why)
        self.code = code


Area = tuple[Scope, int | None, int | None]  # (scope, slot, connector_id): one block area to render


class ModbusPointServer:
    """Serves the bindings on `settings.host:settings.port`; see docs/modbus.md for the map."""

    def __init__(self, gateway: Gateway, bindings: Iterable[Binding],
                 settings: ModbusSettings | None = None) -> None:
        self.gateway = gateway
        self.settings = settings or gateway.settings.modbus
        self.word_order = self.settings.word_order
        bindings = list(bindings)
        self.layout = RegisterLayout(b.spec for b in bindings)
        self.bindings = {b.spec.field_id: b for b in bindings}
        # offset in block -> the field covering it, per scope (the inverse used by writes)
        self._by_offset: dict[Scope, dict[int, Placed]] = {}
        for scope, block in self.layout.blocks.items():
            index = self._by_offset[scope] = {}
            for placed in block.fields:
                for i in range(placed.spec.size):
                    index[placed.offset + i] = placed
        self.flat_slots = MAX_FLAT_SLOT
        self.unit_slots = MAX_UNIT_ID if self.settings.unit_id_per_charger else 0
        self._server: ModbusTcpServer | None = None
        # What each device's registers hold, as we last pushed (or a client wrote) them:
        # {(unit, fc): list}; pushes are diffed against it so unchanged areas cost nothing.
        self._shadow: dict[tuple[int, int], list[int]] = {}
        self._slots: dict[int, str] = {}        # slot -> charger id, as rendered
        self._dirty: set[Area] = set()
        self._slots_dirty = True
        self._flush_handle: asyncio.Task[None] | None = None
        self._flush_done = asyncio.Event()
        self._flush_done.set()
        self.port: int | None = None

    # --- lifecycle -------------------------------------------------------------------------
    async def start(self) -> int:
        """Render every block from the model, then listen; returns the bound port."""
        self._slots = self._current_slots()
        devices = [self._device(FLAT_UNIT, CHARGER_BASE + self.flat_slots * CHARGER_STRIDE)]
        devices += [self._device(unit, CHARGER_BASE + CHARGER_STRIDE) for unit in range(1, self.unit_slots + 1)]
        for area in self._all_areas():
            self._render(area, initial=True)
        for device in devices:
            key_h, key_i = (device.id, FC_HOLDING), (device.id, FC_INPUT)
            device.simdata = ([SimData(0, count=16, values=False, datatype=DataType.BITS)],
                              [SimData(0, count=16, values=False, datatype=DataType.BITS)],
                              [SimData(0, values=self._shadow[key_h], datatype=DataType.REGISTERS)],
                              [SimData(0, values=self._shadow[key_i], datatype=DataType.REGISTERS)])
        identity = ModbusDeviceIdentification(info_name={
            "VendorName": "ocpp-bms-gateway", "ProductCode": "OCPP-GW",
            "ProductName": "OCPP 1.6-J to Modbus TCP gateway", "ModelName": f"register map v{MAP_VERSION}",
            "MajorMinorRevision": "0.1"})
        self._server = ModbusTcpServer(devices, address=(self.settings.host, self.settings.port),
                                       identity=identity)
        await self._server.serve_forever(background=True)
        sockets = getattr(self._server.transport, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self.settings.port
        self.gateway.registry.subscribe(self.on_change)
        self._slots_dirty = False
        log.info("Modbus TCP serving %d registers per slot for %d slots on %s:%s%s",
                 CHARGER_STRIDE, self.flat_slots, self.settings.host, self.port,
                 f"; unit ids 1..{self.unit_slots} address one slot each" if self.unit_slots else "")
        return self.port

    async def stop(self) -> None:
        if self._flush_handle is not None and not self._flush_handle.done():
            self._flush_handle.cancel()
        if self._server is not None:
            await self._server.shutdown()
            self._server = None

    def _device(self, unit: int, size: int) -> SimDevice:
        """A device whose register lists we own; the data blocks are filled in by start()."""
        for fc in (FC_HOLDING, FC_INPUT):
            self._shadow[(unit, fc)] = [0] * size
        # SimDevice checks its blocks at construction: give it a placeholder, replaced in start().
        placeholder = [SimData(0, values=0, datatype=DataType.REGISTERS)]
        bits = [SimData(0, count=16, values=False, datatype=DataType.BITS)]
        return SimDevice(id=unit, simdata=(bits, bits, placeholder, placeholder),
                         action=functools.partial(self._action, unit))

    # --- model -> registers ----------------------------------------------------------------
    def on_change(self, event: ChangeEvent) -> None:
        """Registry subscriber: mark the areas an event touches; one flush per loop turn."""
        station = self.gateway.registry.get(event.charger_id)
        if event.kind in ("station", "added", "removed"):
            self._slots_dirty = True  # a slot may have been given, or an online flag changed
        if station is not None and station.slot is not None:
            slot = station.slot
            if event.kind == "meter" or event.kind == "connector":
                connector_id = event.connector_id or 0
                if 1 <= connector_id <= MAX_CONNECTORS:
                    self._dirty.add((Scope.CONNECTOR, slot, connector_id))
                self._dirty.add((Scope.CHARGER, slot, 0))
            elif event.kind == "config":
                self._dirty.add((Scope.CHARGER, slot, 0))
            else:
                self._dirty.update(self._slot_areas(slot))
        self._dirty.add((Scope.SITE, None, None))  # site values aggregate over chargers
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        if self._server is None or (self._flush_handle is not None and not self._flush_handle.done()):
            return
        self._flush_done.clear()
        self._flush_handle = asyncio.get_running_loop().create_task(self._flush(), name="modbus flush")

    async def flushed(self) -> None:
        """Wait until every change seen so far is in the registers (tests, the benchmark)."""
        await self._flush_done.wait()

    async def _flush(self) -> None:
        try:
            await asyncio.sleep(0)  # let the rest of this message's events arrive first
            while self._dirty or self._slots_dirty:
                if self._slots_dirty:
                    self._slots_dirty = False
                    slots = self._current_slots()
                    for slot in set(slots) | set(self._slots):
                        if slots.get(slot) != self._slots.get(slot):
                            self._dirty.update(self._slot_areas(slot))
                    self._slots = slots
                dirty, self._dirty = self._dirty, set()
                for area in dirty:
                    for unit, fc, address, regs in self._render(area):
                        await self._push(unit, fc, address, regs)
        except Exception:
            log.exception("Modbus register update failed")
        finally:
            self._flush_done.set()

    async def _push(self, unit: int, fc: int, address: int, regs: list[int]) -> None:
        if self._server is not None:
            await self._server.async_setValues(unit, fc, address, regs)

    def _current_slots(self) -> dict[int, str]:
        return {s.slot: s.charger_id for s in self.gateway.registry.stations.values()
                if s.slot is not None and (s.slot <= self.flat_slots or s.slot <= self.unit_slots)}

    def _slot_areas(self, slot: int) -> list[Area]:
        return [(Scope.CHARGER, slot, 0)] + [(Scope.CONNECTOR, slot, c) for c in range(1, MAX_CONNECTORS + 1)]

    def _all_areas(self) -> Iterable[Area]:
        yield (Scope.SITE, None, None)
        for slot in range(1, max(self.flat_slots, self.unit_slots) + 1):
            yield from self._slot_areas(slot)

    def _render(self, area: Area, initial: bool = False) -> list[tuple[int, int, int, list[int]]]:
        """Encode one area; update the shadow and return the (unit, fc, address, regs) runs that changed."""
        scope, slot, connector_id = area
        station = None
        if slot is not None and slot in self._slots:
            station = self.gateway.registry.get(self._slots[slot])
        ctx = PointContext(self.gateway, station, connector_id)
        size = {Scope.SITE: SITE_SIZE, Scope.CHARGER: CHARGER_AREA, Scope.CONNECTOR: CONNECTOR_STRIDE}[scope]
        hr = [0] * size
        ir = [0] * size
        mirror = self.settings.mirror_inputs_in_holding
        for placed in self.layout.blocks[scope].fields:
            regs = self._encode(placed.spec, self._value(placed.spec, ctx, slot))
            end = placed.offset + len(regs)
            if placed.spec.writable:
                hr[placed.offset:end] = regs
            else:
                ir[placed.offset:end] = regs
                if mirror:
                    hr[placed.offset:end] = regs
        targets: list[tuple[int, int]] = []  # (unit, base address)
        if scope is Scope.SITE:
            targets.append((FLAT_UNIT, 0))
            targets += [(unit, 0) for unit in range(1, self.unit_slots + 1)]
        else:
            assert slot is not None
            if slot <= self.flat_slots:
                targets.append((FLAT_UNIT, self._area_base(scope, slot, connector_id, False)))
            if slot <= self.unit_slots:
                targets.append((slot, self._area_base(scope, slot, connector_id, True)))
        changed = []
        for unit, base in targets:
            for fc, regs in ((FC_HOLDING, hr), (FC_INPUT, ir)):
                shadow = self._shadow[(unit, fc)]
                old = shadow[base:base + size]
                if old == regs:
                    continue
                first = next(i for i in range(size) if old[i] != regs[i])
                last = max(i for i in range(size) if old[i] != regs[i])
                shadow[base + first:base + last + 1] = regs[first:last + 1]
                if not initial:
                    changed.append((unit, fc, base + first, regs[first:last + 1]))
        return changed

    @staticmethod
    def _area_base(scope: Scope, slot: int, connector_id: int | None, per_unit: bool) -> int:
        if scope is Scope.CHARGER:
            return charger_block_base(slot, per_unit=per_unit)
        assert connector_id is not None
        return connector_area_base(slot, connector_id, per_unit=per_unit)

    def _value(self, spec: FieldSpec, ctx: PointContext, slot: int | None) -> object:
        if spec.key.startswith("header."):
            return self._header_value(spec.key, ctx, slot)
        if ctx.station is None and spec.scope is not Scope.SITE:
            return None
        if spec.scope is Scope.CONNECTOR and ctx.station is not None \
                and ctx.connector_id not in ctx.station.connectors:
            return None  # a connector the charger never reported: every point "not available"
        try:
            return self.bindings[spec.field_id].read(ctx)
        except Exception:
            log.exception("reading %s for Modbus failed; served as not available", spec.field_id)
            return None

    def _header_value(self, key: str, ctx: PointContext, slot: int | None) -> object:
        registry = self.gateway.registry
        station = ctx.station
        if key == "header.map_version":
            return MAP_VERSION
        if key == "header.charger_base":
            return CHARGER_BASE
        if key == "header.charger_stride":
            return CHARGER_STRIDE
        if key == "header.connector_area":
            return CHARGER_AREA
        if key == "header.connector_stride":
            return CONNECTOR_STRIDE
        if key == "header.max_connectors":
            return MAX_CONNECTORS
        if key == "header.chargers_added":
            return min(sum(1 for s in registry.stations.values() if s.slot is not None), 0xFFFE)
        if key == "header.chargers_online":
            return min(sum(1 for s in registry.stations.values() if s.slot is not None and s.online), 0xFFFE)
        if key == "header.highest_slot":
            return max((s.slot for s in registry.stations.values() if s.slot is not None), default=0)
        if key == "header.slot":
            return slot if station is not None else None
        if key == "header.online":
            return station is not None and station.online
        if key == "header.connectors":
            return None if station is None else sum(1 for c in station.connectors if c > 0)
        if key == "header.connector_id":
            return ctx.connector_id
        if key == "header.valid":
            return (station is not None and station.online and ctx.connector_id in station.connectors)
        raise LayoutError(f"no header field {key}")

    def _encode(self, spec: FieldSpec, value: object) -> list[int]:
        try:
            return encode(value, spec.reg_type, length=spec.length, word_order=self.word_order,
                          codes=dict(spec.codes) if spec.codes else None)
        except EncodeError as exc:
            log.warning("Modbus %s: %s; served as not available", spec.field_id, exc)
            return encode(None, spec.reg_type, length=spec.length, word_order=self.word_order)

    # --- client access ---------------------------------------------------------------------
    async def _action(self, unit: int, function_code: int, start_address: int, address: int,
                      count: int, registers: list[int], set_values: list[int] | list[bool] | None,
                      ) -> ExcCodes | None:
        """pymodbus device action: reads and our own pushes pass; client writes are applied here."""
        if set_values is None or function_code not in CLIENT_WRITES:
            return None
        try:
            await self.apply_write(unit, address, [int(v) for v in set_values])
        except WriteRefused as exc:
            log.info("Modbus write of %d register(s) at %d (unit %d) refused (exception %d): %s",
                     len(set_values), address, unit, int(exc.code), exc)
            return exc.code
        except Exception:
            log.exception("Modbus write at %d failed", address)
            return ExcCodes.DEVICE_FAILURE
        return None

    def _resolve(self, unit: int, address: int) -> tuple[Scope, int | None, int | None, int]:
        try:
            scope, slot, connector_id, offset = self.layout.locate(address, per_unit=unit != FLAT_UNIT)
        except LayoutError as exc:
            raise WriteRefused(ExcCodes.ILLEGAL_ADDRESS, str(exc)) from None
        return scope, (unit if unit != FLAT_UNIT and scope is not Scope.SITE else slot), connector_id, offset

    async def apply_write(self, unit: int, address: int, values: Sequence[int]) -> None:
        """Check a client write whole, then apply each value through its binding's write.

        Every register written must belong to a writable field, and each field must be written
        completely: a FLOAT32 written half (FC6 on one word) would otherwise combine a new word with
        an old one into a value nobody sent.
        """
        plan: list[tuple[Binding, PointContext, object, int, int]] = []
        i = 0
        while i < len(values):
            scope, slot, connector_id, offset = self._resolve(unit, address + i)
            placed = self._by_offset[scope].get(offset)
            if placed is None or not placed.spec.writable:
                raise WriteRefused(ExcCodes.ILLEGAL_ADDRESS, f"address {address + i} is not a writable point")
            size = placed.spec.size
            if placed.offset != offset or i + size > len(values):
                raise WriteRefused(ExcCodes.ILLEGAL_ADDRESS,
                                   f"{placed.spec.field_id} takes {size} registers from its first address")
            station = None
            if scope is not Scope.SITE:
                charger_id = self._slots.get(slot or 0)
                station = self.gateway.registry.get(charger_id) if charger_id else None
                if station is None:
                    raise WriteRefused(ExcCodes.ILLEGAL_ADDRESS, f"slot {slot} holds no charger")
            value = self._check_value(placed.spec, values[i:i + size])
            binding = self.bindings[placed.spec.field_id]
            plan.append((binding, PointContext(self.gateway, station, connector_id), value,
                         address + i, size))
            i += size
        for binding, ctx, value, at, size in plan:
            await self._apply_one(unit, binding, ctx, value, at, values[at - address:at - address + size])

    def _check_value(self, spec: FieldSpec, regs: Sequence[int]) -> object:
        codes = dict(spec.codes) if spec.codes else None
        value = decode(regs, spec.reg_type, word_order=self.word_order, codes=codes)
        if value is None:
            raise WriteRefused(ExcCodes.ILLEGAL_VALUE, f"{spec.field_id}: 'not available' is not a value to write")
        if spec.reg_type is RegType.ENUM16 and not isinstance(value, str):
            raise WriteRefused(ExcCodes.ILLEGAL_VALUE, f"{spec.field_id}: no state has code {value}")
        if spec.reg_type is RegType.BOOL16 and regs[0] not in (0, 1):
            raise WriteRefused(ExcCodes.ILLEGAL_VALUE, f"{spec.field_id}: a flag is 0 or 1")
        if isinstance(value, int | float) and not isinstance(value, bool):
            if (spec.minimum is not None and value < spec.minimum) or \
                    (spec.maximum is not None and value > spec.maximum):
                raise WriteRefused(ExcCodes.ILLEGAL_VALUE,
                                   f"{spec.field_id}: {value} outside {spec.minimum}..{spec.maximum}")
            if isinstance(value, float) and value != value:  # NaN never passes a range check
                raise WriteRefused(ExcCodes.ILLEGAL_VALUE, f"{spec.field_id}: NaN")
        return value

    async def _apply_one(self, unit: int, binding: Binding, ctx: PointContext, value: object,
                         address: int, regs: Sequence[int]) -> None:
        """Start the point's command; wait briefly for its outcome so refusals reach the client.

        A charger usually answers within milliseconds, but the OCPP response timeout is seconds
        and Modbus clients often give up after one. After `write_wait_s` the write is answered
        as accepted; when the command ends, its area is re-rendered from the model, so a command
        the charger refused puts the register back to the charger's value.
        """
        assert binding.write is not None
        fc = FC_HOLDING
        shadow = self._shadow[(unit, fc)]
        shadow[address:address + len(regs)] = list(regs)  # what pymodbus stores after we return
        area = self._area_of(binding.spec, ctx)
        task = self.gateway.spawn(self._run_write(binding, ctx, value, area),
                                  f"Modbus write {binding.spec.field_id}")
        done, _ = await asyncio.wait({task}, timeout=self.settings.write_wait_s)
        if not done:
            return
        # pymodbus stores the client's registers right after this action returns; render the
        # area once more after that, in case the model keeps the value in another form.
        self._forget(unit, binding, ctx)
        self._dirty.add(area)
        self._schedule_flush()
        exc = task.exception() if not task.cancelled() else None
        if isinstance(exc, ValueError):
            raise WriteRefused(ExcCodes.ILLEGAL_VALUE, str(exc))
        if isinstance(exc, OperationError):
            raise WriteRefused(ExcCodes.DEVICE_FAILURE, str(exc))

    async def _run_write(self, binding: Binding, ctx: PointContext, value: object, area: Area) -> None:
        try:
            assert binding.write is not None
            await binding.write(ctx, value)
        except (ValueError, OperationError) as exc:
            who = ctx.station.charger_id if ctx.station else "site"
            log.warning("Modbus write of %s=%r for %s not applied: %s", binding.spec.field_id, value, who, exc)
            raise
        finally:
            # Show the model's value again (the new one, or the old one if the command failed),
            # also in the unit-id copy of the block.
            for unit in list({u for (u, _fc) in self._shadow}):
                self._forget(unit, binding, ctx)
            self._dirty.add(area)
            self._schedule_flush()

    def _forget(self, unit: int, binding: Binding, ctx: PointContext) -> None:
        """Make the next render push this field whatever it holds (a client may have written it)."""
        slot = ctx.station.slot if ctx.station else None
        scope = binding.spec.scope
        try:
            if scope is Scope.SITE:
                base = 0
            elif slot is None or (unit == FLAT_UNIT and slot > self.flat_slots) or \
                    (unit != FLAT_UNIT and unit != slot):
                return
            else:
                base = self._area_base(scope, slot, ctx.connector_id, unit != FLAT_UNIT)
        except LayoutError:
            return
        placed = self.layout.blocks[scope].get(binding.spec.field_id)
        if placed is None:
            return
        shadow = self._shadow[(unit, FC_HOLDING)]
        start = base + placed.offset
        shadow[start:start + placed.spec.size] = [-1] * placed.spec.size

    @staticmethod
    def _area_of(spec: FieldSpec, ctx: PointContext) -> Area:
        slot = ctx.station.slot if ctx.station else None
        if spec.scope is Scope.SITE:
            return (Scope.SITE, None, None)
        if spec.scope is Scope.CHARGER:
            return (Scope.CHARGER, slot, 0)
        return (Scope.CONNECTOR, slot, ctx.connector_id)


def install(gateway: Gateway, bindings: Iterable[Binding] | None = None) -> ModbusPointServer:
    """Add the Modbus server to a gateway: started after the device database loads, stopped first."""
    if bindings is None:
        from points.modbus_points import table_bindings
        bindings = table_bindings()
    server = ModbusPointServer(gateway, bindings)

    async def start() -> None:
        gateway.ports["modbus"] = await server.start()

    gateway.start_hooks.append(start)
    gateway.stop_hooks.append(server.stop)
    gateway.parts["modbus"] = server
    return server


__all__ = ["Binding", "ModbusPointServer", "PointContext", "WriteRefused", "install"]
