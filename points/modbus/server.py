"""The Modbus TCP server: the point table served as registers in the gateway's event loop.

Values are pushed when the model changes (`Registry.subscribe`), not computed per request: a
BMS polling hundreds of registers a second then costs only pymodbus' own request handling.
Events are coalesced per block area and flushed once per loop turn, so a MeterValues message
with twenty samples costs one register update per connector.

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
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from gateway.errors import ConfigError, EncodeError
from gateway.model.station import ChangeEvent, ChangeKind, Registry, Station
from gateway.settings import ModbusSettings
from points.modbus.binding import Area, Binding, PointContext
from points.modbus.codec import encode
from points.modbus.layout import (
    CHARGER_AREA,
    CHARGER_BASE,
    CHARGER_STRIDE,
    CONNECTOR_STRIDE,
    MAP_VERSION,
    MAX_CONNECTOR_ID,
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
from points.modbus.writes import ClientWrites

log = logging.getLogger(__name__)

FC_HOLDING, FC_INPUT = 3, 4
FLAT_UNIT = 0                           # SimDevice id 0 answers every unit id without its own device

# Values with the `dynamic` flag change with time alone (a session's duration): re-rendered this often.
DYNAMIC_REFRESH_S = 5.0


class ModbusPointServer:
    """Serves the bindings on `settings.host:settings.port`; see docs/modbus.md for the map."""

    FLAT_UNIT = FLAT_UNIT

    def __init__(self, registry: Registry, bindings: Iterable[Binding], settings: ModbusSettings) -> None:
        self.registry = registry
        self.settings = settings
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
        self._added_ids: set[str] = set()       # chargers with a slot, as of the last slot scan
        self._warned: set[str] = set()
        self._dirty: set[Area] = set()
        self._slots_dirty = True
        self._flush_handle: asyncio.Task[None] | None = None
        self._flush_done = asyncio.Event()
        self._flush_done.set()
        self.port: int | None = None
        self._refresher: asyncio.Task[None] | None = None
        self.writes = ClientWrites(self)

    # --- lifecycle -------------------------------------------------------------------------
    async def start(self) -> int:
        """Render every block from the model, then listen; returns the bound port."""
        self._slots = self._current_slots()
        units = {FLAT_UNIT: CHARGER_BASE + self.flat_slots * CHARGER_STRIDE}
        units.update({unit: CHARGER_BASE + CHARGER_STRIDE for unit in range(1, self.unit_slots + 1)})
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
        self._server = ModbusTcpServer(devices, address=(self.settings.host, self.settings.port),
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
        self.registry.subscribe(self.on_change)
        self._slots_dirty = False
        self._refresher = asyncio.get_running_loop().create_task(self._refresh_dynamic(),
                                                                 name="modbus dynamic refresh")
        log.info("Modbus TCP serving %d registers per slot for %d slots on %s:%s%s",
                 CHARGER_STRIDE, self.flat_slots, self.settings.host, self.port,
                 f"; unit ids 1..{self.unit_slots} address one slot each" if self.unit_slots else "")
        return self.port

    async def stop(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
        if self._flush_handle is not None and not self._flush_handle.done():
            self._flush_handle.cancel()
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

    # --- model -> registers ----------------------------------------------------------------
    def on_change(self, event: ChangeEvent) -> None:
        """Registry subscriber: mark the areas an event touches; one flush per loop turn.

        Runs inside the charger's message handling, so it never raises into it.
        """
        try:
            self._mark(event)
        except Exception:
            log.exception("Modbus could not take event %s for %s", event.kind, event.charger_id)

    def _mark(self, event: ChangeEvent) -> None:
        station = self.registry.get(event.charger_id)
        if (station is None or station.slot is None) and event.charger_id not in self._added_ids:
            return  # a guest: nothing of it is on Modbus (5,000 guests in a storm made this hot)
        if event.kind in (ChangeKind.STATION, ChangeKind.ADDED, ChangeKind.REMOVED):
            self._slots_dirty = True  # a slot may have been given or taken
        if station is not None and station.slot is not None \
                and station.slot <= max(self.flat_slots, self.unit_slots):
            slot = station.slot
            if event.kind in (ChangeKind.METER, ChangeKind.CONNECTOR):
                connector_id = event.connector_id or 0
                if connector_id <= MAX_CONNECTOR_ID:
                    self._dirty.add((Scope.CONNECTOR, slot, connector_id))
                if event.kind == ChangeKind.CONNECTOR:
                    self._dirty.add((Scope.CHARGER, slot, None))  # connector count in the header
            elif event.kind == ChangeKind.CONFIG:
                self._dirty.add((Scope.CHARGER, slot, None))
            else:
                self._dirty.update(self._slot_areas(slot))
        if event.kind != ChangeKind.METER and event.kind != ChangeKind.CONFIG:
            self._dirty.add((Scope.SITE, None, None))  # counts of chargers added and online
        self._schedule_flush()

    def refresh(self, areas: Iterable[Area] | None = None) -> None:
        """Re-render areas (default: all) from the model, e.g. after the point table's own state changed."""
        limit = max(self.flat_slots, self.unit_slots)
        self._dirty.update(a for a in (self._all_areas() if areas is None else areas)
                           if a[1] is None or (1 <= a[1] <= limit and (a[2] or 0) <= MAX_CONNECTOR_ID))
        self._schedule_flush()

    async def _refresh_dynamic(self) -> None:
        """Values that change with time alone (session duration) are re-rendered periodically."""
        dynamic = {b.spec.scope for b in self.bindings.values() if b.dynamic}
        while dynamic:
            await asyncio.sleep(DYNAMIC_REFRESH_S)
            for slot, charger_id in list(self._slots.items()):
                station = self.registry.get(charger_id)
                if station is None:
                    continue
                if Scope.CONNECTOR in dynamic:
                    self._dirty.update((Scope.CONNECTOR, slot, c) for c, conn in station.connectors.items()
                                       if c <= MAX_CONNECTOR_ID and conn.transaction_id is not None)
                if Scope.CHARGER in dynamic:
                    self._dirty.add((Scope.CHARGER, slot, None))
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
        served = {}
        self._added_ids = set()
        for s in self.registry.stations.values():
            if s.slot is None:
                continue
            self._added_ids.add(s.charger_id)
            if s.slot <= self.flat_slots or s.slot <= self.unit_slots:
                served[s.slot] = s.charger_id
            elif s.charger_id not in self._warned:
                self._warned.add(s.charger_id)
                log.warning("%s has slot %d, beyond the %d slots of the flat Modbus map; set "
                            "modbus.unit_id_per_charger to serve it by unit id", s.charger_id, s.slot,
                            self.flat_slots)
        return served

    def _slot_areas(self, slot: int) -> list[Area]:
        return [(Scope.CHARGER, slot, None)] + [(Scope.CONNECTOR, slot, c) for c in range(MAX_CONNECTOR_ID + 1)]

    def _all_areas(self) -> Iterable[Area]:
        yield (Scope.SITE, None, None)
        for slot in range(1, max(self.flat_slots, self.unit_slots) + 1):
            yield from self._slot_areas(slot)

    def _render(self, area: Area, initial: bool = False) -> list[tuple[int, int, int, list[int]]]:
        """Encode one area; update the shadow and return the (unit, fc, address, regs) runs that changed."""
        scope, slot, connector_id = area
        station = None
        if slot is not None and slot in self._slots:
            station = self.registry.get(self._slots[slot])
        ctx = PointContext(station, connector_id)
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
        try:
            return self.bindings[spec.field_id].read(ctx)
        except Exception:
            log.exception("reading %s for Modbus failed; served as not available", spec.field_id)
            return None

    def _header_value(self, key: str, ctx: PointContext, slot: int | None) -> object:
        registry = self.registry
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
        if key == "header.max_connector_id":
            return MAX_CONNECTOR_ID
        if key == "header.chargers_added":
            return min(len(self._added_ids), 0xFFFE)
        if key == "header.chargers_online":
            online = (registry.get(cid) for cid in self._added_ids)
            return min(sum(1 for s in online if s is not None and s.online), 0xFFFE)
        if key == "header.highest_slot":
            added = (registry.get(cid) for cid in self._added_ids)
            return max((s.slot for s in added if s is not None and s.slot is not None), default=0)
        if key == "header.slot":
            return slot if station is not None else None
        if key == "header.online":
            return station is not None and station.online
        if key == "header.connectors":
            return None if station is None else sum(1 for c in station.connectors if c > 0)
        if key == "header.connector_id":
            return ctx.connector_id
        if key == "header.valid":
            return station is not None and station.online and ctx.connector_id in station.connectors
        raise LayoutError(f"no header field {key}")

    def _encode(self, spec: FieldSpec, value: object) -> list[int]:
        try:
            return encode(value, spec.reg_type, length=spec.length, word_order=self.word_order,
                          codes=dict(spec.codes) if spec.codes else None)
        except EncodeError as exc:
            log.warning("Modbus %s: %s; served as not available", spec.field_id, exc)
            return encode(None, spec.reg_type, length=spec.length, word_order=self.word_order)


    # --- what the write path asks -----------------------------------------------------------
    def field_at(self, scope: Scope, offset: int) -> Placed | None:
        """The field covering an offset of a block, or None for a header gap or unused register."""
        return self._by_offset[scope].get(offset)

    def station_in(self, slot: int) -> Station | None:
        charger_id = self._slots.get(slot)
        return self.registry.get(charger_id) if charger_id else None

    def note_client_registers(self, unit: int, address: int, regs: Sequence[int]) -> None:
        """What pymodbus stores once a write is accepted; the shadow must not go stale."""
        self._shadow[(unit, FC_HOLDING)][address:address + len(regs)] = list(regs)

    def show_model_value(self, binding: Binding, ctx: PointContext) -> None:
        """After a write: push the field's model value, whatever a client left in its registers."""
        for unit in {u for (u, _fc) in self._shadow}:
            self._forget(unit, binding, ctx)
        self._dirty.add(self._area_of(binding.spec, ctx))
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
        start = base + placed.offset
        self._shadow[(unit, FC_HOLDING)][start:start + placed.spec.size] = [-1] * placed.spec.size

    @staticmethod
    def _area_of(spec: FieldSpec, ctx: PointContext) -> Area:
        slot = ctx.station.slot if ctx.station else None
        if spec.scope is Scope.SITE:
            return (Scope.SITE, None, None)
        if spec.scope is Scope.CHARGER:
            return (Scope.CHARGER, slot, None)
        return (Scope.CONNECTOR, slot, ctx.connector_id)


__all__ = ["Binding", "ModbusPointServer", "PointContext"]
