"""The Modbus register map of this build: which catalog point sits at which offset of each block.

The geometry (a site block, one block per charger slot: a charger area, one area per connector,
an extension area), the structural header registers each block starts with, and the packing of
catalog specs into their kind's sub-areas in catalog order (append-only: nothing moves when a
point is added). `points.modbus.layout` turns offsets into absolute addresses and back.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from gateway.errors import LayoutError
from points.catalog import (
    CHARGER_SPECS,
    CONNECTOR_SPECS,
    SITE_SPECS,
    STANDARD_CONFIG_KEYS,
    config_spec,
    meter_spec,
)
from points.catalog_modbus import MODBUS_METERS, MODBUS_STRING_REGISTERS, STANDARD_CONFIG_TYPES
from points.modbus.codec import RegType, size_of
from points.spec import PointSpec
from points.table import Point, point_name, standard_meter_index

# Bumped whenever an address or a type in the map changes; served at site register 0.
# Version 2: flat slots 61..64 gave their space to the charger extension areas; every register
# of version 1 kept its address and type (docs/modbus.md, "Map versions").
MAP_VERSION = 2

SITE_BASE = 0
SITE_SIZE = 1000            # site block 0..999
CHARGER_BASE = 1000         # slot 1 starts here
CHARGER_AREA = 200          # charger-level values at block offsets 0..199
CONNECTOR_STRIDE = 200      # then one area per connector, connector 0 (the whole charger) first
MAX_CONNECTOR_ID = 3        # connectors 0..3; a higher connector id is not served over Modbus
CHARGER_STRIDE = CHARGER_AREA + (MAX_CONNECTOR_ID + 1) * CONNECTOR_STRIDE  # 1000
ADDRESS_SPACE = 65536
MAX_FLAT_SLOT = 60          # slots in the flat map (unit-id addressing serves up to MAX_UNIT_ID)
EXTRA_BASE = CHARGER_BASE + MAX_FLAT_SLOT * CHARGER_STRIDE   # 61000: extension areas, one per slot
EXTRA_STRIDE = 75           # charger points beyond the charger area (Niagara identity, ...)
UNIT_EXTRA_BASE = CHARGER_BASE + CHARGER_STRIDE              # 2000 with unit-id addressing
MAX_UNIT_ID = 247           # highest unit id Modbus allows for a device (MODBUS over serial 2.2)
HEADER_SIZE = 10            # each block starts with structural registers (below), points follow
MAX_READ = 125              # registers per FC3/FC4 request (Modbus application protocol 6.3)
CONFIG_AREA = (100, 186)    # standard configuration key k at 100 + 2k
METER_AREA = (110, 162)     # meter value i of MODBUS_METERS at 110 + 2i


class Scope(StrEnum):
    SITE = "site"
    CHARGER = "charger"
    CONNECTOR = "connector"
    EXTRA = "charger-extra"


BLOCK_SIZE = {Scope.SITE: SITE_SIZE, Scope.CHARGER: CHARGER_AREA, Scope.CONNECTOR: CONNECTOR_STRIDE,
              Scope.EXTRA: EXTRA_STRIDE}
# Where catalog specs of each kind are packed, in order: a spec that does not fit the current
# sub-area starts the next one (never back-filling, so appended points move nothing).
SUB_AREAS: dict[str, tuple[tuple[Scope, int, int], ...]] = {
    "site": ((Scope.SITE, HEADER_SIZE, SITE_SIZE),),
    "charger": ((Scope.CHARGER, HEADER_SIZE, CONFIG_AREA[0]), (Scope.EXTRA, 0, EXTRA_STRIDE)),
    "connector": ((Scope.CONNECTOR, HEADER_SIZE, METER_AREA[0]),
                  (Scope.CONNECTOR, METER_AREA[1], CONNECTOR_STRIDE)),
}


class Access(StrEnum):
    """Where a register is served: read-only values in input registers, writable ones in holding."""

    READ = "R"
    READ_WRITE = "R/W"


@dataclass(frozen=True)
class Register:
    """One value of the map: a catalog point (or a header) at its offset in its block.

    `counter` marks the UINT32 Wh counter served next to a kWh point (a float's 24-bit mantissa
    loses 1 Wh above 16.7 MWh); `header` names a structural register (spec is None).
    """

    scope: Scope
    offset: int
    reg_type: RegType
    length: int = 0
    spec: PointSpec | None = None
    subject: Any = None
    subject_index: int = 0
    counter: bool = False
    header: str = ""
    text: str = ""
    writable: bool = False
    minimum: float | None = None
    maximum: float | None = None
    codes: tuple[tuple[str, int], ...] = ()

    @property
    def size(self) -> int:
        return size_of(self.reg_type, self.length)

    @property
    def end(self) -> int:
        return self.offset + self.size

    @property
    def access(self) -> Access:
        return Access.READ_WRITE if self.writable else Access.READ

    @property
    def units(self) -> str:
        return "Wh" if self.counter else (self.spec.units if self.spec else "")

    @property
    def description(self) -> str:
        if self.spec is None:
            return self.text
        return self.text or self.spec.description + (" (Wh counter)" if self.counter else "")

    @property
    def source(self) -> str:
        return self.spec.ocpp_source if self.spec else ""

    def point(self, charger_id: str = "", slot: int = 0, connector_id: int | None = None) -> Point | None:
        """The catalog point this register shows for a block (None for a header register)."""
        if self.spec is None:
            return None
        if self.scope is Scope.SITE:
            return Point(self.spec)
        conn = connector_id if self.spec.kind in ("connector", "meter") else None
        return Point(self.spec, charger_id, slot, conn, self.subject, self.subject_index)

    def name(self, slot: int = 0, connector_id: int | None = None) -> str:
        """The point's name, as BACnet and the EDE file give it; `-Wh` for the counter copy."""
        if self.spec is None:
            where = "Site" if self.scope is Scope.SITE else f"CP{slot}" + (
                f"-C{connector_id}" if self.scope is Scope.CONNECTOR else "")
            return f"{where}-Header-{self.header}"
        conn = connector_id if self.spec.kind in ("connector", "meter") else None
        return point_name(slot, conn, self.spec, self.subject) + ("-Wh" if self.counter else "")


