"""AC EV wallbox (manual 001): key limits, local list chunks, and the hard reset that loses data.

3.2.1 GetConfigurationMaxKeys 10; 3.1 SendLocalList "Each list is limited to 5 ID tag ... The
charger has a total limit of 20 ID tags"; 3.2.1 AllowOfflineTxForUnknownId false with
LocalAuthorizeOffline true; 3.1 Reset "Hard reset restart the charger immediately, and the data
of the charging transaction in progress will be lost".
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from gateway.charging.controller import capabilities_of
from gateway.errors import OperationError
from gateway.operator import actions as ops
from gateway.simulator import Simulator, load_profile
from gateway.simulator.profile import with_firmware
from tests.compat.harness import WHITELISTED, Bench, add_bench, record_offered, start_bench, whitelist


async def test_configuration_is_read_in_batches_of_ten_from_a_wallbox_that_answers_ten_at_a_time(runner):
    """The manual does not say what an unkeyed GetConfiguration returns; this variant answers only
    GetConfigurationMaxKeys keys (as evcc#15869 saw) and refuses a request for more."""
    base = load_profile("acwallbox")
    strict = replace(base, quirks=replace(base.quirks, get_configuration_unkeyed="limit",
                                          get_configuration_over_max="callerror"))
    bench = await start_bench(runner, "acwallbox")
    sim = await bench.connect(strict)
    assert {k: e.value for k, e in bench.station.config.items()} == dict(sim.config.values)
    keyed = [p["key"] for p in bench.received("GetConfiguration") if p.get("key")]
    assert len(keyed) > 3 and all(len(keys) <= 10 for keys in keyed)
    [line] = await bench.log_lines("ConfigurationRead")
    assert "batched read" in line["message"] and "GetConfigurationMaxKeys 10" in line["message"]
    assert not [r for r in await bench.log_lines() if r["message_type"] == "GetConfigurationError"]


async def test_whitelist_goes_out_in_chunks_of_five_and_never_beyond_twenty_tags(runner):
    bench = await start_bench(runner, "acwallbox")
    more = [f"RFID-{i:04d}" for i in range(23)]
    await whitelist(bench.gw, *more)  # 24 whitelisted tags with WHITELISTED
    sim = await bench.connect()
    result = await ops.send_local_list(bench.gw, bench.charger_id)
    assert result["status"] == "Accepted"
    assert [c["entries"] for c in result["chunks"]] == [5, 5, 5, 5]
    assert result["sent"] == 20 and len(result["not_sent"]) == 4
    lists = bench.received("SendLocalList")
    assert [p["updateType"] for p in lists] == ["Full", "Differential", "Differential", "Differential"]
    assert all(len(p["localAuthorizationList"]) <= 5 for p in lists)
    assert len(sim.local_list) == 20 and sim.local_list_version == result["list_version"]
    [warning] = await bench.log_lines("SendLocalList")
    assert "4 tag(s) not sent" in warning["message"]


async def test_a_listed_tag_charges_offline_and_an_unknown_one_does_not(runner):
    bench = await start_bench(runner, "acwallbox")
    await whitelist(bench.gw, "RFID-LISTED-1")
    sim = await bench.connect()
    await ops.send_local_list(bench.gw, bench.charger_id)
    await sim.go_offline()
    assert await sim.start_session(1, "RFID-NEVER-SEEN") is None  # AllowOfflineTxForUnknownId false
    tx = await sim.start_session(1, "RFID-LISTED-1")  # never swiped online: from the local list
    assert tx is not None
    sim.advance(600)
    await sim.stop_session(1, "Local")
    await sim.go_online()
    await sim.wait_for(lambda: not sim.pending)
    [row] = await bench.transactions()
    assert (row["id_tag"], row["status"], row["minutes_charged"]) == ("RFID-LISTED-1", "stopped", 10)


async def test_hard_reset_loses_the_transaction_and_the_operator_sees_it_ended(runner):
    bench = await start_bench(runner, "acwallbox")
    sim = await bench.connect()
    tx = await sim.start_session(1, WHITELISTED)
    await sim.wait_for(lambda: tx.transaction_id is not None)
    connector = bench.station.connectors[1]
    await bench.watch.until(lambda: connector.transaction_id == tx.transaction_id)
    await ops.reset(bench.gw, bench.charger_id, "Hard")
    await sim.wait_for(lambda: sim.boot_count == 2 and sim.ready.is_set())
    assert bench.sent("StopTransaction") == []  # the charger never says the transaction ended
    await bench.watch.until(lambda: connector.status == "Preparing")
    # The charger reports the connector without a transaction after its reboot: the operator and
    # smart charging no longer count the transaction as running.
    assert connector.transaction_id is None
    [row] = await bench.transactions()
    assert row["status"] == "lost" and row["stop_time"] is None
    [line] = await bench.log_lines("TransactionLost")
    assert f"transaction {tx.transaction_id}" in line["message"]


async def test_operator_assigns_the_ac_wallbox_quirk_and_reservations_reach_it(runner):
    """No boot identifies this wallbox (the manual names no vendor/model), so its quirk file is
    assigned by name; it adds Reservation, which 3.1 supports but SupportedFeatureProfiles omits."""
    bench = await start_bench(runner, "acwallbox")
    sim = await bench.connect()
    gw, cid = bench.gw, bench.charger_id
    assert capabilities_of(bench.station).quirk_name is None
    with pytest.raises(OperationError, match="no quirk named"):
        await gw.device_book.update_device(cid, quirk="ac-wallbox-typo")
    await gw.device_book.update_device(cid, quirk="ac-wallbox")
    caps = capabilities_of(bench.station)
    assert (caps.quirk_name, caps.max_stack_level, caps.send_local_list_max_length) == ("ac-wallbox", 1, 5)
    answer = await ops.reserve_now(gw.actions, cid, 1, WHITELISTED, "2030-01-01T00:00:00Z", 11)
    assert answer["status"] == "Accepted" and sim.connectors[1].reservation_id == 11
    # The assignment is kept across a restart.
    await sim.go_offline()
    gw = await runner.restart(authorize={"policy": "none_except_whitelist"})
    assert capabilities_of(gw.registry.get(cid)).quirk_name == "ac-wallbox"
    await gw.device_book.update_device(cid, quirk="")
    assert capabilities_of(gw.registry.get(cid)).quirk_name is None


def limits(payload: dict) -> list[float]:
    return [p["limit"] for p in payload["csChargingProfiles"]["chargingSchedule"]["chargingSchedulePeriod"]]


async def test_a_car_starting_on_the_one_slot_wallbox_never_takes_the_site_over_its_limit(runner):
    """MaxChargingProfilesInstalled 1 (3.2.1): the one slot cannot hold both a start limit and a
    session's TxProfile, so the slot is a TxDefaultProfile on connector 1 (OCPP 1.6 3.13.1: it
    applies to that connector's transactions): the start limit while idle, the session's share
    while charging (same id: each write replaces the last), the start limit again after it."""
    first = await start_bench(runner, "generic", "CP-A")
    gw = first.gw
    wallbox = await add_bench(first, "acwallbox", "AC-1")
    sim_a, sim_b = await first.connect(), await wallbox.connect()
    await gw.charging.set_site_limit(None, 24.0)
    tx = await sim_a.start_session(1, WHITELISTED)
    await sim_a.wait_for(lambda: tx.transaction_id is not None)
    await gw.charging.reallocate()
    await first.watch.until(lambda: sim_a.connectors[1].offered_a == 24.0)
    sums = record_offered([sim_a, sim_b])
    tx = await sim_b.start_session(1, WHITELISTED)  # before any pass gave it a share
    await sim_b.wait_for(lambda: tx.transaction_id is not None)
    assert sim_b.connectors[1].offered_a in (0.0, 12.0)  # the start limit (or its share: the worker's pass)
    await gw.charging.reallocate()
    await first.watch.until(lambda: sim_a.connectors[1].offered_a + sim_b.connectors[1].offered_a == 24.0)
    assert sim_b.connectors[1].offered_a > 0.0
    assert sums and max(sums) <= 24.0, sums
    written = wallbox.received("SetChargingProfile")
    slots = {(p["connectorId"], p["csChargingProfiles"]["chargingProfileId"],
              p["csChargingProfiles"]["chargingProfilePurpose"]) for p in written}
    assert slots == {(1, 900001, "TxDefaultProfile")}
    assert [limits(p) for p in written] == [[0.0], [12.0]]  # the start limit, then the share
    await sim_b.stop_session(1)
    await gw.charging.reallocate()
    await first.watch.until(lambda: sim_a.connectors[1].offered_a == 24.0)
    assert [limits(p) for p in wallbox.received("SetChargingProfile")][2:] == [[0.0]]  # ready for the next car
    assert sim_b.profiles.limit_a(1, sim_b.now(), None) == 0.0
    await gw.charging.set_site_limit(None, None)
    await gw.charging.reallocate()
    assert [p["id"] for p in wallbox.received("ClearChargingProfile")] == [900001]


async def wallbox_restarted_at_16_a(runner, lost=lambda sim: None) -> tuple[Bench, Simulator]:
    """A wallbox charging at a 16 A share in its one slot, the gateway restarted while it was
    away (`lost`: what happens to it meanwhile); it reconnects without booting."""
    bench = await start_bench(runner, "acwallbox")
    sim = await bench.connect(with_firmware(load_profile("acwallbox"), boot_on_reconnect=False))
    await bench.gw.charging.set_site_limit(None, 16.0)
    await bench.gw.charging.reallocate()  # the start limit in its slot
    tx = await sim.start_session(1, WHITELISTED)
    await sim.wait_for(lambda: tx.transaction_id is not None)
    await bench.gw.charging.reallocate()
    assert [limits(p) for p in bench.received("SetChargingProfile")] == [[0.0], [16.0]]
    await sim.wait_for(lambda: len(bench.received("GetCompositeSchedule")) == 1)  # verified once
    await sim.go_offline()
    lost(sim)
    bench.gw = await runner.restart(authorize={"policy": "none_except_whitelist"})
    await sim.go_online()
    await bench.watch.until(lambda: bench.station.online)
    return bench, sim


async def test_after_a_gateway_restart_the_wallbox_slot_is_neither_rewritten_nor_forgotten(runner):
    """The share in the wallbox's one slot is kept across a gateway restart like a TxProfile's:
    not written again while unchanged, checked where the charger can say (GetCompositeSchedule),
    set back to the start limit when the session ends."""
    bench, sim = await wallbox_restarted_at_16_a(runner)
    gw = bench.gw
    for _ in range(3):
        await gw.charging.reallocate()
    await sim.wait_for(lambda: len(bench.received("GetCompositeSchedule")) == 2)  # and after the restart
    assert [limits(p) for p in bench.received("SetChargingProfile")] == [[0.0], [16.0]]
    await sim.stop_session(1)
    await bench.watch.until(lambda: bench.station.connectors[1].transaction_id is None)
    await gw.charging.reallocate()
    assert [limits(p) for p in bench.received("SetChargingProfile")] == [[0.0], [16.0], [0.0]]
    assert sim.profiles.limit_a(1, sim.now(), None) == 0.0


async def test_a_wallbox_that_lost_its_slot_while_the_gateway_was_away_gets_its_share_again(runner):
    """It offers its maximum again (GetCompositeSchedule says 32 A, not the 16 A it accepted)."""
    bench, sim = await wallbox_restarted_at_16_a(runner, lambda sim: sim.profiles.clear(900001, None, None, None))
    await bench.gw.charging.reallocate()
    await sim.wait_for(lambda: len(bench.received("SetChargingProfile")) == 3)
    assert [limits(p) for p in bench.received("SetChargingProfile")] == [[0.0], [16.0], [16.0]]
    await sim.wait_for(lambda: sim.limit_a(1) == 16.0)
