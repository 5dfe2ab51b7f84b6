"""myenergi zappi (manual 003): Pending until an operator adds it, and its Basic-auth key.

"Boot Notification": after a Pending answer zappi sends nothing until Accepted.
"Change Configuration / AuthorizationKey": a new key makes zappi reconnect with it; the username
is the charge box identity (OCPP security profile 1).
"""

from __future__ import annotations

import pytest
from websockets.exceptions import InvalidStatus

from gateway.operator import actions as ops
from gateway.simulator import Simulator
from tests.compat.harness import WHITELISTED, Bench, Watch, start_bench, whitelist
from tests.support.charger import SITE_PASSWORD, TestCharger

ZAPPI = "91234567"  # the serial of the manual's boot example, the default identity


async def test_zappi_waits_while_pending_and_is_accepted_at_its_next_boot_once_added(runner):
    gw = await runner.start(registration={"guest_response": "Pending", "guest_reconnect_interval_s": 1},
                            authorize={"policy": "none_except_whitelist"})
    await whitelist(gw, WHITELISTED)
    watch = Watch(gw)
    sim = runner.track(Simulator("zappi", ZAPPI, runner.url, SITE_PASSWORD, heartbeat=False,
                                     reconnect_delay_s=0.0))
    assert await sim.start(wait="answer") == "Pending"
    station = gw.registry.get(ZAPPI)
    assert station.is_guest and station.boot_status == "Pending"
    assert station.boot.vendor == "Myenergi" and station.boot.charge_box_serial == ZAPPI
    # Pending: zappi sends nothing but BootNotification, and the gateway asks it nothing.
    assert [a for a, _, _ in sim.sent_calls] == ["BootNotification"]
    assert sim.received_calls == []
    await gw.device_book.add_device(ZAPPI)
    await sim.wait_for(lambda: sim.ready.is_set(), timeout=10)  # the retry after the 1 s interval
    assert sim.boot_count == 2 and sim.registration == "Accepted"
    await watch.until(lambda: station.slot == 1 and station.boot_status == "Accepted"
                      and station.connectors.get(1) is not None)
    bench = Bench(runner, gw, "zappi", ZAPPI)
    bench.sim = sim
    await bench.configuration_read()
    assert station.config_value("IsOperative") == "true"
    tx = await sim.start_session(1, WHITELISTED)
    await sim.wait_for(lambda: tx.transaction_id is not None)


async def test_zappi_connects_with_its_authorization_key_and_a_wrong_key_is_refused(runner):
    gw = await runner.start()
    await gw.device_book.add_device(ZAPPI, auth_key="zappi-secret-1")
    with pytest.raises(InvalidStatus) as refused:
        async with TestCharger(runner.url, ZAPPI, password="wrong"):
            pass
    assert refused.value.response.status_code == 401
    with pytest.raises(InvalidStatus):
        async with TestCharger(runner.url, ZAPPI, password=None):  # no credentials at all
            pass
    bench = Bench(runner, gw, "zappi", ZAPPI)
    sim = await bench.connect(password="zappi-secret-1")
    assert sim.config.get("AuthorizationKey") == "zappi-secret-1"
    refusals = await bench.log_lines("ConnectionRefused")
    assert [r["message"].split(" from ")[0] for r in refusals] == ["wrong credentials", "missing credentials"]


async def test_a_new_authorization_key_set_by_the_operator_lets_zappi_reconnect_with_it(runner):
    """zappi reconnects with the key it was given; the gateway must expect that key from then on."""
    gw = await runner.start()
    await gw.device_book.add_device(ZAPPI, auth_key="zappi-secret-1")
    bench = Bench(runner, gw, "zappi", ZAPPI)
    sim = await bench.connect(password="zappi-secret-1")
    answer = await ops.change_configuration(gw.actions, ZAPPI, "AuthorizationKey", "zappi-secret-2")
    assert answer["status"] == "Accepted"
    await sim.wait_for(lambda: sim.boot_count == 2 and sim.ready.is_set())
    assert not [r for r in await bench.log_lines("ConnectionRefused")]
    assert bench.station.online and bench.station.boot_status == "Accepted"
    with pytest.raises(InvalidStatus):  # the old key is no longer let in
        async with TestCharger(runner.url, ZAPPI, password="zappi-secret-1"):
            pass
    # The key is a password: it is not kept or logged in clear text.
    station = bench.station
    assert "zappi-secret-2" not in (station.config_value("AuthorizationKey") or "")
    texts = [r["message"] for r in await bench.log_lines()]
    texts += [str(r) for r in await gw.history.config_changes(ZAPPI)]
    texts += [str(r) for r in await gw.history.load_config(ZAPPI)]
    assert not [t for t in texts if "zappi-secret" in t]


async def test_zappi_availability_change_waits_for_the_unplug(runner):
    """zappi 'Change Availability': Scheduled while a vehicle is plugged in, even without charging."""
    bench = await start_bench(runner, "zappi")
    sim = await bench.connect()
    await sim.plug_in(1)
    answer = await ops.change_availability(bench.gw, bench.charger_id, "Inoperative", 1)
    assert answer["status"] == "Scheduled"
    connector = bench.station.connectors[1]
    assert connector.status == "Preparing"
    await sim.unplug(1)
    await bench.watch.until(lambda: connector.status == "Unavailable")
    # then a StatusNotification for connector 0 too ("IsOperative")
    assert [p["connector_id"] for p, _ in bench.sent("StatusNotification")][-2:] == [1, 0]


async def test_remote_start_before_the_car_is_plugged_in_starts_when_it_is(runner):
    """zappi 'RemoteStartTransaction': Preparing, then StartTransaction once plugged in."""
    bench = await start_bench(runner, "zappi")
    sim = await bench.connect()
    answer = await ops.remote_start_transaction(bench.gw, bench.charger_id, WHITELISTED, connector_id=1)
    assert answer["status"] == "Accepted"
    connector = bench.station.connectors[1]
    await bench.watch.until(lambda: connector.status == "Preparing")
    assert connector.transaction_id is None and await bench.transactions() == []
    await sim.plug_in(1)
    await bench.watch.until(lambda: connector.transaction_id is not None and connector.status == "Charging")
    [row] = await bench.transactions()
    assert (row["id_tag"], row["status"]) == (WHITELISTED, "active")


async def test_hard_reset_stops_the_transaction_and_charging_does_not_resume(runner):
    """zappi 'Reset': hard or soft, the transaction is stopped (unlike the AC wallbox)."""
    bench = await start_bench(runner, "zappi")
    sim = await bench.connect()
    tx = await sim.start_session(1, WHITELISTED)
    await sim.wait_for(lambda: tx.transaction_id is not None)
    await ops.reset(bench.gw, bench.charger_id, "Hard")
    await sim.wait_for(lambda: sim.boot_count == 2 and sim.ready.is_set())
    [row] = await bench.transactions()
    assert (row["status"], row["stop_reason"]) == ("stopped", "HardReset")
    connector = bench.station.connectors[1]
    await bench.watch.until(lambda: connector.transaction_id is None and connector.status != "Charging")
    assert not await bench.log_lines("TransactionLost")
