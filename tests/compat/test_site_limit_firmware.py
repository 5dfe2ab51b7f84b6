"""The site limit holds with real charger firmware, across restarts (issue 13, items 1-3, 5, 6, 9).

The simulator is switched to the behaviours of real charge-point stacks (shared notes on real
firmware): it rejects a TxProfile for a transaction it no longer knows, replays queued
MeterValues before the StopTransaction after the central system was away, ramps a car up over
seconds, sends clock-aligned `Current.Import 0` outside transactions, reconnects without booting.
"""

from __future__ import annotations

import time

from gateway.operator import actions as ops
from gateway.simulator import Simulator
from gateway.simulator.profile import load_profile, with_firmware
from tests.compat.harness import WHITELISTED, Bench, add_bench, record_offered, start_bench


def limits(payload: dict) -> list[float]:
    return [p["limit"] for p in payload["csChargingProfiles"]["chargingSchedule"]["chargingSchedulePeriod"]]


def for_tx(bench: Bench, tx_id: int) -> list[dict]:
    return [p for p in bench.received("SetChargingProfile")
            if p["csChargingProfiles"].get("transactionId") == tx_id]


async def charging(sim: Simulator) -> int:
    tx = await sim.start_session(1, WHITELISTED)
    await sim.wait_for(lambda: tx.transaction_id is not None)
    return tx.transaction_id


async def test_a_dead_transaction_gets_no_profile_storm_and_the_next_session_its_share(runner):
    """Item 1: the charger ended its transaction while the gateway was down and replays its
    MeterValues before the StopTransaction; its TxProfile is rejected, not re-sent each pass,
    and dropped with the transaction, so the next session still gets the site share."""
    bench = await start_bench(runner, "generic")
    sim = await bench.connect(with_firmware(load_profile("generic"), reject_unknown_transaction=True,
                                            meter_while_offline=True))
    gw = bench.gw
    await gw.charging.set_site_limit(None, 16.0)
    dead = await charging(sim)
    await gw.charging.reallocate()
    assert limits(for_tx(bench, dead)[-1]) == [16.0]
    await sim.go_offline()
    await sim.send_meter_values(1)  # queued while the central system is away
    await sim.stop_session(1)
    stop = sim.pending.pop()  # a slow replay: the StopTransaction comes later
    assert stop.action == "StopTransaction" and [q.action for q in sim.pending] == ["MeterValues"]
    bench.gw = gw = await runner.restart(authorize={"policy": "none_except_whitelist"})
    before = len(for_tx(bench, dead))
    await sim.go_online()
    for _ in range(5):  # the worker passes of several seconds
        await gw.charging.reallocate()
    rejected = for_tx(bench, dead)[before:]
    assert len(rejected) == 1, "one try, then back-off"
    assert gw.charging.status()["connectors"][f"{bench.charger_id}/1"]["send_state"] == "Rejected"
    sim.pending.append(stop)
    await sim.flush()
    for _ in range(3):
        await gw.charging.reallocate()
    assert len(for_tx(bench, dead)) == before + 1
    assert gw.charging.status()["writes"][bench.charger_id]["pending"] == 0
    assert gw.charging.status()["connectors"] == {}  # the ended session holds no share
    following = await charging(sim)
    await gw.charging.reallocate()
    assert limits(for_tx(bench, following)[-1]) == [16.0]
    # The simulator applies an accepted profile after its answer (deferred): wait for it.
    await bench.watch.until(lambda: sim.connectors[1].offered_a == 16.0)


async def test_a_changed_share_for_a_dead_transaction_waits_out_the_back_off_too(runner):
    """The back-off belongs to the charger's connector and transaction, not to one payload: a
    new limit (a new share) for the transaction the charger rejected is not tried at once.
    (Without a start limit: with one, a session whose charger refused its share is counted at the
    start limit it applies and told no more.)"""
    bench = await start_bench(runner, "generic", smart_charging={"start_limit_a": None})
    sim = await bench.connect(with_firmware(load_profile("generic"), reject_unknown_transaction=True))
    gw = bench.gw
    t = [time.time()]
    gw.charging.clock = lambda: t[0]
    tx = await charging(sim)
    sim.connectors[1].transaction.transaction_id = tx + 100  # the charger lost track of it
    await gw.charging.set_site_limit(None, 16.0)
    await gw.charging.reallocate()
    assert [limits(p) for p in for_tx(bench, tx)] == [[16.0]]
    for amps in (12.0, 10.0, 14.0):  # the BMS moves the limit within the back-off
        t[0] += 1
        await gw.charging.set_site_limit(None, amps)
        await gw.charging.reallocate()
    assert len(for_tx(bench, tx)) == 1
    assert gw.charging.status()["connectors"][f"{bench.charger_id}/1"]["send_state"] == "Rejected"
    t[0] += 5  # the back-off is over: the newest share goes out once
    await gw.charging.reallocate()
    assert [limits(p) for p in for_tx(bench, tx)] == [[16.0], [14.0]]


