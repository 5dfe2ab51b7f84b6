"""Settings an operator changes while the site runs: at once, validated, kept, logged (issue 16)."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import pytest

from gateway.main import main
from tests.support.charger import TestCharger


async def cli(capsys, runner, *argv: str) -> tuple[int, str, str]:
    code = await asyncio.to_thread(main, [*runner.cli_args, *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


async def test_the_authorize_policy_changes_without_a_restart(gateway, runner, capsys):
    await gateway.device_book.add_device("CP1")
    async with TestCharger(runner.url, "CP1") as cp:
        await cp.boot()
        assert (await cp.call("Authorize", {"idTag": "CARD"}))["idTagInfo"]["status"] == "Accepted"
        code, out, _ = await cli(capsys, runner, "settings", "set", "authorize.policy", "none_except_whitelist")
        assert code == 0 and "none_except_whitelist" in out
        assert (await cp.call("Authorize", {"idTag": "CARD"}))["idTagInfo"]["status"] == "Invalid"
    log = await gateway.history.general_log(message_type="SettingChanged")
    assert "setting authorize.policy changed from all to none_except_whitelist by admin" in log[-1]["message"]


async def test_guest_response_and_interval_apply_to_the_next_boot(gateway, runner, capsys):
    code, _, _ = await cli(capsys, runner, "settings", "set", "registration.guest_reconnect_interval_s", "10")
    assert code == 0
    async with TestCharger(runner.url, "G1") as cp:
        answer = await cp.boot()
        assert (answer["status"], answer["interval"]) == ("Pending", 10)
        await cli(capsys, runner, "settings", "set", "registration.guest_response", "Rejected")
        assert (await cp.boot())["status"] == "Rejected"


@pytest.mark.parametrize(("key", "value", "says"), [
    ("authorize.policy", "maybe", "must be one of"),
    ("registration.guest_reconnect_interval_s", "-5", "between"),
    ("registration.guest_reconnect_interval_s", "abc", "number"),
    ("ocpp.port", "9000", "not a setting that changes while running"),
    ("nosuch.key", "1", "not a setting"),
])
async def test_a_bad_live_value_is_refused_and_nothing_changes(key, value, says, gateway, runner, capsys):
    before = gateway.settings.values()
    code, _, err = await cli(capsys, runner, "settings", "set", key, value)
    lines = [line for line in err.splitlines() if line]
    assert code == 1 and len(lines) == 1 and says in lines[0]
    assert gateway.settings.values() == before
    assert await gateway.history.kv_get("setting") == {}


async def test_a_change_survives_a_restart_and_reset_goes_back_to_the_file(runner, capsys):
    gw = await runner.start(authorize={"policy": "all"})
    await cli(capsys, runner, "settings", "set", "authorize.policy", "none")
    await runner.stop()
    gw = await runner.start(authorize={"policy": "all"})
    assert gw.settings.authorize.policy == "none"
    code, out, _ = await cli(capsys, runner, "--json", "settings", "list")
    row = next(r for r in json.loads(out) if r["key"] == "authorize.policy")
    assert row["value"] == "none" and row["file_value"] == "all" and row["changed"]
    await cli(capsys, runner, "settings", "reset", "authorize.policy")
    assert gw.settings.authorize.policy == "all"


async def test_the_log_filter_changes_live(gateway, runner, capsys):
    import logging
    code, _, _ = await cli(capsys, runner, "settings", "set", "logging.filter_charger", "CP9")
    assert code == 0
    handler = logging.StreamHandler()
    logging.getLogger().addHandler(handler)
    try:
        from gateway.history.logfilter import ChargerFilter, set_charger_filter
        set_charger_filter("CP9")
        assert any(isinstance(f, ChargerFilter) for f in handler.filters)
        await cli(capsys, runner, "settings", "set", "logging.filter_charger", "")
        assert not any(isinstance(f, ChargerFilter) for f in handler.filters)
    finally:
        logging.getLogger().removeHandler(handler)


async def test_a_safe_limit_set_live_is_the_fallback_at_once(gateway, runner, capsys):
    """A BMS limit that is not refreshed falls back to the safe limit set a moment ago."""
    from tests.conftest import wait_until
    await gateway.charging.set_site_limit(30.0, None, "bms")
    code, _, _ = await cli(capsys, runner, "settings", "set", "smart_charging.safe_power_limit_kw", "7")
    assert code == 0
    code, _, _ = await cli(capsys, runner, "settings", "set", "smart_charging.setpoint_timeout_s", "1")
    assert code == 0
    site = gateway.charging.site  # the BMS wrote 2 s ago, then went quiet
    site.bms = dataclasses.replace(site.bms, at=gateway.clock() - 2)
    await wait_until(lambda: gateway.charging.site_view()["in_force_power_kw"] == 7.0)
    assert gateway.charging.site_view()["reason"].startswith("fallback")


async def test_a_closed_websocket_stops_being_a_fault_when_switched_off_live(gateway, runner, capsys):
    from tests.conftest import wait_until
    code, _, _ = await cli(capsys, runner, "settings", "set", "ocpp.websocket_lost_connection_fault", "false")
    assert code == 0 and gateway.settings.ocpp.websocket_lost_connection_fault is False
    async with TestCharger(runner.url, "CP1") as cp:
        await cp.boot()
    await wait_until(lambda: "CP1" not in gateway.connections.sessions)
    assert not gateway.registry.get("CP1").fault