def _header(scope: Scope, offset: int, key: str, text: str, reg_type: RegType = RegType.UINT16) -> Register:
    return Register(scope, offset, reg_type, header=key, text=text)


# Structural registers at the start of each block: Modbus framing (which block is in use, how the
# map is laid out, whether values are live), not points. BACnet says the same with status flags.
HEADERS: dict[Scope, tuple[Register, ...]] = {
    Scope.SITE: (
        _header(Scope.SITE, 0, "MapVersion", "Register map version; changes when an address or type changes"),
        _header(Scope.SITE, 1, "ChargerBase", f"Address of slot 1's block ({CHARGER_BASE})"),
        _header(Scope.SITE, 2, "ChargerStride", f"Registers per charger slot ({CHARGER_STRIDE})"),
        _header(Scope.SITE, 3, "ConnectorArea", f"Offset of connector 0 in a charger block ({CHARGER_AREA})"),
        _header(Scope.SITE, 4, "ConnectorStride",
                f"Registers per connector ({CONNECTOR_STRIDE}); connector 0 comes first"),
        _header(Scope.SITE, 5, "MaxConnectorId", f"Highest connector id with an area ({MAX_CONNECTOR_ID})"),
        _header(Scope.SITE, 6, "ChargersAdded", "Chargers in the device database"),
        _header(Scope.SITE, 7, "ChargersOnline", "Chargers online now"),
        _header(Scope.SITE, 8, "HighestSlot", "Highest slot in use (blocks above it are empty)"),
        _header(Scope.SITE, 9, "ChargersNotServed",
                "Added chargers this map cannot serve (slot beyond the flat map and unit ids)"),
    ),
    Scope.CHARGER: (
        _header(Scope.CHARGER, 0, "Slot", "Slot number of this block; 0xFFFF while no charger holds the slot"),
        _header(Scope.CHARGER, 1, "Online", "Charger online: 1 while its values are live, 0 when they are stale",
                RegType.BOOL16),
        _header(Scope.CHARGER, 2, "Connectors", "Connectors the charger reported (connector 0 not counted)"),
        _header(Scope.CHARGER, 3, "MapVersion", "Register map version (as site register 0), for unit-id addressing"),
        _header(Scope.CHARGER, 4, "IdentityValid",
                "1 once the charger sent a BootNotification since the gateway started; 0 while "
                "vendor, model, firmware, ... are the values kept from before a restart", RegType.BOOL16),
    ),
    Scope.CONNECTOR: (
        _header(Scope.CONNECTOR, 0, "ConnectorId", "Connector id of this area"),
        _header(Scope.CONNECTOR, 1, "Valid",
                "Point valid: 1 while the charger is online and this connector has reported since the "
                "gateway started; 0 while its values are stale or kept from before a restart", RegType.BOOL16),
    ),
    Scope.EXTRA: (),
}


def reg_type_of(spec: PointSpec) -> RegType | None:
    """The register type of a catalog spec, or None if the point is not served over Modbus."""
    if spec.bacnet_type.startswith("multi-state"):
        return RegType.ENUM16
    if spec.bacnet_type.startswith("binary"):
        return RegType.BOOL16
    if spec.modbus_type == "string":
        return RegType.STRING if string_registers(spec) else None
    if not spec.modbus_type:
        return None  # BACnet only
    return {"float32": RegType.FLOAT32, "uint32": RegType.UINT32, "uint16": RegType.UINT16,
            "int32": RegType.INT32}[spec.modbus_type]


def string_registers(spec: PointSpec) -> int:
    """Registers of a string point: its catalog length; texts without one (StatusNotification
    info, disconnect and limit reasons) are left to BACnet: a fixed map has no room for free text."""
    return MODBUS_STRING_REGISTERS.get(spec.key, 0)


