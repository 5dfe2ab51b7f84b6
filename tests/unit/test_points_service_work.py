"""The point service's work per event does not grow with the number of other chargers (issue 12):
sorting every point on a slot change or on each time-dependent refresh held the loop with 200+
chargers. Counted on plain objects (points handed to the protocols, calls to `points()`), not timed.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from gateway.model.station import Registry
from points.service import PointsService
from points.table import Point, PointTable


class CountingTable(PointTable):
    """The real table, counting walks over every point."""

    walks = 0

    def points(self) -> list[Point]:
        self.walks += 1
        return super().points()


def gateway_points(chargers: int) -> tuple[Registry, CountingTable, PointsService, list[list[Point]]]:
    settings = SimpleNamespace(bacnet=SimpleNamespace(enabled=True),
                               modbus=SimpleNamespace(enabled=True, unit_id_per_charger=False))
    registry, table = Registry(clock=lambda: 1000.0), CountingTable(clock=lambda: 1000.0)
    service = PointsService(settings, registry, None, table, lambda *a: None, None, None)  # type: ignore[arg-type]
    registry.subscribe(service.on_registry_change)
    table.sync(registry)
    for n in range(1, chargers + 1):
        registry.update_station(registry.ensure(f"CP{n}"), slot=n, online=True)
    told: list[list[Point]] = []
    table.changed.append(told.append)
    table.walks = 0
    return registry, table, service, told


def site_counts(table: PointTable) -> Any:
    return table.state.not_exposed


def test_a_slot_change_touches_that_charger_and_the_site_counts_only():
    touched = {}
    for chargers in (10, 60):
        registry, table, _, told = gateway_points(chargers)
        registry.update_station(registry.get("CP3"), slot=70)  # past the 64 slots of the flat Modbus map
        assert site_counts(table) == {"bacnet": 0, "modbus": 1}
        assert table.walks == 0
        touched[chargers] = sum(len(batch) for batch in told)
        assert any(p.spec.key == "Chargers-NotOnModbus" for batch in told for p in batch)
        told.clear()
        registry.update_station(registry.get("CP3"), slot=None)  # removed from the device database
        assert site_counts(table) == {"bacnet": 0, "modbus": 0}
        assert table.walks == 0
    assert touched[10] == touched[60]


def test_the_time_dependent_refresh_touches_only_time_dependent_points():
    registry, table, service, told = gateway_points(30)
    dynamic = [p for p in table.points() if p.spec.dynamic]
    table.walks = 0
    service.tell_dynamic()
    assert table.walks == 0
    assert sorted(p.uid for p in told[0]) == sorted(p.uid for p in dynamic)
    registry.update_station(registry.get("CP1"), slot=None)  # its points go, and with them its dynamic ones
    told.clear()
    service.tell_dynamic()
    assert {p.charger_id for p in told[0]} == {f"CP{n}" for n in range(2, 31)}