async def test_clearing_the_limit_drops_a_rejected_wish(runner):
    bench = await start_bench(runner, "generic")
    sim = await bench.connect(with_firmware(load_profile("generic"), reject_unknown_transaction=True))
    gw = bench.gw
    tx = await charging(sim)
    sim.connectors[1].transaction.transaction_id = tx + 100  # the charger lost track of it
    await gw.charging.set_site_limit(None, 16.0)
    await gw.charging.reallocate()
    assert gw.charging.status()["writes"][bench.charger_id]["pending"] == 1
    await gw.charging.set_site_limit(None, None)
    assert gw.charging.status()["writes"][bench.charger_id]["pending"] == 0


async def test_at_an_unchanged_limit_a_ramping_session_gets_one_profile_write(runner):
    """Item 2: 15 writes in 60 s at a constant 20 A, because readings taken before the offer
    settled (and a clock-aligned 0 A from before the start) were compared with the offer."""
    t = [time.time()]
    bench = await start_bench(runner, "generic")
    gw = bench.gw
    gw.charging.clock = lambda: t[0]
    sim = await bench.connect(with_firmware(load_profile("generic"), ramp_s=10.0, clock_aligned_outside_tx=True))
    await gw.charging.set_site_limit(None, 20.0)
    await sim.send_meter_values(1, "Sample.Clock")  # Current.Import 0, just before the start
    t[0] += 1
    sim.advance(1)
    await charging(sim)
    await gw.charging.reallocate()
    for _ in range(12):  # a minute of 5 s meter values while the car ramps up
        t[0] += 5
        sim.advance(5)
        await sim.send_meter_values(1)
        await gw.charging.reallocate()
    assert [limits(p) for p in bench.shares()] == [[20.0]]
    assert sim.connectors[1].current_a == 20.0
    # A car that settles clearly below its offer still lends the rest (one more write).
    sim.connectors[1].ev_max_current_a = 10.0
    for _ in range(4):
        t[0] += 5
        sim.advance(5)
        await sim.send_meter_values(1)
        await gw.charging.reallocate()
    assert [limits(p) for p in bench.shares()] == [[20.0], [12.0]]


async def test_ended_sessions_lose_their_share_everywhere(runner):
    """Item 3: the shares listed in `site status`, the API and the points add up to the limit."""
    first, sim_a, sim_b, _ = await two_charging(runner, 24.0)
    gw = first.gw
    table = gw.points.table
    requested = {c: table.get(f"{p.name}") for c, p in (
        ("CP-A", _point(table, "CP-A", "SC-Requested")), ("CP-B", _point(table, "CP-B", "SC-Requested")))}
    assert [table.read(p) for p in requested.values()] == [12.0, 12.0]
    await sim_b.stop_session(1)
    await gw.charging.reallocate()
    status = gw.charging.status()
    assert list(status["connectors"]) == ["CP-A/1"] and status["connectors"]["CP-A/1"]["requested_a"] == 24.0
    assert table.read(requested["CP-B"]) is None  # not available, not a stale 12 A
    assert table.read(_point(table, "CP-B", "SC-SendState")) == 1  # "Not available"
    assert table.read(_point(table, "CP-A", "SC-SendState")) == 2  # "Accepted"


def _point(table, charger_id: str, key: str):
    return next(p for p in table.points() if p.charger_id == charger_id and p.spec.key == key
                and p.connector_id == 1)


async def two_charging(runner, limit_a: float, **firmware) -> tuple[Bench, Simulator, Simulator, list[str]]:
    """CP-A and CP-B charging under a site current limit; one log of the profiles they receive."""
    first = await start_bench(runner, "generic", "CP-A")
    gw = first.gw
    second = await add_bench(first, "generic", "CP-B")
    profile = with_firmware(load_profile("generic"), **firmware)
    sim_a, sim_b = await first.connect(profile), await second.connect(profile)
    received: list[str] = []
    for sim in (sim_a, sim_b):
        sim.on_event = lambda line, cid=sim.charger_id: received.append(cid) if "<- SetChargingProfile" in line else None
    await gw.charging.set_site_limit(None, limit_a)
    await charging(sim_a)
    await charging(sim_b)
    await gw.charging.reallocate()
    assert (sim_a.connectors[1].offered_a, sim_b.connectors[1].offered_a) == (limit_a / 2, limit_a / 2)
    received.clear()
    return first, sim_a, sim_b, received


