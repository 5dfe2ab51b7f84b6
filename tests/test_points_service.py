"""The point table in a running gateway: persisted smart-charging settings, hooks for the
smart-charging allocator, refusals for offline chargers (Niagara guide 6.3; issue 5)."""

from __future__ import annotations

import pytest

from points.catalog import SiteLimits, SmartSettings, WriteRefused
from points.service import service_for


async def test_smart_charging_settings_survive_a_restart_and_reach_the_hook(runner):
    gw = await runner.start()
    await gw.add_device("CP-A")
    service = service_for(gw)
    heard: list[tuple[str, int, SmartSettings]] = []

    async def hook(charger_id: str, connector_id: int, settings: SmartSettings) -> None:
        heard.append((charger_id, connector_id, settings))
    service.smart_hooks.append(hook)
    table = service.table
    assert await table.write(table.get("CP1-C0-SC-Limit"), 16) == "Stored"
    assert await table.write(table.get("CP1-C0-SC-Unit"), "W") == "Stored"
    assert await table.write(table.get("CP1-C0-SC-Enable"), 1) == "Stored"
    assert heard[-1][:2] == ("CP-A", 0) and heard[-1][2].enable and heard[-1][2].unit == "W"
    service.set_send_status("CP-A", 0, "Accepted")
    assert table.read(table.get("CP1-C0-SC-SendStatus")) == "Accepted"
    await runner.stop()

    gw = await runner.start()
    table = service_for(gw).table
    assert table.read(table.get("CP1-C0-SC-Limit")) == 16.0
    assert table.read(table.get("CP1-C0-SC-Unit")) == 2
    assert table.read(table.get("CP1-C0-SC-Enable")) is True
    assert table.read(table.get("CP1-C0-SC-Purpose")) == 1  # ChargePointMaxProfile on connector 0


async def test_site_limit_write_reaches_the_site_hook(runner):
    gw = await runner.start(smart_charging={"site_power_limit_kw": 80.0})
    service = service_for(gw)
    seen: list[float] = []

    async def hook(site: SiteLimits) -> None:
        seen.append(site.power_limit_kw)
    service.site_hooks.append(hook)
    limit = service.table.get("Site-PowerLimit")
    assert service.table.read_default(limit) == 80.0
    await service.table.write(limit, 42.5)
    assert seen == [42.5]


async def test_a_command_to_an_offline_charger_is_refused(runner):
    gw = await runner.start()
    await gw.add_device("CP-A")
    table = service_for(gw).table
    with pytest.raises(WriteRefused) as exc:
        await table.write(table.get("CP1-Reset"), "Soft")
    assert exc.value.code == "charger-offline"
    assert table.read(table.get("CP1-Reset-Result")).startswith("Refused")
