"""The point table in a running gateway: persisted smart-charging settings, hooks for the
smart-charging allocator, refusals for offline chargers (Niagara guide 6.3; issue 5)."""

from __future__ import annotations

import pytest

from gateway.errors import WriteRefused


async def test_smart_charging_points_drive_the_controller_and_survive_a_restart(runner):
    """The SC points show and change the controller's Niagara 6.3 settings (one owner)."""
    gw = await runner.start()
    await gw.device_book.add_device("CP-A")
    table = gw.points.table
    assert await table.write(table.get("CP1-C0-SC-Limit"), 16) == "Stored"
    assert await table.write(table.get("CP1-C0-SC-Unit"), "W") == "Stored"
    assert await table.write(table.get("CP1-C0-SC-Enable"), 1) == "Stored"
    settings = gw.charging.settings_for("CP-A", 0)
    assert (settings.enabled, settings.unit.value, settings.limit) == (True, "W", 16.0)
    await runner.stop()

    gw = await runner.start()
    table = gw.points.table
    assert table.read(table.get("CP1-C0-SC-Limit")) == 16.0
    assert table.read(table.get("CP1-C0-SC-Unit")) == 2
    assert table.read(table.get("CP1-C0-SC-Enable")) is True
    assert table.read(table.get("CP1-C0-SC-Purpose")) == 1  # ChargePointMaxProfile on connector 0


async def test_site_limit_write_is_a_bms_limit_in_force(runner):
    gw = await runner.start(smart_charging={"safe_power_limit_kw": 80.0})
    table = gw.points.table
    limit = table.get("Site-PowerLimit")
    assert table.read_default(limit) == 80.0  # relinquished: the safe limit
    assert table.read(table.get("Site-Limit-Reason")) == "safe limit: no BMS command"
    await table.write(limit, 42.5)
    assert table.read(table.get("Site-PowerLimit-InForce")) == 42.5
    assert table.read(table.get("Site-Limit-Reason")) == "bms"


async def test_a_command_to_an_offline_charger_is_refused(runner):
    gw = await runner.start()
    await gw.device_book.add_device("CP-A")
    table = gw.points.table
    with pytest.raises(WriteRefused) as exc:
        await table.write(table.get("CP1-Reset"), "Soft")
    assert exc.value.code == "charger-offline"
    assert table.read(table.get("CP1-Reset-Result")).startswith("Refused")


async def test_a_bms_limit_kept_across_a_restart_is_not_lost_by_a_write_of_the_other_site_point(runner):
    """Issue 13 item 4: the BMS limit survives a restart; writing the power limit afterwards
    must not drop the current limit the BMS commanded before it."""
    gw = await runner.start()
    table = gw.points.table
    await table.write(table.get("Site-CurrentLimit"), 32.0)
    await runner.stop()
    gw = await runner.start()
    table = gw.points.table
    assert table.read(table.get("Site-CurrentLimit-InForce")) == 32.0
    await table.write(table.get("Site-PowerLimit"), 40.0)
    assert table.read(table.get("Site-CurrentLimit-InForce")) == 32.0
    assert table.read(table.get("Site-PowerLimit-InForce")) == 40.0