async def test_the_chargers_that_must_come_down_are_written_before_any_raise(runner):
    """Lower first, then raise: in between, the chargers never offer more than the limit."""
    bench, sim_a, sim_b, received = await two_charging(runner, 24.0)
    await bench.gw.device_book.update_device("CP-A", weight=3.0)  # CP-A up to 18 A, CP-B down to 6 A
    await bench.gw.charging.reallocate()
    assert received == ["CP-B", "CP-A"]
    assert (sim_a.connectors[1].offered_a, sim_b.connectors[1].offered_a) == (18.0, 6.0)
    await bench.gw.device_book.update_device("CP-B", weight=9.0)  # and the other way round
    await bench.gw.charging.reallocate()
    assert received == ["CP-B", "CP-A", "CP-A", "CP-B"]
    assert (sim_a.connectors[1].offered_a, sim_b.connectors[1].offered_a) == (6.0, 18.0)


async def test_a_cut_the_charger_refuses_holds_back_the_raise_it_would_pay_for(runner):
    bench, sim_a, sim_b, received = await two_charging(runner, 24.0, reject_unknown_transaction=True)
    gw = bench.gw
    sim_b.connectors[1].transaction.transaction_id += 100  # CP-B lost track of its transaction
    await gw.device_book.update_device("CP-A", weight=3.0)
    for _ in range(3):
        await gw.charging.reallocate()
    assert received == ["CP-B"]  # refused, then backed off; CP-A is not raised on its account
    assert sim_a.connectors[1].offered_a == 12.0
    assert gw.charging.status()["connectors"]["CP-B/1"]["allocation_reason"].startswith("fixed")


async def test_a_restart_keeps_what_the_charger_is_so_evlink_profiles_stay_adapted(runner):
    """Item 5: EVlink takes amperes only and no numberPhases; after a gateway restart it
    reconnects without a BootNotification, and its first profile must still be adapted."""
    bench = await start_bench(runner, "evlink")
    profile = with_firmware(load_profile("evlink"), boot_on_reconnect=False)
    sim = await bench.connect(profile)
    await sim.go_offline()
    bench.gw = gw = await runner.restart(authorize={"policy": "none_except_whitelist"})
    station = gw.registry.get(bench.charger_id)
    assert station.boot.vendor == profile.boot.charge_point_vendor
    assert gw.device_book.devices[bench.charger_id]["quirk_matched"] == "schneider-evlink"
    await sim.go_online()
    assert [n for n, _p, _a in sim.sent_calls].count("BootNotification") == 1
    await gw.charging.set_site_limit(22.0, None)
    await charging(sim)
    await gw.charging.reallocate()
    [payload] = bench.shares()
    assert all("numberPhases" not in p for p in payload["csChargingProfiles"]["chargingSchedule"][
        "chargingSchedulePeriod"])
    assert gw.charging.status()["connectors"][f"{bench.charger_id}/1"]["send_state"] == "Accepted"


async def holding_16_a(runner) -> tuple[Bench, Simulator, int]:
    """A charger in a transaction that accepted a 16 A share; it reconnects without booting."""
    bench = await start_bench(runner, "generic")
    sim = await bench.connect(with_firmware(load_profile("generic"), boot_on_reconnect=False))
    await bench.gw.charging.set_site_limit(None, 16.0)
    tx = await charging(sim)
    await bench.gw.charging.reallocate()
    return bench, sim, tx


async def restart_while_away(runner, bench: Bench, sim: Simulator, lost=lambda: None):
    """Restart the gateway while the charger is away (`lost`: what happens to it meanwhile)."""
    await sim.go_offline()
    lost()
    bench.gw = await runner.restart(authorize={"policy": "none_except_whitelist"})
    await sim.go_online()
    await bench.watch.until(lambda: bench.station.online)
    return bench.gw


