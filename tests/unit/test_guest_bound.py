"""The discovery list's bound (registration.max_guests) on the plain registry: connected guests
are never dropped, idle ones go oldest first, and a storm of connected guests does not make each
connect look at every station again (that was quadratic in a 10,000-charger storm)."""

from __future__ import annotations

from gateway.model.station import Registry


def _connect(registry: Registry, charger_id: str) -> None:
    registry.set_online(registry.ensure(charger_id), True)


def test_connected_guests_stay_and_idle_ones_go_oldest_first() -> None:
    now = [0.0]
    registry = Registry(lambda: now[0])
    for i in range(5):
        now[0] = float(i)
        _connect(registry, f"G{i}")
    assert registry.drop_oldest_guests(3) == []  # all connected: none may go
    now[0] = 10.0
    registry.set_online(registry.stations["G3"], False)
    registry.set_online(registry.stations["G1"], False)
    assert registry.drop_oldest_guests(3) == ["G1", "G3"]
    assert sorted(registry.stations) == ["G0", "G2", "G4"]


def test_once_no_guest_is_idle_a_connect_looks_at_nothing_until_one_disconnects() -> None:
    registry = Registry(lambda: 0.0)
    for i in range(10):
        _connect(registry, f"G{i}")
    assert registry.drop_oldest_guests(3) == []
    registry.stations = _Counting(registry.stations)  # count every look at the stations
    for i in range(10, 20):
        _connect(registry, f"G{i}")
        assert registry.drop_oldest_guests(3) == []
    assert registry.stations.looks == 0
    registry.set_online(registry.stations["G5"], False)
    assert registry.drop_oldest_guests(3) == ["G5"]


class _Counting(dict):
    looks = 0

    def values(self):  # type: ignore[override]
        self.looks += 1
        return super().values()
