"""The Modbus face of the point catalog: where each catalog point sits in the register space.

Modbus defines no point. Every register here is a spec of `points.catalog` placed in a block
(or a header register, which is Modbus framing, not a point). The map is a site block, then one
fixed-size block per charger slot, and inside a charger block a charger area followed by one
fixed-size area per connector (notes 3.4). Catalog specs are packed in catalog order into their
kind's sub-areas (append-only catalog: nothing moves when a point is added); standard
configuration keys and the Modbus meter list sit at index-derived offsets. Charger points that
no longer fit the charger area go on in a per-slot extension area above the flat slots.

The map itself (geometry, headers, packing) is `points.modbus.registers`; this module places it in
the address space. Identities, one function each: `register_address` (absolute address of a register in a block),
`points.table.point_name` (the name, shared with BACnet and the EDE file), `Register.point`
(the catalog point a register shows). No pymodbus, no live model: the server, the register-map
export and the tests share this computation.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from gateway.errors import LayoutError
from points.modbus import registers
from points.modbus.registers import Register, Scope, modbus_map
from points.table import Point


# --- addresses: the one function per identity ---------------------------------------------
def charger_block_base(slot: int, *, per_unit: bool = False) -> int:
    """First register of a slot's block; with unit-id addressing every slot sits at slot 1's place."""
    if slot < 1:
        raise ValueError(f"slots start at 1, not {slot}")
    if per_unit:
        return registers.CHARGER_BASE
    if slot > registers.MAX_FLAT_SLOT:
        raise LayoutError(f"slot {slot} is beyond the flat map (max {registers.MAX_FLAT_SLOT}); use unit-id addressing")
    return registers.CHARGER_BASE + (slot - 1) * registers.CHARGER_STRIDE


def connector_area_base(slot: int, connector_id: int, *, per_unit: bool = False) -> int:
    if not 0 <= connector_id <= registers.MAX_CONNECTOR_ID:
        raise LayoutError(f"connector {connector_id} is outside 0..{registers.MAX_CONNECTOR_ID}")
    return (charger_block_base(slot, per_unit=per_unit) + registers.CHARGER_AREA
            + connector_id * registers.CONNECTOR_STRIDE)


def extra_area_base(slot: int, *, per_unit: bool = False) -> int:
    """First register of a slot's extension area (charger points beyond the charger area)."""
    if per_unit:
        return registers.UNIT_EXTRA_BASE
    charger_block_base(slot)  # the same range check
    return registers.EXTRA_BASE + (slot - 1) * registers.EXTRA_STRIDE


def area_base(scope: Scope, slot: int | None, connector_id: int | None, *, per_unit: bool = False) -> int:
    if scope is Scope.SITE:
        return registers.SITE_BASE
    assert slot is not None
    if scope is Scope.CHARGER:
        return charger_block_base(slot, per_unit=per_unit)
    if scope is Scope.EXTRA:
        return extra_area_base(slot, per_unit=per_unit)
    return connector_area_base(slot, connector_id or 0, per_unit=per_unit)


def register_address(reg: Register, slot: int | None = None, connector_id: int | None = None, *,
                     per_unit: bool = False) -> int:
    """The absolute address of a register in the block of `slot` (and connector)."""
    return area_base(reg.scope, slot, connector_id, per_unit=per_unit) + reg.offset


def point_address(point: Point, *, per_unit: bool = False, counter: bool = False) -> int | None:
    """Where a table point is served, or None when it has no register."""
    for reg in modbus_map().blocks[_scope_of(point)]:
        if reg.spec is not None and reg.counter == counter and _same(reg, point):
            return register_address(reg, point.slot, point.connector_id, per_unit=per_unit)
    return None


def _scope_of(point: Point) -> Scope:
    kind = point.spec.kind
    if kind == "site":
        return Scope.SITE
    if kind in ("connector", "meter"):
        return Scope.CONNECTOR
    for reg in modbus_map().blocks[Scope.EXTRA]:
        if reg.spec is not None and reg.spec.key == point.spec.key:
            return Scope.EXTRA
    return Scope.CHARGER


def _same(reg: Register, point: Point) -> bool:
    """The register shows this point: the same identity (BACnet object type and instance)."""
    template = reg.point(point.charger_id, point.slot, point.connector_id)
    return template is not None and template.uid == point.uid


@dataclass(frozen=True)
class Location:
    """A register in one concrete block (site, a slot's area, a slot's connector)."""

    register: Register
    address: int
    slot: int | None = None
    connector_id: int | None = None


def slot_locations(slot: int, *, per_unit: bool = False) -> Iterator[Location]:
    """Every register of a slot: charger area, connectors 0..MAX_CONNECTOR_ID, extension area."""
    regs = modbus_map().blocks
    for reg in regs[Scope.CHARGER]:
        yield Location(reg, register_address(reg, slot, per_unit=per_unit), slot, None)
    for connector_id in range(registers.MAX_CONNECTOR_ID + 1):
        for reg in regs[Scope.CONNECTOR]:
            yield Location(reg, register_address(reg, slot, connector_id, per_unit=per_unit), slot, connector_id)
    for reg in regs[Scope.EXTRA]:
        yield Location(reg, register_address(reg, slot, per_unit=per_unit), slot, None)


def site_locations() -> Iterator[Location]:
    for reg in modbus_map().blocks[Scope.SITE]:
        yield Location(reg, register_address(reg))


def locate(address: int, *, per_unit: bool = False) -> tuple[Scope, int | None, int | None, int]:
    """(scope, slot, connector_id, offset in its area) for an address; the inverse of the above.

    With per_unit, the slot is the unit id's and the answer's slot is None.
    """
    if not 0 <= address < registers.ADDRESS_SPACE:
        raise LayoutError(f"address {address} is outside the Modbus address space")
    if address < registers.CHARGER_BASE:
        return Scope.SITE, None, None, address - registers.SITE_BASE
    extra = registers.UNIT_EXTRA_BASE if per_unit else registers.EXTRA_BASE
    if address >= extra:
        rel = address - extra
        slot = None if per_unit else rel // registers.EXTRA_STRIDE + 1
        if (per_unit and rel >= registers.EXTRA_STRIDE) or (slot is not None and slot > registers.MAX_FLAT_SLOT):
            raise LayoutError(f"address {address} is beyond the map")
        return Scope.EXTRA, slot, None, rel % registers.EXTRA_STRIDE
    rel = address - registers.CHARGER_BASE
    slot = None if per_unit else rel // registers.CHARGER_STRIDE + 1
    rel %= registers.CHARGER_STRIDE
    if rel < registers.CHARGER_AREA:
        return Scope.CHARGER, slot, None, rel
    rel -= registers.CHARGER_AREA
    return Scope.CONNECTOR, slot, rel // registers.CONNECTOR_STRIDE, rel % registers.CONNECTOR_STRIDE