async def test_a_restarted_gateway_does_not_rewrite_the_profile_a_charger_already_holds(runner):
    """What each charger accepted (per connector and transaction) and its write budget are in the
    device database: after a gateway restart an unchanged share is not written again (it was,
    once per session per restart), while a changed one is."""
    bench, sim, tx = await holding_16_a(runner)
    assert [limits(p) for p in for_tx(bench, tx)] == [[16.0]]
    for _ in range(2):
        gw = await restart_while_away(runner, bench, sim)
        for _ in range(3):
            await gw.charging.reallocate()
        assert len(bench.shares()) == 1
        connector = gw.charging.status()["connectors"][f"{bench.charger_id}/1"]
        assert (connector["written_a"], connector["send_state"]) == (16.0, "Accepted")
        assert gw.charging.writes_of(bench.charger_id)["last_hour"] == 2  # the share, the start limit
    await gw.charging.set_site_limit(None, 10.0)
    await gw.charging.reallocate()
    assert [limits(p) for p in for_tx(bench, tx)] == [[16.0], [10.0]]


async def test_a_charger_that_lost_its_profile_while_the_gateway_was_away_gets_it_again(runner):
    """Where the charger can say (GetCompositeSchedule), a restarted gateway checks that it still
    applies the share it accepted; one that offers another value (more: the sum would go over;
    less: its start limit, the car waits) is written again."""
    bench, sim, tx = await holding_16_a(runner)
    # Lost without a reboot the gateway could see.
    gw = await restart_while_away(runner, bench, sim, lambda: sim.profiles.clear(900001, None, None, None))
    await gw.charging.reallocate()
    await sim.wait_for(lambda: len(for_tx(bench, tx)) == 2)
    assert [limits(p) for p in for_tx(bench, tx)] == [[16.0], [16.0]]
    await sim.wait_for(lambda: sim.limit_a(1) == 16.0)


async def test_a_triggered_boot_is_not_a_reboot(runner):
    """Item 9: no configuration read again, no profile rewrite."""
    bench = await start_bench(runner, "generic")
    sim = await bench.connect()
    gw = bench.gw
    await gw.charging.set_site_limit(None, 16.0)
    await charging(sim)
    await gw.charging.reallocate()
    reads, writes = len(bench.received("GetConfiguration")), len(bench.shares())
    answer = await ops.trigger_message(gw.actions, bench.charger_id, "BootNotification")
    assert answer["status"] == "Accepted"
    await sim.wait_for(lambda: [n for n, _p, _a in sim.sent_calls].count("BootNotification") == 2)
    await sim.send_heartbeat()  # one more round trip: follow-up work would have started
    await gw.charging.reallocate()
    assert len(bench.received("GetConfiguration")) == reads
    assert len(bench.shares()) == writes
    assert "BootNotification" in await bench.log_types()


async def test_a_burst_of_bms_writes_becomes_one_profile_write(runner):
    """Item 6 (controller side): the last value within the coalescing window wins."""
    bench = await start_bench(runner, "generic")
    sim = await bench.connect()
    gw = bench.gw
    await gw.charging.set_site_limit(None, 30.0, source="bms")
    await charging(sim)
    await bench.watch.until(lambda: sim.connectors[1].offered_a == 30.0)
    writes = len(bench.shares())
    for value in range(100):
        await gw.charging.set_site_limit(None, 10.0 + value % 17, source="bms")
    await gw.charging.set_site_limit(None, 18.0, source="bms")
    await bench.watch.until(lambda: sim.connectors[1].offered_a == 18.0)
    assert len(bench.shares()) == writes + 1


async def test_a_charger_that_goes_offline_is_still_counted_at_what_it_applies(runner):
    """A charger keeps charging at its last profile while the gateway cannot reach it: the
    others must not take its share (the soak benchmark saw the sum go over after restarts)."""
    first, sim_a, sim_b, _ = await two_charging(runner, 24.0)
    gw = first.gw
    await sim_a.go_offline()
    await first.watch.until(lambda: not gw.registry.get("CP-A").online)
    await gw.charging.reallocate()
    assert (sim_a.connectors[1].offered_a, sim_b.connectors[1].offered_a) == (12.0, 12.0)
    assert gw.charging.status()["connectors"]["CP-A/1"]["allocation_reason"].startswith("fixed")


async def test_with_a_start_limit_a_new_session_starts_at_it_not_at_the_maximum(runner):
    """`smart_charging.start_limit_a`: while a site limit is in force each charger holds a
    TxDefaultProfile at that current, so a session that starts takes it until its share arrives."""
    bench = await start_bench(runner, "generic", smart_charging={"start_limit_a": 6.0})
    sim = await bench.connect()
    gw = bench.gw
    await gw.charging.set_site_limit(None, 24.0)
    await gw.charging.reallocate()
    [default] = bench.received("SetChargingProfile")
    profile = default["csChargingProfiles"]
    assert (default["connectorId"], profile["chargingProfilePurpose"], limits(default)) == (
        0, "TxDefaultProfile", [6.0])
    assert sim.profiles.limit_a(1, sim.now(), None) == 6.0  # what a new session is offered
    await charging(sim)
    await gw.charging.reallocate()
    await gw.charging.reallocate()
    assert [p["connectorId"] for p in bench.received("SetChargingProfile")] == [0, 1]  # not rewritten
    assert sim.connectors[1].offered_a == 24.0
    await gw.charging.set_site_limit(None, None)
    await gw.charging.reallocate()
    assert sorted(p["id"] for p in bench.received("ClearChargingProfile")) == [900000, 900001]


