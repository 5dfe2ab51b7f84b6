"""Charging profiles adapted per charger, and the flash-wear write guard.

OCPP 1.6 sections 3.13 and 5.16 (SetChargingProfile); Niagara OCPP driver guide 6.3 (settings);
zappi manual 003 (purposes, stack 15, 6 A, 26 writes an hour); EVlink guide 004 section 4.1;
AC wallbox manual 001 section 3.2.1; Smappee manual 000 section 6.
"""

import json
import random
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import ocpp
import pytest

from gateway.chargers.capabilities import ChargerCapabilities
from gateway.chargers.quirks import bundled_quirks
from gateway.charging.guard import WriteGuard
from gateway.charging.profiles import (
    ChargingProfileKind,
    ChargingProfilePurpose,
    ChargingRateUnit,
    NiagaraProfileSettings,
    ProfileNotSupported,
    build_clear,
    build_profile,
)

NOW = datetime(2026, 11, 21, 6, 30, 15, tzinfo=UTC)
SCHEMA = json.loads((Path(ocpp.__file__).parent / "v16/schemas/SetChargingProfile.json").read_text())

GENERIC = ChargerCapabilities.from_configuration({
    "SupportedFeatureProfiles": "Core,SmartCharging",
    "ChargingScheduleAllowedChargingRateUnit": "Current,Power",
    "ChargeProfileMaxStackLevel": "10",
    "ChargingScheduleMaxPeriods": "24",
    "NumberOfConnectors": "2",
}, "Acme", "Box", None)
ZAPPI = ChargerCapabilities.from_configuration({}, "Myenergi", "Zappi", "5540")
EVLINK = ChargerCapabilities.from_configuration(
    {"ChargingScheduleAllowedChargingRateUnit": "Current", "ChargeProfileMaxStackLevel": "999"},
    "Schneider Electric", "EVlink Smart Wallbox")
AC_WALLBOX = ChargerCapabilities.from_configuration(
    {"ChargingScheduleAllowedChargingRateUnit": "Current,Power"}, "", "",
    quirks=bundled_quirks().by_name("ac-wallbox"))
SMAPPEE = ChargerCapabilities.from_configuration({}, "Smappee", "EVWB-332-BR-E-W")


def settings(**changes):
    return replace(NiagaraProfileSettings(enabled=True), **changes)


def build(s, caps, phases=3, transaction_id=None, **kw):
    plan = build_profile(s, caps, phases, 230.0, transaction_id, now=NOW, **kw)
    jsonschema.validate(plan.request(), SCHEMA)  # strict in what we send
    return plan


def periods(plan):
    return plan.cs_charging_profiles["chargingSchedule"]["chargingSchedulePeriod"]


# --- settings and the plain case ----------------------------------------------------------------

def test_settings_default_to_what_the_niagara_driver_shows():
    s = NiagaraProfileSettings()
    assert (s.enabled, s.unit, s.limit, s.kind) == (False, ChargingRateUnit.A, 10.0, ChargingProfileKind.ABSOLUTE)
    assert (s.purpose, s.profile_id, s.stack_level) == (ChargingProfilePurpose.CHARGE_POINT_MAX, 100, 0)


