"""Register addresses: one function per identity, stable per slot and connector (notes 3.4)."""

from __future__ import annotations

import pytest

from points.catalog import CHARGER_SPECS, CONNECTOR_SPECS, PointSpec
from points.modbus.layout import (
    LayoutError,
    charger_block_base,
    connector_area_base,
    locate,
    point_address,
    site_locations,
    slot_locations,
)
from points.modbus.registers import (
    ADDRESS_SPACE,
    CHARGER_AREA,
    CHARGER_BASE,
    CHARGER_STRIDE,
    CONNECTOR_STRIDE,
    EXTRA_BASE,
    EXTRA_STRIDE,
    MAX_CONNECTOR_ID,
    MAX_FLAT_SLOT,
    Scope,
    _packed,
    modbus_map,
)
from points.table import Point


def test_blocks_are_fixed_size_and_slot_one_starts_at_the_charger_base():
    assert charger_block_base(1) == CHARGER_BASE
    assert charger_block_base(3) == CHARGER_BASE + 2 * CHARGER_STRIDE
    assert connector_area_base(2, 0) == CHARGER_BASE + CHARGER_STRIDE + CHARGER_AREA
    assert connector_area_base(2, 2) - connector_area_base(2, 1) == CONNECTOR_STRIDE
    assert connector_area_base(2, MAX_CONNECTOR_ID) + CONNECTOR_STRIDE == charger_block_base(3)
    with pytest.raises(LayoutError):
        connector_area_base(2, MAX_CONNECTOR_ID + 1)


def test_unit_id_addressing_puts_every_slot_where_slot_one_is():
    assert charger_block_base(57, per_unit=True) == charger_block_base(1)


def test_the_flat_slots_and_their_extension_areas_fit_the_16_bit_address_space():
    assert charger_block_base(MAX_FLAT_SLOT) + CHARGER_STRIDE <= EXTRA_BASE
    assert EXTRA_BASE + MAX_FLAT_SLOT * EXTRA_STRIDE <= ADDRESS_SPACE
    with pytest.raises(LayoutError):
        charger_block_base(MAX_FLAT_SLOT + 1)


def test_catalog_points_are_packed_in_catalog_order_after_the_header():
    regs = [r for r in modbus_map().blocks[Scope.CONNECTOR] if r.spec is not None and r.spec.kind == "connector"]
    served = [r.spec.key for r in regs if not r.counter]
    in_catalog = [s.key for s in CONNECTOR_SPECS if s.key in served]
    assert sorted(served, key=lambda k: next(r.offset for r in regs if r.spec.key == k)) == in_catalog
    assert min(r.offset for r in regs) == 10


def test_a_point_appended_to_the_catalog_moves_no_existing_register():
    before = _packed("connector", CONNECTOR_SPECS)
    after = _packed("connector", CONNECTOR_SPECS + (PointSpec("New", "connector", 99, "analog-input", "float32"),))
    assert [(r.spec.key, r.offset, r.counter) for r in after[:len(before)]] == \
        [(r.spec.key, r.offset, r.counter) for r in before]


def test_charger_points_beyond_the_charger_area_go_to_its_extension_area():
    extra = {r.spec.key for r in modbus_map().blocks[Scope.EXTRA] if r.spec is not None}
    assert {"ICCID", "IMSI", "MeterType", "MeterSerial"} <= extra


def test_points_that_do_not_fit_the_map_are_a_layout_error():
    too_many = CHARGER_SPECS + tuple(PointSpec(f"s{i}", "charger", 100 + i, "characterstring-value", "string")
                                     for i in range(1))
    _packed("charger", too_many)  # no registers for unlisted strings: fine
    floats = tuple(PointSpec(f"f{i}", "charger", 100 + i, "analog-input", "float32") for i in range(60))
    with pytest.raises(LayoutError):
        _packed("charger", CHARGER_SPECS + floats)


@pytest.mark.parametrize("per_unit", [False, True])
def test_locate_inverts_every_address_of_a_slot(per_unit):
    for loc in slot_locations(5, per_unit=per_unit):
        scope, slot, connector_id, offset = locate(loc.address, per_unit=per_unit)
        assert (scope, offset) == (loc.register.scope, loc.register.offset)
        assert connector_id == (loc.connector_id if scope is Scope.CONNECTOR else None)
        assert slot == (None if per_unit else 5)


def test_site_registers_sit_below_the_charger_base():
    assert all(loc.address < CHARGER_BASE for loc in site_locations())
    assert locate(0) == (Scope.SITE, None, None, 0)


def test_a_table_point_has_one_address_and_the_name_bacnet_gives_it():
    status = Point(next(s for s in CONNECTOR_SPECS if s.key == "Status"), "CP7", 7, 1)
    address = point_address(status)
    assert address == connector_area_base(7, 1) + 10
    loc = next(loc for loc in slot_locations(7) if loc.address == address)
    assert loc.register.name(7, 1) == status.name == "CP7-C1-Status"


@pytest.mark.parametrize("module", ["points/modbus/codec.py", "points/modbus/layout.py", "points/modbus/registers.py"])
def test_encodings_and_addresses_import_no_io_library(module):
    """Register addresses and encodings are plain functions (style guide: a core without I/O)."""
    import ast
    from pathlib import Path

    tree = ast.parse((Path(__file__).resolve().parents[2] / module).read_text())
    imported = {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    imported |= {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert imported & {"pymodbus", "asyncio", "websockets", "BAC0", "bacpypes3", "sqlite3"} == set()
