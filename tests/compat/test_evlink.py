"""Schneider EVlink (guide 004): over-long boot serials (6.3.3.2 note 1, 8.1), two connectors."""

from __future__ import annotations

from gateway.chargers.configuration_calls import configuration_view
from gateway.operator import actions as ops
from tests.compat.harness import start_bench

SERIAL = "3N193501234EVF2S22P22R7V3.3.0.7"  # 31 characters; the schema allows 25


async def test_boot_with_an_over_long_serial_is_accepted_and_kept_whole(runner):
    bench = await start_bench(runner, "evlink")
    sim = await bench.connect()
    assert sim.registration == "Accepted"
    boot = bench.station.boot
    assert (boot.charge_box_serial, boot.charge_point_serial) == (SERIAL, SERIAL)
    [tolerated] = [r for r in await bench.log_lines("BootNotificationRequest") if r["level"] == "warning"]
    assert "accepted despite schema violation" in tolerated["message"]


async def test_recommended_truncation_makes_the_next_boot_fit_the_schema(runner):
    """Note 1 of 6.3.3.2: set truncateBootNotificationsSerialNumbers=true once connected."""
    bench = await start_bench(runner, "evlink")
    sim = await bench.connect()
    gw, cid = bench.gw, bench.charger_id
    view = await configuration_view(gw.configuration, bench.station)  # GET .../configuration
    recommended = {r["key"]: r["value"] for r in view["recommended"]}
    assert recommended == {"truncateBootNotificationsSerialNumbers": "true"}
    for key, value in recommended.items():
        assert (await ops.change_configuration(gw.actions, cid, key, value))["status"] == "Accepted"
    await ops.reset(gw.actions, cid, "Soft")
    await sim.wait_for(lambda: sim.boot_count == 2 and sim.ready.is_set())
    await bench.watch.until(lambda: bench.station.boot.charge_box_serial == SERIAL[:25])
    warnings = [r for r in await bench.log_lines("BootNotificationRequest") if r["level"] == "warning"]
    assert len(warnings) == 1  # only the first boot broke the schema


async def test_charger_wide_inoperative_reaches_both_connectors(runner):
    bench = await start_bench(runner, "evlink")
    await bench.connect()
    answer = await ops.change_availability(bench.gw, bench.charger_id, "Inoperative", 0)
    assert answer["status"] == "Accepted"
    connectors = [bench.station.connectors[i] for i in (1, 2)]
    await bench.watch.until(lambda: all(c.status == "Unavailable" for c in connectors))
    assert all(c.availability == "Inoperative" for c in connectors)
    assert await ops.change_availability(bench.gw, bench.charger_id, "Operative", 0)
    await bench.watch.until(lambda: all(c.status == "Available" for c in connectors))
