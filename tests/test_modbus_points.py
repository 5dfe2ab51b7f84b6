"""The point table as registers: every point placed, enums mapped, documented addresses pinned.

Table-level tests on plain objects (no sockets); the addresses here are the ones docs/modbus.md
prints, so an integrator's mapping breaks only with a new map version.
"""

from __future__ import annotations

import pytest

from points.catalog import CHARGER_SPECS, CONNECTOR_SPECS, MODBUS_STRING_REGISTERS, SITE_SPECS
from points.export.register_map import layout
from points.modbus.codec import RegType
from points.modbus.fields import CHARGER_ORDER, CONNECTOR_ORDER, SITE_ORDER, reg_type_of
from points.modbus.layout import MAP_VERSION, Scope, charger_block_base, connector_area_base


@pytest.mark.parametrize("specs, order", [(SITE_SPECS, SITE_ORDER), (CHARGER_SPECS, CHARGER_ORDER),
                                          (CONNECTOR_SPECS, CONNECTOR_ORDER)])
def test_every_table_point_has_a_fixed_place_or_is_text_left_to_bacnet(specs, order):
    served = {s.key for s in specs if reg_type_of(s) is not None}
    not_served = {s.key for s in specs if reg_type_of(s) is None}
    assert served == set(order), "append new points to the placement list in points/modbus_points.py"
    assert all((s.modbus_type == "string" and s.key not in MODBUS_STRING_REGISTERS) or not s.modbus_type
               for s in specs if s.key in not_served)


def test_every_state_of_every_enum_has_a_distinct_code_and_flags_are_zero_one():
    for block in layout().blocks.values():
        for placed in block.fields:
            spec = placed.spec
            if spec.reg_type is RegType.ENUM16:
                codes = dict(spec.codes)
                assert sorted(codes.values()) == list(range(1, len(codes) + 1)), spec.field_id
            if spec.reg_type is RegType.BOOL16 and spec.codes:
                assert sorted(code for _name, code in spec.codes) == [0, 1], spec.field_id


def _address(scope: Scope, field_id: str, slot: int = 1, connector_id: int = 1) -> int:
    placed = layout().blocks[scope].get(field_id)
    assert placed is not None, field_id
    if scope is Scope.SITE:
        return placed.offset
    if scope is Scope.CHARGER:
        return charger_block_base(slot) + placed.offset
    return connector_area_base(slot, connector_id) + placed.offset


def test_documented_addresses_of_map_version_1():
    assert MAP_VERSION == 1
    pinned = {
        (Scope.SITE, "PowerLimit"): 10, (Scope.SITE, "CurrentLimit"): 12,
        (Scope.CHARGER, "Online"): 1010, (Scope.CHARGER, "Registration"): 1011,
        (Scope.CHARGER, "config:HeartbeatInterval"): 1118,
        (Scope.CONNECTOR, "Status"): 1410, (Scope.CONNECTOR, "ErrorCode"): 1411,
        (Scope.CONNECTOR, "Availability"): 1420, (Scope.CONNECTOR, "meter:Power.Active.Import"): 1510,
        (Scope.CONNECTOR, "meter:Energy.Active.Import.Register"): 1512,
        (Scope.CONNECTOR, "meter:Energy.Active.Import.Register#u32"): 1514,
    }
    assert {key: _address(*key) for key in pinned} == pinned


def test_a_connector_meter_area_fits_one_read_of_125_registers():
    meters = [p for p in layout().blocks[Scope.CONNECTOR].fields if p.spec.key.startswith("meter:")]
    assert max(p.end for p in meters) - min(p.offset for p in meters) <= 125


def test_energy_is_served_as_float_kwh_and_as_a_uint32_wh_counter():
    block = layout().blocks[Scope.CONNECTOR]
    kwh, wh = block.get("meter:Energy.Active.Import.Register"), block.get("meter:Energy.Active.Import.Register#u32")
    assert (kwh.spec.reg_type, kwh.spec.units) == (RegType.FLOAT32, "kWh")
    assert (wh.spec.reg_type, wh.spec.units) == (RegType.UINT32, "Wh")
    session = block.get("SessionEnergy#u32")
    assert session is not None and session.spec.reg_type is RegType.UINT32