def test_charger_that_takes_everything_gets_the_profile_as_configured():
    plan = build(settings(limit=16, stack_level=2), GENERIC)
    assert plan.request() == {"connectorId": 0, "csChargingProfiles": {
        "chargingProfileId": 100, "stackLevel": 2, "chargingProfilePurpose": "ChargePointMaxProfile",
        "chargingProfileKind": "Absolute",
        "chargingSchedule": {"startSchedule": "2026-11-21T06:30:15Z", "chargingRateUnit": "A",
                             "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0, "numberPhases": 3}]}}}
    assert plan.notes == ()
    assert not plan.paused


def test_relative_profile_has_no_start_and_recurring_one_starts_at_midnight_daily():
    assert "startSchedule" not in build(settings(kind=ChargingProfileKind.RELATIVE), GENERIC) \
        .cs_charging_profiles["chargingSchedule"]
    recurring = build(settings(kind=ChargingProfileKind.RECURRING), GENERIC).cs_charging_profiles
    assert recurring["recurrencyKind"] == "Daily"
    assert recurring["chargingSchedule"]["startSchedule"] == "2026-11-21T00:00:00Z"


# --- unit conversion and minimum ----------------------------------------------------------------

def test_watts_become_amperes_for_a_charger_that_takes_only_amperes():
    plan = build(settings(unit=ChargingRateUnit.W, limit=11040), EVLINK, phases=3)
    assert plan.unit is ChargingRateUnit.A
    assert plan.limit == 16.0
    assert any("converted to A" in n for n in plan.notes)


def test_amperes_become_watts_for_a_charger_that_takes_only_watts():
    watts_only = replace(GENERIC, allowed_rate_units=("W",))
    plan = build(settings(limit=16), watts_only, phases=1)
    assert plan.unit is ChargingRateUnit.W
    assert plan.limit == 3680.0


def test_conversion_rounds_down_so_the_limit_is_never_exceeded():
    plan = build(settings(unit=ChargingRateUnit.W, limit=10000), EVLINK, phases=3)
    assert plan.limit == 14.4  # 14.49 A


def test_limit_under_six_amperes_pauses_instead_of_sending_an_invalid_rate():
    """zappi manual: "Any limit below 6A results in the vehicle not charging"."""
    plan = build(settings(limit=5, purpose=ChargingProfilePurpose.TX_DEFAULT), ZAPPI, phases=1)
    assert plan.limit == 0.0 and plan.paused
    assert any("minimum" in n for n in plan.notes)
    watts = build(settings(unit=ChargingRateUnit.W, limit=1200), GENERIC, phases=1)
    assert watts.limit == 0.0 and watts.paused


# --- stack levels, periods, purposes ------------------------------------------------------------

def test_stack_level_is_clamped_to_what_the_charger_allows():
    plan = build(settings(stack_level=5), AC_WALLBOX)
    assert plan.cs_charging_profiles["stackLevel"] == 1
    assert build(settings(stack_level=20, purpose=ChargingProfilePurpose.TX_DEFAULT), ZAPPI) \
        .cs_charging_profiles["stackLevel"] == 15


def test_schedule_longer_than_max_periods_is_cut_and_ends_where_it_was_cut():
    """AC wallbox manual 3.2.1: ChargingScheduleMaxPeriods 14."""
    schedule = [(i * 900, 6 + i) for i in range(20)]
    plan = build(settings(), AC_WALLBOX, periods=schedule)
    assert len(periods(plan)) == 14
    assert plan.cs_charging_profiles["chargingSchedule"]["duration"] == 14 * 900


def test_repeated_limits_do_not_use_up_periods():
    plan = build(settings(), AC_WALLBOX, periods=[(0, 10), (900, 10), (1800, 12)])
    assert [p["startPeriod"] for p in periods(plan)] == [0, 1800]


def test_zappi_gets_tx_default_profile_instead_of_charge_point_max_when_idle():
    plan = build(settings(limit=16), ZAPPI, phases=1)
    assert plan.purpose is ChargingProfilePurpose.TX_DEFAULT
    assert plan.connector_id == 0
    assert "transactionId" not in plan.cs_charging_profiles


def test_zappi_gets_tx_profile_for_its_running_transaction():
    plan = build(settings(limit=16), ZAPPI, phases=1, transaction_id=42)
    assert plan.purpose is ChargingProfilePurpose.TX
    assert plan.connector_id == 1  # zappi has one connector; TxProfile never goes to 0
    assert plan.cs_charging_profiles["transactionId"] == 42


def test_tx_profile_without_a_transaction_becomes_tx_default():
    plan = build(settings(purpose=ChargingProfilePurpose.TX, connector_id=1), GENERIC)
    assert plan.purpose is ChargingProfilePurpose.TX_DEFAULT


def test_charge_point_max_on_one_connector_of_two_becomes_that_connectors_default():
    plan = build(settings(connector_id=2), GENERIC)
    assert (plan.purpose, plan.connector_id) == (ChargingProfilePurpose.TX_DEFAULT, 2)


def test_evlink_profile_leaves_out_min_charging_rate_and_number_phases():
    plan = build(settings(limit=20, min_charging_rate=6), EVLINK)
    schedule = plan.cs_charging_profiles["chargingSchedule"]
    assert "minChargingRate" not in schedule
    assert all("numberPhases" not in p for p in schedule["chargingSchedulePeriod"])
    assert build(settings(min_charging_rate=6), GENERIC).cs_charging_profiles["chargingSchedule"][
        "minChargingRate"] == 6.0


def test_smappee_takes_profiles_but_not_composite_schedule_requests():
    plan = build(settings(limit=16), SMAPPEE)
    assert plan.purpose is ChargingProfilePurpose.CHARGE_POINT_MAX
    assert not SMAPPEE.can_get_composite_schedule(1)


def test_charger_without_smart_charging_is_told_so_not_sent_a_profile():
    core_only = ChargerCapabilities.from_configuration({"SupportedFeatureProfiles": "Core"}, "A", "B")
    with pytest.raises(ProfileNotSupported):
        build_profile(settings(), core_only, 3, 230.0, now=NOW)


def test_disabling_smart_charging_clears_the_profile_that_was_actually_installed():
    assert build_clear(settings(), ZAPPI) == {"id": 100, "connectorId": 0, "chargingProfilePurpose": "TxDefaultProfile"}


# --- WriteGuard ---------------------------------------------------------------------------------

def request(limit, connector_id=1, unit=ChargingRateUnit.A, at=NOW):
    s = settings(limit=limit, unit=unit, connector_id=connector_id, purpose=ChargingProfilePurpose.TX_DEFAULT)
    return build_profile(s, GENERIC, 3, 230.0, now=at).request()


def write(guard, payload, now):
    decision = guard.decide(payload, now)
    if decision.write:
        guard.record_write(now)
    return decision


def test_unchanged_profile_is_never_written_again_even_with_a_new_start_time():
    guard = WriteGuard()
    assert write(guard, request(16), 0).write
    later = request(16, at=datetime(2026, 11, 21, 9, 0, tzinfo=UTC))
    decision = write(guard, later, 60)
    assert (decision.write, decision.reason) == (False, "unchanged")
    assert guard.writes_total == 1


def test_a_limit_in_amperes_is_not_rewritten_for_its_number_of_phases_alone():
    """The phases come from the car's meter values: 1 while it draws on one phase, the charger's
    3 again while it is paused; the soak saw the same limit written again for each flip."""
    guard = WriteGuard()
    three = request(16)
    one = json.loads(json.dumps(three))
    one["csChargingProfiles"]["chargingSchedule"]["chargingSchedulePeriod"][0]["numberPhases"] = 1
    assert write(guard, three, 0).write
    assert write(guard, one, 1).reason == "unchanged"
    watts, watts_one = request(7000, unit=ChargingRateUnit.W), request(7000, unit=ChargingRateUnit.W)
    watts_one["csChargingProfiles"]["chargingSchedule"]["chargingSchedulePeriod"][0]["numberPhases"] = 1
    assert write(guard, watts, 2).write and write(guard, watts_one, 3).write  # in watts it is a change


def test_small_raises_inside_the_deadband_are_not_written_but_every_cut_is():
    guard = WriteGuard(deadband_a=0.5, deadband_w=100)
    write(guard, request(16), 0)
    assert not write(guard, request(16.3), 1).write
    assert write(guard, request(17), 2).write
    assert write(guard, request(16.7), 3).write  # a cut holds the site limit
    write(guard, request(7000, unit=ChargingRateUnit.W), 4)
    assert not write(guard, request(7050, unit=ChargingRateUnit.W), 5).write
    assert write(guard, request(7200, unit=ChargingRateUnit.W), 6).write


def test_pause_is_always_written_even_when_the_step_is_small():
    guard = WriteGuard(deadband_a=10)
    write(guard, request(6), 0)
    assert write(guard, request(0), 1).write


def test_budget_comes_from_the_charger_or_the_configured_default():
    assert WriteGuard(ZAPPI).writes_per_hour == 26
    assert WriteGuard(GENERIC).writes_per_hour == 60
    assert WriteGuard(GENERIC, default_writes_per_hour=12).writes_per_hour == 12


def test_zappi_never_gets_more_than_26_writes_an_hour_and_the_last_value_still_arrives():
    """zappi manual: "only 26 slot writes can be made within a 60-minute period"."""
    guard = WriteGuard(ZAPPI)
    rng = random.Random(7)
    sent: list[tuple[float, float]] = []
    wanted = 16.0
    for second in range(3600):
        wanted = rng.choice([6, 8, 10, 13, 16, 20, 25, 32])  # a BMS that changes its mind every second
        payload = request(wanted)
        if guard.decide(payload, second).write:
            guard.record_write(second)
            sent.append((second, wanted))
    for t, _ in sent:
        assert sum(1 for u, _ in sent if t - 3600 < u <= t) <= 26
    assert len(sent) == 26
    assert sent[-1][1] != wanted and guard.pending  # the last wish is kept...
    for second in range(3600, 7300):
        for payload in guard.due(second):
            if guard.decide(payload, second).write:
                guard.record_write(second)
                sent.append((second, payload["csChargingProfiles"]["chargingSchedule"]
                             ["chargingSchedulePeriod"][0]["limit"]))
    assert sent[-1][1] == wanted  # ...and arrives as soon as the budget frees
    assert not guard.pending
    for t, _ in sent:
        assert sum(1 for u, _ in sent if t - 3600 < u <= t) <= 26


def test_held_back_write_says_when_the_budget_frees():
    guard = WriteGuard(writes_per_hour=2)
    write(guard, request(10), 100)
    write(guard, request(12), 200)
    decision = write(guard, request(14), 300)
    assert (decision.write, decision.retry_at) == (False, 3700)
    assert guard.due(3699) == []
    assert guard.due(3700) == [request(14)]


def test_rejected_write_counts_against_the_budget_and_is_tried_again_after_a_back_off():
    guard = WriteGuard(writes_per_hour=2)
    guard.decide(request(16), 0)
    guard.record_write(0, accepted=False)
    assert guard.pending and guard.due(1) == []
    held = guard.decide(request(16), 1)
    assert (held.write, held.rejected, held.retry_at) == (False, True, 5.0)
    assert guard.due(5) == [request(16)] and guard.decide(request(16), 5).write
    guard.record_write(5)
    assert guard.writes_in_window(5) == 2
    assert not guard.pending


def tx_request(limit, transaction_id):
    s = settings(limit=limit, connector_id=1, purpose=ChargingProfilePurpose.TX)
    return build_profile(s, GENERIC, 3, 230.0, transaction_id, now=NOW).request()


def test_a_payload_rejected_again_and_again_backs_off_exponentially_not_once_a_second():
    """Issue 13 item 1: a TxProfile for a transaction the charger no longer knows was re-sent
    once a second (60 writes in 63 s) until the hourly budget was gone."""
    guard = WriteGuard()
    sent = []
    for second in range(3600):
        for payload in [tx_request(16, 7), *guard.due(second)]:
            if guard.decide(payload, second).write:
                guard.record_write(second, payload, accepted=False)
                sent.append(second)
    assert sent[:4] == [0, 5, 15, 35] and len(sent) <= 12
    assert guard.rejected_count(tx_request(16, 7)) == len(sent)


def test_the_back_off_belongs_to_the_transaction_so_a_changed_share_for_it_waits_too():
    """Issue 13: a TxProfile for a dead transaction backed off, but a changed share for the same
    transaction (another session arrived, the limit moved) was tried at once."""
    guard = WriteGuard()
    assert guard.decide(tx_request(16, 7), 0).write
    guard.record_write(0, tx_request(16, 7), accepted=False)
    changed = guard.decide(tx_request(12, 7), 1)
    assert (changed.write, changed.rejected, changed.retry_at) == (False, True, 5.0)
    assert guard.pending == [tx_request(12, 7)]  # the newest wish waits
    assert guard.due(4.9) == [] and guard.due(5) == [tx_request(12, 7)]
    assert guard.decide(tx_request(12, 7), 5).write
    guard.record_write(5, tx_request(12, 7), accepted=False)
    assert guard.rejected_count(tx_request(10, 7)) == 2  # counted per transaction, not per payload
    assert guard.decide(tx_request(10, 7), 14).retry_at == 15.0  # doubled
    other = guard.decide(tx_request(10, 8), 14)  # the next transaction is not held back
    assert other.write
    assert guard.drop_transaction(7) == 1
    assert guard.pending == [] and guard.rejected_count(tx_request(10, 7)) == 0


def test_pending_writes_of_an_ended_transaction_are_dropped():
    guard = WriteGuard(writes_per_hour=1)
    write(guard, tx_request(16, 7), 0)
    assert not guard.decide(tx_request(20, 7), 1).write and guard.pending  # budget used: held back
    assert guard.drop_transaction(7) == 1
    assert guard.pending == [] and guard.due(4000) == []


def test_clearing_drops_every_held_back_wish():
    guard = WriteGuard(writes_per_hour=1)
    write(guard, request(16), 0)
    guard.decide(request(20), 1)
    guard.decide(tx_request(10, 3), 1)
    guard.clear_pending()
    assert guard.pending == []


def test_after_a_charger_reboot_the_same_profile_is_written_again():
    guard = WriteGuard()
    write(guard, request(16), 0)
    guard.forget()
    assert write(guard, request(16), 10).write


def test_connectors_are_compared_separately_but_share_the_chargers_budget():
    guard = WriteGuard(writes_per_hour=2)
    assert write(guard, request(16, connector_id=1), 0).write
    assert write(guard, request(16, connector_id=2), 1).write
    assert write(guard, request(16, connector_id=1), 2).reason == "unchanged"
    assert not write(guard, request(20, connector_id=2), 3).write
    assert guard.writes_in_window(3600) == 1


def test_writes_before_a_gateway_restart_still_count_against_the_hourly_budget():
    """zappi counts its own 26 writes an hour; a restarted gateway must not start from zero."""
    guard = WriteGuard(ZAPPI)
    for second in range(26):
        write(guard, request(6 + second % 2 * 4), second * 10)
    again = WriteGuard(ZAPPI)
    again.restore_writes(guard.recent_writes(300), 300)
    assert again.writes_in_window(300) == 26
    assert not again.decide(request(30), 300).write
    again.restore_writes([1.0, 5000.0], 3700)  # outside the window, or from the future: not counted
    assert again.writes_in_window(3700) == 0
