"""Where every value sits in the Modbus address space: one tested place for register addresses.

The map is a site block, then one fixed-size block per charger slot, and inside a charger block
a charger area followed by one fixed-size area per connector (notes 3.4). Because a slot never
changes and every block has a fixed size, a charger's registers never move when chargers are
added, removed or connect in another order. Inside a block, fields are packed in the order of
their stable point offsets, so a point added to the table later lands after the existing ones
and moves nothing (a point's type must never change; the map version says when it did).

This module knows nothing of pymodbus or of the live model: it turns field descriptions into
addresses, so the server, the register-map export and the tests share one computation.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum

from points.modbus_codec import RegType, size_of

# Bumped whenever an address or a type in the map changes; served at site register 0.
MAP_VERSION = 1

SITE_BASE = 0
SITE_SIZE = 1000            # site block 0..999
CHARGER_BASE = 1000         # slot 1 starts here
CHARGER_AREA = 200          # charger-level values (connector 0) at block offsets 0..199
CONNECTOR_STRIDE = 100      # one area per connector
MAX_CONNECTORS = 4          # connectors 1..4; a higher connector id is not served over Modbus
CHARGER_STRIDE = CHARGER_AREA + MAX_CONNECTORS * CONNECTOR_STRIDE  # 600
ADDRESS_SPACE = 65536
# Slots that fit the flat map (unit id mode serves every slot up to MAX_UNIT_ID at CHARGER_BASE).
MAX_FLAT_SLOT = (ADDRESS_SPACE - CHARGER_BASE) // CHARGER_STRIDE  # 107
MAX_UNIT_ID = 247           # highest unit id Modbus allows for a device (MODBUS over serial 2.2)
HEADER_SIZE = 10            # each block starts with structural registers (below), points follow
MAX_READ = 125              # registers per FC3/FC4 request (Modbus application protocol 6.3)


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
              description=f"Offset of connector 1 in a charger block ({CHARGER_AREA})"),
    FieldSpec("header.connector_stride", Scope.SITE, 4, RegType.UINT16,
              description=f"Registers per connector ({CONNECTOR_STRIDE})"),
    FieldSpec("header.max_connectors", Scope.SITE, 5, RegType.UINT16,
              description=f"Connectors per charger block ({MAX_CONNECTORS})"),
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
)
CONNECTOR_HEADER = (
    FieldSpec("header.connector_id", Scope.CONNECTOR, 0, RegType.UINT16,
              description="Connector id of this area"),
    FieldSpec("header.valid", Scope.CONNECTOR, 1, RegType.BOOL16,
              description="Point valid: 1 when the connector has reported and the charger is online"),
)
HEADERS = {Scope.SITE: SITE_HEADER, Scope.CHARGER: CHARGER_HEADER, Scope.CONNECTOR: CONNECTOR_HEADER}


class LayoutError(ValueError):
    """The fields do not fit their block: a map change that needs a bigger block (new version)."""


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
    """Header first, then the point fields in (order, encoding) order, each right after the last.

    A 32-bit field starts on the next register: Modbus has no alignment rule, and padding would
    waste space that new points need.
    """
    layout = BlockLayout(scope)
    offset = 0
    for spec in HEADERS[scope]:
        layout.add(Placed(spec, offset))
        offset += spec.size
    offset = max(offset, HEADER_SIZE)
    seen: set[str] = set()
    for spec in sorted((s for s in specs if s.scope is scope), key=lambda s: (s.order, s.encoding)):
        if spec.field_id in seen:
            raise LayoutError(f"field {spec.field_id} is listed twice")
        seen.add(spec.field_id)
        layout.add(Placed(spec, offset))
        offset += spec.size
    if offset > BLOCK_SIZE[scope]:
        raise LayoutError(f"{scope} fields need {offset} registers; the block has {BLOCK_SIZE[scope]}")
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
    if not 1 <= connector_id <= MAX_CONNECTORS:
        raise LayoutError(f"connector {connector_id} is outside 1..{MAX_CONNECTORS}")
    return (charger_block_base(slot, per_unit=per_unit) + CHARGER_AREA
            + (connector_id - 1) * CONNECTOR_STRIDE)


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
        """Every field of a charger block: the charger area, then connectors 1..MAX_CONNECTORS."""
        yield from self.charger(slot, per_unit=per_unit)
        for connector_id in range(1, MAX_CONNECTORS + 1):
            yield from self.connector(slot, connector_id, per_unit=per_unit)

    def locate(self, address: int, *, per_unit: bool = False) -> tuple[Scope, int | None, int | None, int]:
        """(scope, slot, connector_id, offset in its block) for an address; the inverse of the above.

        With per_unit, the slot is the unit id's and the answer's slot is None.
        """
        if address < CHARGER_BASE:
            return Scope.SITE, None, None, address - SITE_BASE
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
        return Scope.CONNECTOR, slot, rel // CONNECTOR_STRIDE + 1, rel % CONNECTOR_STRIDE
