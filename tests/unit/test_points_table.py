"""The point table: stable numbering, names, enum maps and write validation (issue 5).

Table-level tests on plain objects: no BACnet, no sockets (style guide: two tiers).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from gateway.model.station import (
    CONNECTOR_STATUSES,
    ERROR_CODES,
    ConfigKey,
    MeterKey,
    MeterReading,
    Registry,
)
from points.catalog import (
    CONNECTOR_SPECS,
    MEASURANDS,
    STANDARD_CONFIG_KEYS,
    UNITS,
)
from points.commands import PointWrites
from points.table import (
    CHARGER_SPECS,
    MAX_SLOT,
    SITE_SPECS,
    PointTable,
    WriteRefused,
    object_instance,
    standard_meter_index,
)


def build(order: list[str], slots: dict[str, int], offsets: dict[str, str] | None = None,
          key_order: list[str] | None = None) -> tuple[Registry, PointTable, dict[str, str]]:
    """A registry with chargers added in `order`, reporting keys and meters in `key_order`."""
    registry, table = Registry(clock=lambda: 1000.0), PointTable(clock=lambda: 1000.0)
    saved: dict[str, str] = dict(offsets or {})
    table.load(saved)
    table.persist = saved.update
    registry.subscribe(lambda e: table.handle(e, registry))
    table.sync(registry)
    keys = key_order or ["HeartbeatInterval", "VendorB", "VendorA", "MeterValueSampleInterval"]
    for charger_id in order:
        s = registry.ensure(charger_id)
        registry.update_station(s, slot=slots[charger_id], online=True)
        for key in keys:
            registry.set_config(s, ConfigKey(key, "1", readonly=key == "VendorA"))
        for measurand, location in (("Power.Active.Import", "Outlet"), ("Vendor.Thing", "Outlet"),
                                    ("Energy.Active.Import.Register", "Inlet")):
            registry.record_reading(s, MeterKey(1, measurand, "", location), MeterReading(1.0, "W", 1))
    return registry, table, saved


def identities(table: PointTable) -> dict[str, tuple[str, int]]:
    return {p.name: p.uid for p in table.points()}


def test_every_status_and_error_code_has_a_state_text():
    """Appendix 1 and 2 names are the state texts, 1-based like BACnet present-value."""
    status = next(s for s in CONNECTOR_SPECS if s.key == "Status")
    error = next(s for s in CONNECTOR_SPECS if s.key == "ErrorCode")
    assert status.states == CONNECTOR_STATUSES and len(status.states) == 9
    assert error.states == ERROR_CODES and "NoError" in error.states


def test_instance_is_slot_block_plus_local_index():
    assert object_instance(1, 500) == 10_500
    assert object_instance(0, 1) == 1
    assert object_instance(MAX_SLOT, 9_999) <= 4_194_302
    with pytest.raises(ValueError):
        object_instance(MAX_SLOT + 1, 0)
    with pytest.raises(ValueError):
        object_instance(1, 10_000)


def test_fixed_offsets_never_move():
    """Pinned: changing these renumbers every BMS mapping in the field."""
    assert STANDARD_CONFIG_KEYS.index("HeartbeatInterval") == 9
    assert MEASURANDS.index("Power.Active.Import") == 13
    assert standard_meter_index("Power.Active.Import", "", "Outlet") == 243
    assert standard_meter_index("Current.Import", "L2", "Outlet") == 100 + 11 + 2
    assert standard_meter_index("Power.Active.Import", "", "Inlet") is None
    assert [(s.key, s.offset) for s in SITE_SPECS][:2] == [("PowerLimit", 1), ("CurrentLimit", 2)]
    assert [(s.key, s.offset) for s in CHARGER_SPECS][:3] == [("Online", 0), ("Registration", 1), ("Vendor", 2)]
    assert [(s.key, s.offset) for s in CONNECTOR_SPECS][:2] == [("Status", 0), ("ErrorCode", 1)]


def test_points_are_named_after_slot_connector_and_measurand():
    _, table, _ = build(["A"], {"A": 1})
    names = set(identities(table))
    assert {"CP1-C1-Status", "CP1-C1-Power-Active-Import", "CP1-Online", "Site-PowerLimit",
            "CP1-Cfg-HeartbeatInterval", "CP1-Cfg-HeartbeatInterval-Result",
            "CP1-C1-Energy-Active-Import-Register-Inlet"} <= names
    assert table.get("CP1-C1-Status").uid == ("multi-state-input", 10_500)
    assert table.get("CP1-C1-Power-Active-Import").uid == ("analog-input", 10_743)


def test_names_and_identities_are_unique_and_safe():
    _, table, _ = build(["A", "B"], {"A": 1, "B": 2})
    pts = table.points()
    assert len({p.name for p in pts}) == len(pts)
    assert len({p.uid for p in pts}) == len(pts)
    assert len({p.instance for p in pts}) == len(pts)  # unique even across object types
    assert all(re.fullmatch(r"[A-Za-z0-9-]+", p.name) for p in pts)


def test_restart_with_other_order_keeps_every_instance():
    """Chargers added in another order, keys reported in another order: nothing renumbers."""
    _, first, saved = build(["A", "B"], {"A": 1, "B": 2})
    _, second, _ = build(["B", "A"], {"A": 1, "B": 2}, offsets=saved,
                         key_order=["VendorA", "MeterValueSampleInterval", "VendorB", "HeartbeatInterval"])
    assert identities(second) == identities(first)
    assert saved["config:VendorB"] == "100" and saved["config:VendorA"] == "101"


def test_removing_a_charger_does_not_move_the_others():
    registry, table, _ = build(["A", "B", "C"], {"A": 1, "B": 2, "C": 3})
    before = {n: u for n, u in identities(table).items() if n.startswith("CP3")}
    registry.update_station(registry.get("B"), slot=None)
    after = identities(table)
    assert not any(n.startswith("CP2") for n in after)
    assert {n: u for n, u in after.items() if n.startswith("CP3")} == before


def test_guests_get_no_points():
    registry, table, _ = build([], {})
    s = registry.ensure("GUEST")
    registry.update_connector(s, 1, status="Charging")
    assert not any(p.charger_id == "GUEST" for p in table.points())


def test_values_and_staleness_follow_the_model():
    registry, table, _ = build(["A"], {"A": 1})
    s = registry.get("A")
    registry.update_connector(s, 1, status="Charging", error_code="GroundFailure")
    assert table.read(table.get("CP1-C1-Status")) == 3
    assert table.read(table.get("CP1-C1-ErrorCode")) == ERROR_CODES.index("GroundFailure") + 1
    assert table.read(table.get("CP1-C1-Power-Active-Import")) == 1.0
    assert table.reliable(table.get("CP1-C1-Status"))
    registry.set_online(s, False, "lost")
    assert not table.reliable(table.get("CP1-C1-Status"))
    assert table.reliable(table.get("CP1-Online")) and table.read(table.get("CP1-Online")) is False


def test_meter_readings_are_shown_in_the_point_unit():
    registry, table, _ = build(["A"], {"A": 1})
    s = registry.get("A")
    registry.record_reading(s, MeterKey(1, "Energy.Active.Import.Register"), MeterReading(12345.0, "Wh", 2))
    registry.record_reading(s, MeterKey(1, "Power.Active.Import"), MeterReading(7.2, "kW", 2))
    assert table.read(table.get("CP1-C1-Energy-Active-Import-Register")) == 12.345
    assert table.read(table.get("CP1-C1-Power-Active-Import")) == 7200.0
    assert all(p.spec.units in UNITS for p in table.points())


def test_a_new_point_is_announced_to_listeners():
    registry, table, _ = build(["A"], {"A": 1})
    seen: list[str] = []
    table.added.append(lambda pts: seen.extend(p.name for p in pts))
    registry.record_reading(registry.get("A"), MeterKey(1, "Voltage", "L1-N"), MeterReading(230.0, "V", 3))
    assert seen == ["CP1-C1-Voltage-L1-N"]


def test_a_new_chargers_configuration_read_is_one_event_one_offset_write_and_one_announcement():
    """200 wallboxes connecting for the first time (issue 12): each reads ~40 keys after its
    boot. The read reaches the table as ONE event, its new vendor-key offsets are persisted in
    ONE write, and its new points are announced ONCE (not once per key)."""
    registry, table = Registry(clock=lambda: 1000.0), PointTable(clock=lambda: 1000.0)
    events: list[Any] = []
    persisted: list[dict[str, str]] = []
    announced: list[list[str]] = []
    registry.subscribe(events.append)
    registry.subscribe(lambda e: table.handle(e, registry))
    table.persist = persisted.append
    table.added.append(lambda pts: announced.append([p.name for p in pts]))
    station = registry.ensure("WALLBOX")
    registry.update_station(station, slot=1, online=True)
    events.clear(), announced.clear()
    registry.set_configs(station, [ConfigKey("HeartbeatInterval", "60", readonly=False),
                                   ConfigKey("VendorLed", "on", readonly=False),
                                   ConfigKey("VendorSerial", "X1", readonly=True)])
    assert [e.key for e in events] == [("HeartbeatInterval", "VendorLed", "VendorSerial")]
    assert persisted == [{"config:VendorLed": "100", "config:VendorSerial": "101"}]
    assert announced == [["CP1-Cfg-HeartbeatInterval", "CP1-Cfg-HeartbeatInterval-Result", "CP1-Cfg-VendorLed",
                          "CP1-Cfg-VendorLed-Result", "CP1-Cfg-VendorSerial"]]


def test_write_validation_refuses_before_anything_runs():
    _, table, _ = build(["A"], {"A": 1})
    limit = table.get("Site-PowerLimit").spec
    with pytest.raises(WriteRefused) as exc:
        limit.coerce(20000)
    assert exc.value.code == "value-out-of-range"
    assert limit.coerce(33.29999923706055) == 33.3
    status = table.get("CP1-C1-Availability").spec
    assert status.coerce("Inoperative") == 2
    with pytest.raises(WriteRefused):
        status.coerce(3)


async def test_write_runs_the_writer_and_shows_the_result():
    _, table, _ = build(["A"], {"A": 1})

    async def change(point, value):
        return "Accepted" if value != "bad" else (_ for _ in ()).throw(WriteRefused("no", "rejected"))
    table.writer = PointWrites(change)
    cfg = table.get("CP1-Cfg-HeartbeatInterval")
    assert await table.write(cfg, "60") == "Accepted"
    assert table.read(table.get("CP1-Cfg-HeartbeatInterval-Result")) == "Accepted"
    with pytest.raises(WriteRefused):
        await table.write(cfg, "bad")
    assert table.read(table.get("CP1-Cfg-HeartbeatInterval-Result")) == "Refused"  # a short result word; the reason is logged
    with pytest.raises(WriteRefused) as exc:
        await table.write(table.get("CP1-C1-Status"), 1)
    assert exc.value.code == "write-access-denied"


def test_table_and_catalog_import_no_protocol_library():
    """Both BACnet and Modbus build on the table; it must not pull either in (style guide)."""
    import ast
    from pathlib import Path
    root = Path(__file__).resolve().parents[2]
    for module in ("points/table.py", "points/table_values.py", "points/table_writes.py", "points/catalog.py",
                   "points/catalog_modbus.py", "points/spec.py", "points/sources.py"):
        tree = ast.parse((root / module).read_text())
        imported = {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        imported |= {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        assert imported & {"BAC0", "bacpypes3", "pymodbus", "websockets", "sqlite_utils", "aiohttp"} == set()


def test_every_point_with_a_register_has_the_same_name_in_the_register_map():
    """One point table, two faces (issue 14): the register map names what BACnet names; it used
    to call CP1-C1-Power-Active-Import `CP1-C1-meter:Power.Active.Import`."""
    from points.modbus.layout import point_address, site_locations, slot_locations

    registry, table, _saved = build(["CP-A"], {"CP-A": 3})
    registry.update_connector(registry.get("CP-A"), 1, status="Charging")
    by_address = {loc.address: loc.register.name(loc.slot or 0, loc.connector_id)
                  for loc in [*site_locations(), *slot_locations(3)]}
    served = [(p, point_address(p)) for p in table.points()]
    served = [(p, a) for p, a in served if a is not None]
    assert len(served) > 40
    assert all(by_address[address] == p.name for p, address in served)


def test_the_first_connection_benchmark_builds_each_chargers_points_once():
    """bench/table_first_connection.py measures what this table does for new chargers; it must
    keep building the same points (a charger block with its configuration keys) to mean anything."""
    from bench.table_first_connection import first_connections

    result = first_connections(2)
    assert result["config_keys"] > 30
    assert result["points"] > 2 * (len(CHARGER_SPECS) + result["config_keys"])


# --- the points one MeterValues changes (issue 17: looked up, not filtered) ---------------------
def _changed_names(table: PointTable) -> list[str]:
    seen: list[str] = []
    table.changed.append(lambda pts: seen.extend(p.name for p in pts))
    return seen


def test_a_meter_values_changes_its_keys_points_and_its_connectors_session_points_only():
    registry, table, _ = build(["A"], {"A": 1})
    s = registry.get("A")
    registry.record_reading(s, MeterKey(2, "Power.Active.Import", "", "Outlet"), MeterReading(1.0, "W", 2))
    seen = _changed_names(table)
    power = MeterKey(1, "Power.Active.Import", "", "Outlet")
    registry.record_readings(s, 1, 3, [(power, 2.0, "W", "Sample.Periodic"), (power, 3.0, "W", "Sample.Periodic")])
    assert sorted(seen) == ["CP1-C1-Power-Active-Import", "CP1-C1-SessionDuration", "CP1-C1-SessionEnergy"]


def test_points_removed_with_a_slot_are_no_longer_changed_and_new_ones_are():
    registry, table, _ = build(["A"], {"A": 1})
    s = registry.get("A")
    registry.update_station(s, slot=2)  # every point rebuilt in slot 2
    seen = _changed_names(table)
    registry.record_reading(s, MeterKey(1, "Power.Active.Import", "", "Outlet"), MeterReading(4.0, "W", 5))
    assert sorted(seen) == ["CP2-C1-Power-Active-Import", "CP2-C1-SessionDuration", "CP2-C1-SessionEnergy"]
    assert all(table.has(p) for p in table.points_of("A"))


def test_a_guests_messages_build_and_tell_nothing():
    registry, table, _ = build([], {})
    added, seen = [], _changed_names(table)
    table.added.append(added.extend)
    g = registry.ensure("GUEST")
    for n in range(3):
        registry.record_reading(g, MeterKey(1, "Power.Active.Import"), MeterReading(float(n), "W", n))
        registry.update_connector(g, 1, status="Charging")
    assert added == [] and seen == [] and table.points_of("GUEST") == []
