"""Which site limit is in force and why (gateway.charging.limit.decide), on plain objects.

Issue 13 item 4: a BMS command that lapses must never leave the site without a limit.
"""

from __future__ import annotations

import pytest

from gateway.charging.limit import LimitRecord, SiteLimit, decide

BMS = LimitRecord(SiteLimit(current_a=20.0), "bms", at=1000.0, priority=8)
MANUAL = LimitRecord(SiteLimit(power_w=30000.0), "manual", at=500.0)
SAFE = SiteLimit(power_w=4140.0)


def test_a_fresh_bms_command_wins_over_manual_and_config():
    got = decide(BMS, MANUAL, SiteLimit(current_a=63.0), SAFE, now=1500.0, timeout_s=900.0)
    assert (got.limit, got.source, got.reason, got.watchdog_expired) == (
        SiteLimit(current_a=20.0), "bms", "bms (priority 8)", False)


def test_a_lapsed_bms_command_falls_to_the_safe_limit():
    got = decide(BMS, None, None, SAFE, now=1901.0, timeout_s=900.0)
    assert (got.limit, got.source, got.watchdog_expired) == (SAFE, "safe", True)
    assert got.reason.startswith("fallback: BMS watchdog expired") and "safe limit" in got.reason


def test_a_lapsed_bms_command_without_a_safe_limit_keeps_the_last_bms_value_never_none():
    got = decide(BMS, None, None, None, now=10_000.0, timeout_s=900.0)
    assert (got.limit, got.source, got.watchdog_expired) == (SiteLimit(current_a=20.0), "last bms", True)
    assert "last BMS value" in got.reason


def test_after_the_watchdog_a_stricter_manual_or_configured_limit_still_applies():
    got = decide(BMS, LimitRecord(SiteLimit(current_a=16.0), "manual"), SiteLimit(power_w=3000.0), None,
                 now=10_000.0, timeout_s=900.0)
    assert got.limit == SiteLimit(current_a=16.0, power_w=3000.0) and got.watchdog_expired


@pytest.mark.parametrize(("bms", "manual", "config", "source"), [
    (None, MANUAL, SiteLimit(current_a=63.0), "manual"),
    (None, None, SiteLimit(current_a=63.0), "config"),
    (LimitRecord(SiteLimit(), "bms", at=1000.0), None, None, "safe"),  # the BMS relinquished
    (None, LimitRecord(SiteLimit(), "manual"), None, "safe"),  # cleared
])
def test_without_a_bms_command_manual_then_config_then_the_safe_limit(bms, manual, config, source):
    got = decide(bms, manual, config, SAFE, now=1500.0, timeout_s=900.0)
    assert got.source == source and not got.watchdog_expired
    assert decide(bms, manual, config, None, now=1500.0, timeout_s=900.0).limit.unlimited == (source == "safe")


def test_no_watchdog_when_the_timeout_is_zero():
    assert decide(BMS, None, None, SAFE, now=1e9, timeout_s=0).source == "bms"


def test_the_record_survives_a_round_trip_through_json():
    assert LimitRecord.from_json(BMS.to_json()) == BMS
    with pytest.raises(ValueError):
        LimitRecord.from_json({"source": "somebody"})
