"""Register addresses: one function per identity, stable per slot and connector (notes 3.4)."""

from __future__ import annotations

import pytest

from points.modbus.codec import RegType
from points.modbus.layout import (
    CHARGER_AREA,
    CHARGER_BASE,
    CHARGER_STRIDE,
    CONNECTOR_STRIDE,
    HEADER_SIZE,
    MAX_CONNECTOR_ID,
    MAX_FLAT_SLOT,
    FieldSpec,
    LayoutError,
    RegisterLayout,
    Scope,
    charger_block_base,
    connector_area_base,
    pack,
)

SPECS = [
    FieldSpec("status", Scope.CONNECTOR, 0, RegType.ENUM16),
    FieldSpec("power_w", Scope.CONNECTOR, 1, RegType.FLOAT32),
    FieldSpec("energy_wh", Scope.CONNECTOR, 2, RegType.FLOAT32),
    FieldSpec("energy_wh", Scope.CONNECTOR, 2, RegType.UINT32, encoding="u32"),
    FieldSpec("meter_a", Scope.CONNECTOR, 3, RegType.FLOAT32, offset=110),
    FieldSpec("vendor", Scope.CHARGER, 0, RegType.STRING, length=10),
    FieldSpec("site_limit_kw", Scope.SITE, 0, RegType.FLOAT32, writable=True),
]


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


def test_the_last_flat_slot_fits_the_16_bit_address_space():
    assert charger_block_base(MAX_FLAT_SLOT) + CHARGER_STRIDE <= 65536
    with pytest.raises(LayoutError):
        charger_block_base(MAX_FLAT_SLOT + 1)


def test_fields_follow_the_header_in_placement_order_or_sit_at_their_fixed_offset():
    block = pack(SPECS, Scope.CONNECTOR)
    offsets = {p.spec.field_id: p.offset for p in block.fields if not p.spec.key.startswith("header.")}
    assert offsets == {"status": HEADER_SIZE, "power_w": HEADER_SIZE + 1, "energy_wh": HEADER_SIZE + 3,
                       "energy_wh#u32": HEADER_SIZE + 5, "meter_a": 110}


def test_a_point_appended_later_moves_no_existing_register():
    before = pack(SPECS, Scope.CONNECTOR)
    after = pack(SPECS + [FieldSpec("soc", Scope.CONNECTOR, 9, RegType.FLOAT32)], Scope.CONNECTOR)
    for placed in before.fields:
        assert after.get(placed.spec.field_id).offset == placed.offset


def test_overlapping_fixed_offsets_are_a_layout_error():
    with pytest.raises(LayoutError):
        pack(SPECS + [FieldSpec("meter_b", Scope.CONNECTOR, 4, RegType.FLOAT32, offset=111)], Scope.CONNECTOR)


def test_fields_that_do_not_fit_their_block_are_a_layout_error():
    too_many = [FieldSpec(f"s{i}", Scope.CONNECTOR, i, RegType.STRING, length=40) for i in range(5)]
    with pytest.raises(LayoutError):
        pack(too_many, Scope.CONNECTOR)


def test_duplicate_fields_are_refused():
    with pytest.raises(LayoutError):
        pack(SPECS + [SPECS[0]], Scope.CONNECTOR)


@pytest.mark.parametrize("per_unit", [False, True])
def test_locate_inverts_every_address_of_a_slot(per_unit):
    layout = RegisterLayout(SPECS)
    for loc in layout.slot_locations(5, per_unit=per_unit):
        scope, slot, connector_id, offset = layout.locate(loc.address, per_unit=per_unit)
        assert (scope, offset) == (loc.spec.scope, loc.placed.offset)
        assert connector_id == (0 if scope is Scope.CHARGER else loc.connector_id)
        assert slot == (None if per_unit else 5)


def test_site_fields_sit_below_the_charger_base():
    layout = RegisterLayout(SPECS)
    assert all(loc.address < CHARGER_BASE for loc in layout.site())
    assert layout.locate(0) == (Scope.SITE, None, None, 0)


@pytest.mark.parametrize("module", ["points/modbus/codec.py", "points/modbus/layout.py"])
def test_encodings_and_addresses_import_no_io_library(module):
    """Register addresses and encodings are plain functions (style guide: a core without I/O)."""
    import ast
    from pathlib import Path

    tree = ast.parse((Path(__file__).resolve().parent.parent / module).read_text())
    imported = {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    imported |= {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert imported & {"pymodbus", "asyncio", "websockets", "BAC0", "bacpypes3", "sqlite3"} == set()