def _codes(spec: PointSpec, reg_type: RegType) -> tuple[tuple[str, int], ...]:
    """Enum codes as BACnet numbers them: multi-state 1-based, binary inactive 0 / active 1."""
    if reg_type is RegType.BOOL16:
        return tuple((state, i) for i, state in enumerate(spec.states[:2]))
    if reg_type is RegType.ENUM16:
        return tuple((state, i + 1) for i, state in enumerate(spec.states))
    return ()


def _spec_registers(spec: PointSpec, reg_type: RegType, scope: Scope, offset: int) -> list[Register]:
    length = string_registers(spec) if reg_type is RegType.STRING else 0
    main = Register(scope, offset, reg_type, length, spec, writable=spec.writable,
                    minimum=spec.min_value, maximum=spec.max_value, codes=_codes(spec, reg_type))
    if spec.units != "kWh":
        return [main]
    return [main, Register(scope, main.end, RegType.UINT32, spec=spec, counter=True)]


def _packed(kind: str, specs: tuple[PointSpec, ...]) -> list[Register]:
    areas = SUB_AREAS[kind]
    area = 0
    scope, offset, end = areas[0]
    out: list[Register] = []
    for spec in specs:
        reg_type = reg_type_of(spec)
        if reg_type is None:
            continue
        regs = _spec_registers(spec, reg_type, scope, offset)
        while regs[-1].end > end:
            area += 1
            if area >= len(areas):
                raise LayoutError(f"{kind} point {spec.key} does not fit the map (new map version needed)")
            scope, offset, end = areas[area]
            regs = _spec_registers(spec, reg_type, scope, offset)
        out += regs
        offset = regs[-1].end
    return out


def _config_registers() -> list[Register]:
    out = []
    for index, key in enumerate(STANDARD_CONFIG_KEYS):
        ocpp_type, access = STANDARD_CONFIG_TYPES[key]
        if ocpp_type not in ("integer", "boolean"):
            continue  # comma-separated lists are text: BACnet serves them, Modbus does not
        is_bool = ocpp_type == "boolean"
        out.append(Register(
            Scope.CHARGER, CONFIG_AREA[0] + 2 * index, RegType.BOOL16 if is_bool else RegType.UINT32,
            spec=config_spec(key, access == "RW"), subject=key, subject_index=index,
            text=f"Configuration key {key} ({ocpp_type}, OCPP 1.6 chapter 9)", writable=access == "RW",
            minimum=None if is_bool else 0, maximum=None if is_bool else 0xFFFFFFFE,
            codes=(("false", 0), ("true", 1)) if is_bool else ()))
    return out


def _meter_registers() -> list[Register]:
    out = []
    for index, (measurand, phase, encoding) in enumerate(MODBUS_METERS):
        subject = (measurand, phase, "Outlet")
        out.append(Register(Scope.CONNECTOR, METER_AREA[0] + 2 * index,
                            RegType.UINT32 if encoding == "u32" else RegType.FLOAT32,
                            spec=meter_spec(*subject), subject=subject,
                            subject_index=standard_meter_index(*subject) or 0, counter=encoding == "u32"))
    return out


@dataclass
class ModbusMap:
    """Every register of each block scope, and the inverse look-ups the write path needs."""

    blocks: dict[Scope, list[Register]] = field(default_factory=dict)
    _by_offset: dict[Scope, dict[int, Register]] = field(default_factory=dict)

    def add(self, reg: Register) -> None:
        taken = self._by_offset.setdefault(reg.scope, {})
        if reg.end > BLOCK_SIZE[reg.scope]:
            raise LayoutError(f"{reg.name()} ends at {reg.end}; the {reg.scope} block has {BLOCK_SIZE[reg.scope]}")
        clash = next((taken[i] for i in range(reg.offset, reg.end) if i in taken), None)
        if clash is not None:
            raise LayoutError(f"{reg.name()} at {reg.offset} overlaps {clash.name()}")
        for i in range(reg.offset, reg.end):
            taken[i] = reg
        self.blocks.setdefault(reg.scope, []).append(reg)

    def at(self, scope: Scope, offset: int) -> Register | None:
        """The register covering an offset of a block, or None for a gap."""
        return self._by_offset.get(scope, {}).get(offset)


@functools.cache
def modbus_map() -> ModbusMap:
    """The map of this build: headers, catalog points in catalog order, config keys, meters."""
    result = ModbusMap()
    for scope in Scope:
        result.blocks[scope] = []
        for reg in HEADERS[scope]:
            result.add(reg)
    for reg in (_packed("site", SITE_SPECS) + _packed("charger", CHARGER_SPECS)
                + _packed("connector", CONNECTOR_SPECS) + _config_registers() + _meter_registers()):
        result.add(reg)
    for scope in Scope:
        result.blocks[scope].sort(key=lambda r: r.offset)
    return result
