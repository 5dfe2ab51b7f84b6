"""The Modbus TCP server: the point table served as registers in the gateway's event loop.

Values are pushed when the point table reports a change (its `changed` listeners, the same
single change BACnet hears), not computed per request: a BMS polling hundreds of registers a
second then costs only pymodbus' own request handling. Changes are coalesced per block area and
flushed once per loop turn, so a MeterValues message with twenty samples costs one register
update per connector. Which register shows which point is `points.modbus.layout`.

pymodbus 3.16 (notes 2.1-2.2): the datastore is the server's own `SimCore`; the only ways in
are `server.async_setValues` for pushes and the device `action` coroutine for client access,
which `points.modbus.writes` handles (the inbound direction).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Iterable, Sequence

from pymodbus.pdu.device import ModbusDeviceIdentification
from pymodbus.simulator import DataType, SimData, SimDevice

from gateway.errors import ConfigError, EncodeError, LayoutError
from gateway.model.station import Registry, Station
from gateway.settings import ModbusSettings
from points.modbus import frames as modbus_frames
from points.modbus.binding import Area
from points.modbus.codec import encode
from points.modbus.headers import header_value
from points.modbus.layout import area_base
from points.modbus.registers import (
    BLOCK_SIZE,
    CHARGER_STRIDE,
    EXTRA_BASE,
    EXTRA_STRIDE,
    MAP_VERSION,
    MAX_CONNECTOR_ID,
    MAX_FLAT_SLOT,
    MAX_UNIT_ID,
    UNIT_EXTRA_BASE,
    ModbusMap,
    Register,
    Scope,
    modbus_map,
)
from points.modbus.values import modbus_value
from points.modbus.writes import ClientWrites
from points.table import Point, PointTable

log = logging.getLogger(__name__)

FC_HOLDING, FC_INPUT = 3, 4
FLAT_UNIT = 0                           # SimDevice id 0 answers every unit id without its own device
FLAT_SIZE = EXTRA_BASE + MAX_FLAT_SLOT * EXTRA_STRIDE
UNIT_SIZE = UNIT_EXTRA_BASE + EXTRA_STRIDE


class ModbusPointServer:
    """Serves the point table on `settings.host:settings.port`; see docs/modbus.md for the map."""

    FLAT_UNIT = FLAT_UNIT

    def __init__(self, registry: Registry, table: PointTable, settings: ModbusSettings) -> None:
        self.registry = registry
        self.table = table
        self.settings = settings
        self.word_order = self.settings.word_order
        self.map: ModbusMap = modbus_map()
        self.flat_slots = MAX_FLAT_SLOT
        self.unit_slots = MAX_UNIT_ID if self.settings.unit_id_per_charger else 0
        self._server: modbus_frames.GatewayModbusServer | None = None
        # What each device's registers hold, as we last pushed (or a client wrote) them:
        # {(unit, fc): list}; pushes are diffed against it so unchanged areas cost nothing.
        self._shadow: dict[tuple[int, int], list[int]] = {}
        self._slots: dict[int, str] = {}        # slot -> charger id, as rendered
        self._added_ids: set[str] = set()       # chargers with a slot, as of the last slot scan
        self._warned: set[str] = set()
        self._dirty: set[Area] = set()
        self._slots_dirty = True
        self._flush_handle: asyncio.Task[None] | None = None
        self._flush_done = asyncio.Event()
        self._flush_done.set()
        self.port: int | None = None
        self.writes = ClientWrites(self)

    # --- lifecycle -------------------------------------------------------------------------
    async def start(self) -> int:
        """Render every block from the table, then listen; returns the bound port."""
        self._slots = self._current_slots()
        units = {FLAT_UNIT: FLAT_SIZE}
        units.update({unit: UNIT_SIZE for unit in range(1, self.unit_slots + 1)})
        for unit, size in units.items():
            for fc in (FC_HOLDING, FC_INPUT):
                self._shadow[(unit, fc)] = [0] * size
        for area in self._all_areas():
            self._render(area, initial=True)
        devices = [self._device(unit) for unit in units]
        identity = ModbusDeviceIdentification(info_name={
            "VendorName": "ocpp-bms-gateway", "ProductCode": "OCPP-GW",
            "ProductName": "OCPP 1.6-J to Modbus TCP gateway", "ModelName": f"register map v{MAP_VERSION}",
            "MajorMinorRevision": "0.1"})
        self._server = modbus_frames.GatewayModbusServer(devices, address=(self.settings.host, self.settings.port),
                                       identity=identity)
        for (unit, fc), image in self._shadow.items():  # before listening: no client sees zeros
            await self._server.async_setValues(unit, fc, 0, list(image))
        try:
            await self._server.serve_forever(background=True)
        except (RuntimeError, OSError) as exc:  # pymodbus: "Could not start listen"
            self._server = None
            raise ConfigError(f"Modbus cannot listen on {self.settings.host}:{self.settings.port} "
                              f"(modbus.host, modbus.port: address in use or not on this host): {exc}") from None
        sockets = getattr(self._server.transport, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self.settings.port
        # Each change arrives once, from the table BACnet serves too (no registry subscription).
        self.table.changed.append(self.on_points)
        self.table.added.append(self.on_points_added)
        self.table.removed.append(self.on_points_added)
        self._slots_dirty = False
        log.info("Modbus TCP serving %d registers per slot for %d slots on %s:%s%s",
                 CHARGER_STRIDE, self.flat_slots, self.settings.host, self.port,
                 f"; unit ids 1..{self.unit_slots} address one slot each" if self.unit_slots else "")
        return self.port

    async def stop(self) -> None:
        for listeners, fn in ((self.table.changed, self.on_points), (self.table.added, self.on_points_added),
                              (self.table.removed, self.on_points_added)):
            if fn in listeners:
                listeners.remove(fn)
        if self._flush_handle is not None and not self._flush_handle.done():
            self._flush_handle.cancel()
        self._flush_done.set()  # a flush cancelled before it ran never sets it
        if self._server is not None:
            await self._server.shutdown()
            self._server = None

    def _device(self, unit: int) -> SimDevice:
        """One pymodbus device per unit; the action sees every access, client writes included.

        Non-shared blocks, so FC3 and FC4 address different registers (notes 2.2). Coils and
        discrete inputs are not used; pymodbus needs a block for each, so 16 zero bits sit at 0.
        """
        bits = [SimData(0, count=16, values=False, datatype=DataType.BITS)]
        # Zero-filled here (one value repeated is cheap to build for 247 devices); start() then
        # copies the rendered image in with one async_setValues per register table.
        return SimDevice(id=unit, action=functools.partial(self.writes.action, unit), simdata=(
            bits, list(bits),
            [SimData(0, count=len(self._shadow[(unit, FC_HOLDING)]), values=0, datatype=DataType.REGISTERS)],
            [SimData(0, count=len(self._shadow[(unit, FC_INPUT)]), values=0, datatype=DataType.REGISTERS)]))

    # --- table -> registers ----------------------------------------------------------------
    def on_points(self, points: list[Point]) -> None:
        """Table listener: mark the areas showing these points; one flush per loop turn."""
        limit = max(self.flat_slots, self.unit_slots)
        for p in points:
            self._dirty.update(a for a in areas_of(p) if a[1] is None or a[1] <= limit)
        self._schedule_flush()

    def on_points_added(self, points: list[Point]) -> None:
        """Points came or went: a slot may have been given or taken, a connector first seen."""
        self._slots_dirty = True
        self.on_points(points)

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
                    self._dirty.add((Scope.SITE, None, None))
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
        served = {}
        self._added_ids = set()
        for s in self.registry.stations.values():
            if s.slot is None:
                continue
            self._added_ids.add(s.charger_id)
            if s.slot <= self.flat_slots or s.slot <= self.unit_slots:
                served[s.slot] = s.charger_id
                continue
            if s.charger_id not in self._warned:
                self._warned.add(s.charger_id)
                log.warning("%s has slot %d, beyond the %d slots of the flat Modbus map%s", s.charger_id,
                            s.slot, self.flat_slots, "; set modbus.unit_id_per_charger to serve it by unit id"
                            if s.slot <= MAX_UNIT_ID else f" and the {MAX_UNIT_ID} unit ids: not on Modbus")
        return served

    def _slot_areas(self, slot: int) -> list[Area]:
        return [(Scope.CHARGER, slot, None), (Scope.EXTRA, slot, None)] + [
            (Scope.CONNECTOR, slot, c) for c in range(MAX_CONNECTOR_ID + 1)]

    def _all_areas(self) -> Iterable[Area]:
        yield (Scope.SITE, None, None)
        for slot in range(1, max(self.flat_slots, self.unit_slots) + 1):
            yield from self._slot_areas(slot)

    def added_stations(self) -> list[Station]:
        """The chargers with a slot, as of the last slot scan (the site header counts them)."""
        return [s for s in (self.registry.get(cid) for cid in self._added_ids) if s is not None]

    def station_in(self, slot: int) -> Station | None:
        charger_id = self._slots.get(slot)
        return self.registry.get(charger_id) if charger_id else None

    def _render(self, area: Area, initial: bool = False) -> list[tuple[int, int, int, list[int]]]:
        """Encode one area; update the shadow and return the (unit, fc, address, regs) runs that changed."""
        scope, slot, connector_id = area
        station = self.station_in(slot) if slot is not None else None
        size = BLOCK_SIZE[scope]
        hr = [0] * size
        ir = [0] * size
        mirror = self.settings.mirror_inputs_in_holding
        for reg in self.map.blocks[scope]:
            regs = self._encode(reg, self._value(reg, station, slot, connector_id))
            if reg.writable:
                hr[reg.offset:reg.end] = regs
            else:
                ir[reg.offset:reg.end] = regs
                if mirror:
                    hr[reg.offset:reg.end] = regs
        changed = []
        for unit, base in self._targets(scope, slot, connector_id):
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

    def _targets(self, scope: Scope, slot: int | None, connector_id: int | None) -> list[tuple[int, int]]:
        """(unit, base address) of every device that shows this area."""
        if scope is Scope.SITE:
            return [(FLAT_UNIT, 0)] + [(unit, 0) for unit in range(1, self.unit_slots + 1)]
        assert slot is not None
        targets = []
        if slot <= self.flat_slots:
            targets.append((FLAT_UNIT, area_base(scope, slot, connector_id)))
        if slot <= self.unit_slots:
            targets.append((slot, area_base(scope, slot, connector_id, per_unit=True)))
        return targets

    def _value(self, reg: Register, station: Station | None, slot: int | None,
               connector_id: int | None) -> object:
        if reg.header:
            return header_value(self, reg.header, station, slot, connector_id)
        if station is None and reg.scope is not Scope.SITE:
            return None
        try:
            point = self.point_of(reg, station, slot, connector_id)
            return None if point is None else modbus_value(reg, self.table.read(point))
        except Exception:
            log.exception("reading %s for Modbus failed; served as not available", reg.name(slot or 0, connector_id))
            return None

    def point_of(self, reg: Register, station: Station | None, slot: int | None,
                 connector_id: int | None) -> Point | None:
        """The table's point a register shows in this block, or None when the table has none."""
        template = reg.point(station.charger_id if station else "", slot or 0, connector_id)
        return self.table.find(template.uid) if template is not None else None

    def _encode(self, reg: Register, value: object) -> list[int]:
        try:
            return encode(value, reg.reg_type, length=reg.length, word_order=self.word_order,
                          codes=dict(reg.codes) if reg.codes else None)
        except EncodeError as exc:
            log.warning("Modbus %s: %s; served as not available", reg.name(), exc)
            return encode(None, reg.reg_type, length=reg.length, word_order=self.word_order)

    # --- what the write path asks -----------------------------------------------------------
    def note_client_registers(self, unit: int, address: int, regs: Sequence[int]) -> None:
        """What pymodbus stores once a write is accepted; the shadow must not go stale."""
        self._shadow[(unit, FC_HOLDING)][address:address + len(regs)] = list(regs)

    def show_table_value(self, reg: Register, slot: int | None, connector_id: int | None) -> None:
        """After a write: push the register's table value, whatever a client left in it."""
        for unit in {u for (u, _fc) in self._shadow}:
            try:
                if reg.scope is not Scope.SITE and (slot is None or not any(
                        u == unit for u, _b in self._targets(reg.scope, slot, connector_id))):
                    continue
                base = area_base(reg.scope, slot, connector_id, per_unit=unit != FLAT_UNIT)
            except LayoutError:
                continue
            start = base + reg.offset
            self._shadow[(unit, FC_HOLDING)][start:start + reg.size] = [-1] * reg.size
        self._dirty.add((reg.scope, slot, connector_id if reg.scope is Scope.CONNECTOR else None))
        self._schedule_flush()


def areas_of(point: Point) -> list[Area]:
    """The register areas that show a table point (headers included: counts, online flags)."""
    kind = point.spec.kind
    if kind == "site":
        return [(Scope.SITE, None, None)]
    if not point.slot:
        return []
    if kind in ("connector", "meter") and point.connector_id is not None:
        if point.connector_id > MAX_CONNECTOR_ID:
            return []
        area: Area = (Scope.CONNECTOR, point.slot, point.connector_id)
        return [area, (Scope.CHARGER, point.slot, None)] if point.spec.key == "Status" else [area]
    areas: list[Area] = [(Scope.CHARGER, point.slot, None), (Scope.EXTRA, point.slot, None)]
    if point.spec.key == "Online":  # the site header counts chargers online
        areas.append((Scope.SITE, None, None))
    return areas


__all__ = ["ModbusPointServer", "areas_of"]