async def test_a_new_session_never_takes_the_site_over_its_limit_before_its_share_arrives(runner):
    """Issue 13 (the soak's "new sessions"): with the default settings, a binding limit fully
    shared by a running session, a car that starts on another charger must not offer the
    charger's maximum until its share arrives: the sum of offered currents stays within it."""
    first = await start_bench(runner, "generic", "CP-A")
    gw = first.gw
    second = await add_bench(first, "generic", "CP-B")
    sim_a, sim_b = await first.connect(), await second.connect()
    await gw.charging.set_site_limit(None, 24.0)
    await charging(sim_a)
    await gw.charging.reallocate()
    await first.watch.until(lambda: sim_a.connectors[1].offered_a == 24.0)
    sums = record_offered([sim_a, sim_b])
    await charging(sim_b)  # the newcomer: it starts at the 0 A start limit and waits for its share
    assert sim_b.connectors[1].offered_a in (0.0, 12.0)  # (the worker's pass may have sent it already)
    await gw.charging.reallocate()
    await second.watch.until(lambda: sim_b.connectors[1].offered_a > 0.0)
    await first.watch.until(lambda: sim_a.connectors[1].offered_a + sim_b.connectors[1].offered_a == 24.0)
    assert sums and max(sums) <= 24.0, sums


async def test_a_share_written_while_the_gateway_stops_is_held_after_the_restart(runner):
    """A charger stores (and applies) a profile before it answers. A gateway that stopped with
    that answer unread stored the old share as held, and after its restart counted the session
    at it while the charger applied the new one: the others got the difference (a sum above
    the limit). The pass in flight finishes before the gateway stores what the chargers hold."""
    first, sim_a, sim_b, _ = await two_charging(runner, 24.0, boot_on_reconnect=False, profile_answer_s=0.3)
    await sim_b.stop_session(1)  # CP-A's share goes up to 24 A
    # Woken by the write's arrival (re-checked on each message): stored and applied, not yet answered.
    await sim_a.wait_for(lambda: sim_a.limit_a(1) == 24.0)
    assert first.gw.charging.control[("CP-A", 1)].written_a == 12.0  # the gateway has no answer yet
    gw = await runner.restart(authorize={"policy": "none_except_whitelist"})
    assert gw.charging.control[("CP-A", 1)].written_a == 24.0


async def test_a_newcomer_that_waits_at_the_start_limit_costs_no_pause_write(runner):
    """Issue 13 (writes per session): a car that starts while four sessions share the whole limit
    waits, paused, until current frees (allocation rules 1 and 5). Its charger already applies
    the 0 A start limit, so pausing it with a 0 A TxProfile and resuming it later were two writes
    where its session is owed one: its share, once a running session ends."""
    first = await start_bench(runner, "generic", "CP-A")
    gw = first.gw
    benches = [first]
    for name in ("CP-B", "CP-C", "CP-D", "CP-E"):
        benches.append(await add_bench(first, "generic", name))
    sims = [await bench.connect() for bench in benches]
    await gw.charging.set_site_limit(None, 28.0)  # four at 7 A; a fifth's 6 A minimum does not fit
    for sim in sims[:4]:
        await charging(sim)
    await gw.charging.reallocate()
    await first.watch.until(lambda: [sim.connectors[1].offered_a for sim in sims[:4]] == [7.0] * 4)
    newcomer = await charging(sims[4])
    for _ in range(3):  # the worker's passes while it waits
        await gw.charging.reallocate()
    assert gw.charging.status()["connectors"]["CP-E/1"]["allocation_reason"].startswith("paused")
    assert for_tx(benches[4], newcomer) == []  # it applies the 0 A start limit already
    assert sims[4].connectors[1].offered_a == 0.0
    await sims[0].stop_session(1)
    await first.watch.until(lambda: gw.registry.get("CP-A").connectors[1].transaction_id is None)
    await gw.charging.reallocate()
    await benches[4].watch.until(lambda: sims[4].connectors[1].offered_a >= 6.0)
    [share] = for_tx(benches[4], newcomer)
    assert limits(share)[0] >= 6.0
