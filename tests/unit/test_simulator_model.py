"""Simulator model without I/O: profile files, configuration keys, charging-profile store.

Covers the rules the integration tests in test_simulator.py rely on, on plain objects.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from ocpp.v16.enums import Action

from gateway.simulator import PROFILE_NAMES, load_profile
from gateway.simulator.charging import ActiveTx, Profile, ProfileStore
from gateway.simulator.model import ConfigStore
from gateway.simulator.profile import SmartChargingSpec

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
CS_ACTIONS = {
    "CancelReservation", "ChangeAvailability", "ChangeConfiguration", "ClearCache", "ClearChargingProfile",
    "DataTransfer", "GetCompositeSchedule", "GetConfiguration", "GetDiagnostics", "GetLocalListVersion",
    "RemoteStartTransaction", "RemoteStopTransaction", "ReserveNow", "Reset", "SendLocalList",
    "SetChargingProfile", "TriggerMessage", "UnlockConnector", "UpdateFirmware",
}


def profile(limit: float, *, id: int = 1, purpose: str = "TxDefaultProfile", stack: int = 0, connector: int = 1,
            unit: str = "A", kind: str = "Absolute", start: datetime = T0, periods: list[Any] | None = None,
            duration: int | None = None, recurrency: str | None = None) -> Profile:
    data = {
        "charging_profile_id": id, "stack_level": stack, "charging_profile_purpose": purpose,
        "charging_profile_kind": kind, "recurrency_kind": recurrency,
        "charging_schedule": {
            "charging_rate_unit": unit, "start_schedule": start.isoformat(), "duration": duration,
            "charging_schedule_period": periods or [{"start_period": 0, "limit": limit}],
        },
    }
    return Profile.from_payload(connector, data, T0)


def store(**spec: Any) -> ProfileStore:
    return ProfileStore(SmartChargingSpec(**spec), phases=3, voltage_v=230, max_current_a=32)


@pytest.mark.parametrize("name", PROFILE_NAMES)
def test_every_shipped_profile_loads_with_known_actions(name: str) -> None:
    p = load_profile(name)
    assert set(p.actions) <= CS_ACTIONS
    assert set(p.actions) <= {a.value for a in Action}
    assert p.connectors >= 1 and p.boot.charge_point_vendor


def test_smappee_lists_no_reservation_local_list_composite_or_firmware_update() -> None:
    """Smappee 6: these are "No"."""
    missing = CS_ACTIONS - set(load_profile("smappee").actions)
    assert missing == {"CancelReservation", "ReserveNow", "GetCompositeSchedule", "GetLocalListVersion",
                       "SendLocalList", "UpdateFirmware"}


def test_config_store_judges_values_by_key_definition() -> None:
    config = ConfigStore(load_profile("acwallbox").keys)
    assert config.change("ClockAlignedDataInterval", "0") == "Accepted"  # "0, 30 - 86399"
    assert config.change("ClockAlignedDataInterval", "20") == "Rejected"
    assert config.change("LocalPreAuthorize", "maybe") == "Rejected"
    assert config.change("MeterValuesSampledData", "Voltage, Current.Import") == "Accepted"
    assert config.get("MeterValuesSampledData") == "Voltage,Current.Import"
    assert config.get_int("TransactionMessageRetryInterval", 10) == 10  # documented default "10S"


def test_config_store_entries_split_known_and_unknown() -> None:
    config = ConfigStore(load_profile("zappi").keys)
    known, unknown = config.entries(["HeartbeatInterval", "Nope"])
    assert known == [{"key": "HeartbeatInterval", "readonly": False, "value": "60"}]
    assert unknown == ["Nope"]


def test_higher_stack_level_wins_and_charge_point_max_caps() -> None:
    s = store()
    assert s.set(profile(16), T0, None) == "Accepted"
    assert s.set(profile(10, id=2, stack=1), T0, None) == "Accepted"
    assert s.limit_a(1, T0, None) == 10
    assert s.set(profile(8, id=3, purpose="ChargePointMaxProfile", connector=0), T0, None) == "Accepted"
    assert s.limit_a(1, T0, None) == 8


def test_tx_profile_needs_a_transaction_and_ends_with_it() -> None:
    s = store()
    assert s.set(profile(12, purpose="TxProfile"), T0, None) == "Rejected"
    tx = ActiveTx(5, T0)
    assert s.set(profile(12, purpose="TxProfile"), T0, tx) == "Accepted"
    assert s.limit_a(1, T0, tx) == 12
    s.end_transaction(1)
    assert s.limit_a(1, T0, None) is None


def test_schedule_periods_and_duration_in_composite() -> None:
    s = store()
    periods = [{"start_period": 0, "limit": 16}, {"start_period": 600, "limit": 8}]
    s.set(profile(0, periods=periods, duration=1200), T0, None)
    composite = s.composite(1, 1800, "A", T0, None)
    assert composite["charging_schedule_period"] == [
        {"start_period": 0, "limit": 16}, {"start_period": 600, "limit": 8}, {"start_period": 1200, "limit": 32}]


def test_daily_recurring_profile_repeats_next_day() -> None:
    s = store()
    s.set(profile(0, kind="Recurring", recurrency="Daily", duration=3600,
                  periods=[{"start_period": 0, "limit": 6}]), T0, None)
    assert s.limit_a(1, T0 + timedelta(days=1, minutes=30), None) == 6
    assert s.limit_a(1, T0 + timedelta(days=1, hours=2), None) is None


def test_zappi_single_tx_default_profile_is_overwritten() -> None:
    """zappi "Set Charging Profile": one TxDefaultProfile per device; a further one overwrites it."""
    s = store(**{"single_tx_default": True, "max_stack_level": 15})
    s.set(profile(16, id=1, stack=3), T0, None)
    s.set(profile(10, id=2, stack=7), T0, None)
    assert [p.id for p in s.profiles] == [2]


def test_acwallbox_limits_stack_level_and_periods() -> None:
    """AC wallbox: ChargeProfileMaxStackLevel 1, ChargingScheduleMaxPeriods 14."""
    s = store(max_stack_level=1, max_periods=14, max_installed=1)
    assert s.set(profile(10, stack=2), T0, None) == "Rejected"
    periods = [{"start_period": i * 60, "limit": 10} for i in range(15)]
    assert s.set(profile(0, periods=periods), T0, None) == "Rejected"


@pytest.mark.parametrize(("base", "count", "ids"), [
    ("CP1", 3, ["CP1", "CP2", "CP3"]),
    ("EVB", 2, ["EVB-1", "EVB-2"]),
    ("CP7", 1, ["CP7"]),
])
def test_simulate_count_names_chargers(base: str, count: int, ids: list[str]) -> None:
    from gateway.simulator.cli import charger_ids

    assert charger_ids(base, count) == ids


def test_real_firmware_rejects_a_tx_profile_for_a_transaction_it_does_not_know() -> None:
    store = ProfileStore(SmartChargingSpec(reject_unknown_transaction=True), 3, 230.0, 32.0)
    tx = ActiveTx(7, T0)
    stale = Profile(**{**profile(10, purpose="TxProfile").__dict__, "transaction_id": 6})
    assert store.set(stale, T0, tx) == "Rejected" and "unknown transaction 6" in store.last_rejection
    current = Profile(**{**profile(10, purpose="TxProfile").__dict__, "transaction_id": 7})
    assert store.set(current, T0, tx) == "Accepted"


def test_a_car_ramps_up_over_seconds_and_follows_a_lower_limit_at_once() -> None:
    from gateway.simulator.model import Connector, Meter

    meter, c = Meter(3, 230.0, 32.0, 6.0, ramp_s=8.0), Connector(1)
    meter.advance(c, T0, 16.0, True)
    assert (c.offered_a, c.current_a) == (16.0, 0.0)
    meter.advance(c, T0 + timedelta(seconds=2), 16.0, True)
    assert c.current_a == 8.0  # 32 A over 8 s: 4 A a second
    meter.advance(c, T0 + timedelta(seconds=10), 16.0, True)
    assert c.current_a == 16.0  # exactly what it is offered, no more
    meter.advance(c, T0 + timedelta(seconds=11), 10.0, True)
    assert c.current_a == 10.0


def test_real_firmware_behaviours_are_selected_in_the_profile_file(tmp_path) -> None:
    from gateway.simulator.profile import with_firmware

    text = resources_text("generic").replace("[firmware]\n", "[firmware]\nramp_s = 5.0\nboot_on_reconnect = false\n")
    path = tmp_path / "fw.toml"
    path.write_text(text)
    loaded = load_profile(path)
    assert (loaded.firmware.ramp_s, loaded.firmware.boot_on_reconnect) == (5.0, False)
    assert not load_profile("generic").firmware.meter_while_offline  # off unless asked for
    switched = with_firmware(load_profile("zappi"), reject_unknown_transaction=True, meter_while_offline=True)
    assert switched.smart_charging.reject_unknown_transaction and switched.firmware.meter_while_offline
    assert switched.smart_charging.writes_per_hour == load_profile("zappi").smart_charging.writes_per_hour


def resources_text(name: str) -> str:
    from importlib import resources
    return resources.files("gateway.simulator").joinpath("profiles", f"{name}.toml").read_text("utf-8")


def test_a_one_slot_charger_holds_a_tx_default_profile_on_its_connector_across_transactions() -> None:
    """AC wallbox 3.2.1, MaxChargingProfilesInstalled 1: what the gateway's start limit and site
    share rely on. A TxDefaultProfile on connector 1 applies to that connector's transaction, the
    same id replaces it at once (OCPP 1.6 5.16), it stays after the transaction (only TxProfiles
    end with it, 3.13.1), and no TxProfile fits beside it."""
    s = store(max_stack_level=1, max_installed=1)
    assert s.set(profile(0, id=900001, stack=1), T0, None) == "Accepted"
    tx = ActiveTx(5, T0)
    assert s.limit_a(1, T0, tx) == 0.0  # a car that starts waits
    assert s.set(profile(12, id=900001, stack=1), T0, tx) == "Accepted"
    assert len(s.profiles) == 1 and s.limit_a(1, T0, tx) == 12.0
    assert s.set(profile(6, id=900002, purpose="TxProfile", stack=1), T0, tx) == "Rejected"
    s.end_transaction(1)
    assert s.limit_a(1, T0, ActiveTx(6, T0)) == 12.0  # the next car starts at it unless set back
