"""The point table as registers: every point placed, enums mapped, documented addresses pinned.

Table-level tests on plain objects (no sockets); the addresses here are the ones docs/modbus.md
prints, so an integrator's mapping breaks only with a new map version.
"""

from __future__ import annotations

import pytest

from points.catalog import (
    CHARGER_SPECS,
    CONNECTOR_SPECS,
    MODBUS_STRING_REGISTERS,
    RESULT_TEXT_MAX,
    SITE_SPECS,
)
from points.modbus.codec import RegType
from points.modbus.layout import site_locations, slot_locations
from points.modbus.registers import MAP_VERSION, Scope, modbus_map, reg_type_of


@pytest.mark.parametrize("specs", [SITE_SPECS, CHARGER_SPECS, CONNECTOR_SPECS])
def test_every_catalog_point_has_a_register_or_is_text_left_to_bacnet(specs):
    placed = {(r.spec.kind, r.spec.key) for regs in modbus_map().blocks.values() for r in regs if r.spec}
    for spec in specs:
        if reg_type_of(spec) is not None:
            assert (spec.kind, spec.key) in placed, spec.key
        else:
            assert (spec.modbus_type == "string" and spec.key not in MODBUS_STRING_REGISTERS) or not spec.modbus_type


def test_every_state_of_every_enum_has_a_distinct_code_and_flags_are_zero_one():
    for regs in modbus_map().blocks.values():
        for reg in regs:
            if reg.reg_type is RegType.ENUM16:
                codes = dict(reg.codes)
                assert sorted(codes.values()) == list(range(1, len(codes) + 1)), reg.name()
            if reg.reg_type is RegType.BOOL16 and reg.codes:
                assert sorted(code for _name, code in reg.codes) == [0, 1], reg.name()


def _addresses(slot: int = 1) -> dict[str, int]:
    found = {loc.register.name(0, None): loc.address for loc in site_locations()}
    found.update({loc.register.name(slot, loc.connector_id): loc.address for loc in slot_locations(slot)})
    return found


def test_addresses_published_with_map_version_1_did_not_move():
    assert MAP_VERSION == 2  # version 2 only added registers (docs/modbus.md, "Map versions")
    pinned = {
        "Site-PowerLimit": 10, "Site-CurrentLimit": 12, "CP1-Online": 1010, "CP1-Registration": 1011,
        "CP1-Reset-Result": 1083, "CP1-Cfg-HeartbeatInterval": 1118, "CP1-C1-Status": 1410,
        "CP1-C1-ErrorCode": 1411, "CP1-C1-Availability": 1420, "CP1-C1-SC-Applied": 1502,
        "CP1-C1-Power-Active-Import": 1510, "CP1-C1-Energy-Active-Import-Register": 1512,
        "CP1-C1-Energy-Active-Import-Register-Wh": 1514, "CP1-C1-Power-Factor": 1560,
    }
    found = _addresses()
    assert {name: found[name] for name in pinned} == pinned


def test_new_points_have_registers_in_the_free_tails_and_the_extension_area():
    found = _addresses(2)
    assert found["CP2-C1-LastUpdate"] == 2400 + 162
    assert found["CP2-ICCID"] == 61000 + 75
    assert found["Site-Header-ChargersNotServed"] == 9


def test_result_registers_hold_every_result_text():
    """Issue 14 item 7: "Refused: charger" was a cut text; outcomes are short words now."""
    for key, registers in MODBUS_STRING_REGISTERS.items():
        if key.endswith("-Result"):
            assert 2 * registers >= RESULT_TEXT_MAX, key


def test_a_connector_meter_area_fits_one_read_of_125_registers():
    meters = [r for r in modbus_map().blocks[Scope.CONNECTOR] if r.spec is not None and r.spec.kind == "meter"]
    assert max(r.end for r in meters) - min(r.offset for r in meters) <= 125


def test_energy_is_served_as_float_kwh_and_as_a_uint32_wh_counter():
    regs = {r.name(1, 1): r for r in modbus_map().blocks[Scope.CONNECTOR]}
    kwh, wh = regs["CP1-C1-Energy-Active-Import-Register"], regs["CP1-C1-Energy-Active-Import-Register-Wh"]
    assert (kwh.reg_type, kwh.units) == (RegType.FLOAT32, "kWh")
    assert (wh.reg_type, wh.units) == (RegType.UINT32, "Wh")
    assert regs["CP1-C1-SessionEnergy-Wh"].reg_type is RegType.UINT32
