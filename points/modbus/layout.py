"""Where every value sits in the Modbus address space: one tested place for register addresses.

The map is a site block, then one fixed-size block per charger slot, and inside a charger block
a charger area followed by one fixed-size area per connector (notes 3.4). Because a slot never
changes and every block has a fixed size, a charger's registers never move when chargers are
added, removed or connect in another order. Inside a block, each kind of point has its own
sub-area: points are packed in a fixed placement order (new points go at the end), meter values
and configuration keys sit at index-derived offsets, so nothing moves when the table grows (a
point's type must never change; the map version says when an address did).

This module knows nothing of pymodbus or of the live model: it turns field descriptions into
addresses, so the server, the register-map export and the tests share one computation.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum

from gateway.errors import LayoutError
from points.modbus.codec import RegType, size_of

# Bumped whenever an address or a type in the map changes; served at site register 0.
MAP_VERSION = 1

SITE_BASE = 0
SITE_SIZE = 1000            # site block 0..999
CHARGER_BASE = 1000         # slot 1 starts here
CHARGER_AREA = 200          # charger-level values at block offsets 0..199
CONNECTOR_STRIDE = 200      # then one area per connector, connector 0 (the whole charger) first
MAX_CONNECTOR_ID = 3        # connectors 0..3; a higher connector id is not served over Modbus
CHARGER_STRIDE = CHARGER_AREA + (MAX_CONNECTOR_ID + 1) * CONNECTOR_STRIDE  # 1000
ADDRESS_SPACE = 65536
# Slots that fit the flat map (unit-id addressing serves every slot up to MAX_UNIT_ID at CHARGER_BASE).
MAX_FLAT_SLOT = (ADDRESS_SPACE - CHARGER_BASE) // CHARGER_STRIDE  # 64
MAX_UNIT_ID = 247           # highest unit id Modbus allows for a device (MODBUS over serial 2.2)
HEADER_SIZE = 10            # each block starts with structural registers (below), points follow
MAX_READ = 125              # registers per FC3/FC4 request (Modbus application protocol 6.3)
# Sub-areas inside a block, so one kind of point can grow without moving another.
CHARGER_POINTS = (HEADER_SIZE, 100)      # charger points, packed in placement order
CONFIG_AREA = (100, 200)                 # standard configuration key k at 100 + 2k
CONNECTOR_POINTS = (HEADER_SIZE, 110)    # connector points, packed in placement order
METER_AREA = (110, 200)                  # meter value i of the Modbus meter list at 110 + 2i


class Scope(StrEnum):
    SITE = "site"
    CHARGER = "charger"
    CONNECTOR = "connector"


BLOCK_SIZE = {Scope.SITE: SITE_SIZE, Scope.CHARGER: CHARGER_AREA, Scope.CONNECTOR: CONNECTOR_STRIDE}


class Access(StrEnum):
    """Where a field is served: read-only values in input registers, writable ones in holding."""

    READ = "R"
    READ_WRITE = "R/W"


@dataclass(frozen=True)
class FieldSpec:
    """A value to place: what the point table (or the block header) asks the layout for.

    `key` names the point (a header field's key starts with "header."); `order` is its stable
    position in its scope; `encoding` distinguishes two encodings of one point (energy is
    served as FLOAT32 Wh and as a UINT32 Wh counter).
    """

    key: str
    scope: Scope
    order: int
    reg_type: RegType
    writable: bool = False
    length: int = 0                # registers, for STRING
    encoding: str = ""             # "" for the main encoding, e.g. "u32" for the counter copy
    description: str = ""
    units: str = ""
    codes: tuple[tuple[str, int], ...] = ()   # enum name -> code, for ENUM16
    minimum: float | None = None
    maximum: float | None = None
    source: str = ""
    offset: int | None = None      # fixed offset in the block; None: packed after the previous field

    @property
    def size(self) -> int:
        return size_of(self.reg_type, self.length)

    @property
    def access(self) -> Access:
        return Access.READ_WRITE if self.writable else Access.READ

    @property
    def field_id(self) -> str:
        return f"{self.key}#{self.encoding}" if self.encoding else self.key


@dataclass(frozen=True)
class Placed:
    """A field with its offset inside its block."""

    spec: FieldSpec
    offset: int

    @property
    def end(self) -> int:
        return self.offset + self.spec.size


# Structural registers at the start of each block. They are Modbus framing (which block is in use,
# how the map is laid out), not points: the BACnet side has its own device object and status flags.
SITE_HEADER = (
    FieldSpec("header.map_version", Scope.SITE, 0, RegType.UINT16,
              description="Register map version; changes when an address or type changes"),
    FieldSpec("header.charger_base", Scope.SITE, 1, RegType.UINT16,
              description=f"Address of slot 1's block ({CHARGER_BASE})"),
    FieldSpec("header.charger_stride", Scope.SITE, 2, RegType.UINT16,
              description=f"Registers per charger slot ({CHARGER_STRIDE})"),
    FieldSpec("header.connector_area", Scope.SITE, 3, RegType.UINT16,
              description=f"Offset of connector 0 in a charger block ({CHARGER_AREA})"),
    FieldSpec("header.connector_stride", Scope.SITE, 4, RegType.UINT16,
              description=f"Registers per connector ({CONNECTOR_STRIDE}); connector 0 comes first"),
    FieldSpec("header.max_connector_id", Scope.SITE, 5, RegType.UINT16,
              description=f"Highest connector id with an area ({MAX_CONNECTOR_ID})"),
    FieldSpec("header.chargers_added", Scope.SITE, 6, RegType.UINT16,
              description="Chargers in the device database"),
    FieldSpec("header.chargers_online", Scope.SITE, 7, RegType.UINT16,
              description="Chargers online now"),
    FieldSpec("header.highest_slot", Scope.SITE, 8, RegType.UINT16,
              description="Highest slot in use (blocks above it are empty)"),
)
CHARGER_HEADER = (
    FieldSpec("header.slot", Scope.CHARGER, 0, RegType.UINT16,
              description="Slot number of this block; 0xFFFF while no charger holds the slot"),
    FieldSpec("header.online", Scope.CHARGER, 1, RegType.BOOL16,
              description="Charger online: 1 while its values are live, 0 when they are stale"),
    FieldSpec("header.connectors", Scope.CHARGER, 2, RegType.UINT16,
              description="Connectors the charger reported (connector 0 not counted)"),
    FieldSpec("header.map_version", Scope.CHARGER, 3, RegType.UINT16,
              description="Register map version (as site register 0), for unit-id addressing"),
)
CONNECTOR_HEADER = (
    FieldSpec("header.connector_id", Scope.CONNECTOR, 0, RegType.UINT16,
              description="Connector id of this area"),
    FieldSpec("header.valid", Scope.CONNECTOR, 1, RegType.BOOL16,
              description="Point valid: 1 while the charger is online and this connector has reported"),
)
HEADERS = {Scope.SITE: SITE_HEADER, Scope.CHARGER: CHARGER_HEADER, Scope.CONNECTOR: CONNECTOR_HEADER}


@dataclass
class BlockLayout:
    """The fields of one scope with their offsets; the same for every block of that scope."""

    scope: Scope
    fields: list[Placed] = field(default_factory=list)
    _by_id: dict[str, Placed] = field(default_factory=dict, repr=False)

    def add(self, placed: Placed) -> None:
        self.fields.append(placed)
        self._by_id[placed.spec.field_id] = placed

    def get(self, field_id: str) -> Placed | None:
        return self._by_id.get(field_id)

    @property
    def used(self) -> int:
        return max((p.end for p in self.fields), default=0)


def pack(specs: Iterable[FieldSpec], scope: Scope) -> BlockLayout:
    """Header first, then each field at its fixed offset or right after the previous field.

    A 32-bit field starts on the next register: Modbus has no alignment rule, and padding would
    waste space that new points need. Overlaps and overflows are errors, found by the tests.
    """
    layout = BlockLayout(scope)
    used = [""] * BLOCK_SIZE[scope]
    offset = 0
    chosen = list(HEADERS[scope]) + [s for s in specs if s.scope is scope]
    for number, spec in enumerate(chosen):
        if number == len(HEADERS[scope]):
            offset = max(offset, HEADER_SIZE)
        if spec.offset is not None:
            offset = spec.offset
        if layout.get(spec.field_id) is not None:
            raise LayoutError(f"field {spec.field_id} is listed twice")
        end = offset + spec.size
        if end > BLOCK_SIZE[scope]:
            raise LayoutError(f"{spec.field_id} ends at {end}; the {scope} block has {BLOCK_SIZE[scope]}")
        clash = next((u for u in used[offset:end] if u), "")
        if clash:
            raise LayoutError(f"{spec.field_id} at {offset} overlaps {clash}")
        used[offset:end] = [spec.field_id] * spec.size
        layout.add(Placed(spec, offset))
        offset = end
    return layout


# --- addresses: the one function per identity ---------------------------------------------
def charger_block_base(slot: int, *, per_unit: bool = False) -> int:
    """First register of a slot's block; with unit-id addressing every slot sits at slot 1's place."""
    if slot < 1:
        raise ValueError(f"slots start at 1, not {slot}")
    if per_unit:
        return CHARGER_BASE
    if slot > MAX_FLAT_SLOT:
        raise LayoutError(f"slot {slot} is beyond the flat map (max {MAX_FLAT_SLOT}); use unit-id addressing")
    return CHARGER_BASE + (slot - 1) * CHARGER_STRIDE


def connector_area_base(slot: int, connector_id: int, *, per_unit: bool = False) -> int:
    if not 0 <= connector_id <= MAX_CONNECTOR_ID:
        raise LayoutError(f"connector {connector_id} is outside 0..{MAX_CONNECTOR_ID}")
    return (charger_block_base(slot, per_unit=per_unit) + CHARGER_AREA
            + connector_id * CONNECTOR_STRIDE)


def flat_slot_fits(slot: int) -> bool:
    return 1 <= slot <= MAX_FLAT_SLOT


@dataclass(frozen=True)
class Location:
    """A placed field in one concrete block (site, a slot, a slot's connector)."""

    placed: Placed
    address: int
    slot: int | None = None
    connector_id: int | None = None

    @property
    def spec(self) -> FieldSpec:
        return self.placed.spec


class RegisterLayout:
    """The three block layouts plus the functions that give concrete addresses."""

    def __init__(self, specs: Iterable[FieldSpec]) -> None:
        specs = list(specs)
        self.blocks = {scope: pack(specs, scope) for scope in Scope}

    def site(self) -> Iterator[Location]:
        for placed in self.blocks[Scope.SITE].fields:
            yield Location(placed, SITE_BASE + placed.offset)

    def charger(self, slot: int, *, per_unit: bool = False) -> Iterator[Location]:
        base = charger_block_base(slot, per_unit=per_unit)
        for placed in self.blocks[Scope.CHARGER].fields:
            yield Location(placed, base + placed.offset, slot, 0)

    def connector(self, slot: int, connector_id: int, *, per_unit: bool = False) -> Iterator[Location]:
        base = connector_area_base(slot, connector_id, per_unit=per_unit)
        for placed in self.blocks[Scope.CONNECTOR].fields:
            yield Location(placed, base + placed.offset, slot, connector_id)

    def slot_locations(self, slot: int, *, per_unit: bool = False) -> Iterator[Location]:
        """Every field of a charger block: the charger area, then connectors 0..MAX_CONNECTOR_ID."""
        yield from self.charger(slot, per_unit=per_unit)
        for connector_id in range(MAX_CONNECTOR_ID + 1):
            yield from self.connector(slot, connector_id, per_unit=per_unit)

    def locate(self, address: int, *, per_unit: bool = False) -> tuple[Scope, int | None, int | None, int]:
        """(scope, slot, connector_id, offset in its block) for an address; the inverse of the above.

        With per_unit, the slot is the unit id's and the answer's slot is None.
        """
        if address < CHARGER_BASE:
            return Scope.SITE, None, None, address - SITE_BASE
        if address >= ADDRESS_SPACE:
            raise LayoutError(f"address {address} is outside the Modbus address space")
        rel = address - CHARGER_BASE
        if per_unit:
            if rel >= CHARGER_STRIDE:
                raise LayoutError(f"address {address} is beyond the charger block")
            slot = None
        else:
            slot = rel // CHARGER_STRIDE + 1
            rel %= CHARGER_STRIDE
        if rel < CHARGER_AREA:
            return Scope.CHARGER, slot, 0, rel
        rel -= CHARGER_AREA
        return Scope.CONNECTOR, slot, rel // CONNECTOR_STRIDE, rel % CONNECTOR_STRIDE
