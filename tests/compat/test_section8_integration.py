"""The Smappee integration test (manual 000, section 8), run against each of the four chargers.

Section 8 goes through: remote reset, GetConfiguration, set inoperative, an invalid/unknown RFID,
a whitelisted RFID, RemoteStart and RemoteStop, offline charging; "the relevant logging ... should
be monitored to ensure there are no errors. All transactions should be logged correctly with
correct timestamps and meter readings." Each story runs for the Smappee (000), the AC wallbox
(001), the zappi (003) and the EVlink (004) simulator profiles, against the real gateway.
"""

from __future__ import annotations

import pytest

from gateway.model.timestamps import parse_timestamp
from gateway.ocpp.summaries import shown_value
from gateway.operator import actions as ops
from tests.compat.harness import PROFILES, UNKNOWN, WHITELISTED, Bench, start_bench
from tests.conftest import GatewayRunner

pytestmark = pytest.mark.parametrize("profile", PROFILES)


async def bench_for(runner: GatewayRunner, profile: str) -> Bench:
    bench = await start_bench(runner, profile)
    await bench.connect()
    return bench


def instants(*texts: str) -> tuple[float | None, ...]:
    """Timestamps as instants: the gateway stores them normalised to milliseconds, UTC."""
    return tuple(parse_timestamp(t) for t in texts)


async def assert_no_errors_logged(bench: Bench) -> None:
    """Section 8: 'ensure there are no errors' in the central system's logging."""
    rows = await bench.log_lines()
    errors = [r for r in rows if r["level"] == "error" or r["message_type"].endswith("Error")]
    assert errors == []


async def test_remote_reset_reboots_the_charger_and_its_kept_configuration_stays(runner, profile):
    bench = await bench_for(runner, profile)
    sim, gw = bench.sim, bench.gw
    before = dict(bench.station.config)
    answer = await ops.reset(gw.actions, bench.charger_id, "Soft")
    assert answer["status"] == "Accepted"
    await sim.wait_for(lambda: sim.boot_count == 2 and sim.ready.is_set())
    await bench.watch.until(lambda: bench.station.online and bench.station.boot_status == "Accepted")
    # Same vendor, model, serial and firmware, nothing pending: the kept keys are still the
    # charger's, so the reboot costs no read (issue 17 item 2).
    await bench.watch.until(lambda: len(bench.station.config) >= len(before))
    for _ in range(50):
        lines = await bench.log_lines("ConfigurationRead")
        if len(lines) >= 2:
            break
    assert "not read again" in lines[-1]["message"]
    assert {k: e.value for k, e in bench.station.config.items()} == {k: e.value for k, e in before.items()}
    types = await bench.log_types()
    assert {"ResetRequest", "ResetConfirmation", "Disconnected"} <= set(types)
    assert types.count("BootNotificationConfirmation") == 2
    await assert_no_errors_logged(bench)


async def test_soft_reset_during_a_transaction_stops_it_with_the_reset_reason(runner, profile):
    bench = await bench_for(runner, profile)
    sim = bench.sim
    tx = await sim.start_session(1, WHITELISTED)
    await sim.wait_for(lambda: tx.transaction_id is not None)
    await ops.reset(bench.gw, bench.charger_id, "Soft")
    await sim.wait_for(lambda: sim.boot_count == 2 and sim.ready.is_set())
    [row] = await bench.transactions()
    assert (row["status"], row["stop_reason"]) == ("stopped", "SoftReset")
    await bench.watch.until(lambda: bench.station.connectors[1].transaction_id is None)


async def test_configuration_is_read_completely_within_the_key_limit(runner, profile):
    bench = await bench_for(runner, profile)
    sim, station = bench.sim, bench.station
    # Every key the charger has is in the operator's view, with the charger's value and access
    # (a password, such as the site password in AuthorizationKey, shown as "(hidden)").
    assert {k: e.value for k, e in station.config.items() if k in sim.config.values} == {
        k: shown_value(k, v) for k, v in sim.config.values.items()}
    assert all(station.config[k].readonly == sim.config.specs[k].readonly for k in sim.config.values)
    max_keys = sim.config.get_int("GetConfigurationMaxKeys", 0)
    if max_keys:
        assert all(len(p.get("key") or []) <= max_keys for p in bench.received("GetConfiguration"))
    stored = {r["key"]: r["value"] for r in await bench.gw.history.load_config(bench.charger_id)}
    assert {k: stored[k] for k in sim.config.values} == {k: shown_value(k, v) for k, v in sim.config.values.items()}
    [line] = await bench.log_lines("ConfigurationRead")
    assert "incomplete" not in line["message"]
    # An operator's read (GetConfiguration without keys) answers the same keys.
    read = await ops.get_configuration(bench.gw, bench.charger_id)
    assert read["keys"] >= len(sim.config.values) and read["status"] is None
    await assert_no_errors_logged(bench)


async def test_set_inoperative_makes_the_connector_unavailable_and_operative_again(runner, profile):
    bench = await bench_for(runner, profile)
    gw, cid = bench.gw, bench.charger_id
    answer = await ops.change_availability(gw.actions, cid, "Inoperative", 1)
    assert answer["status"] == "Accepted"
    connector = bench.station.connectors[1]
    await bench.watch.until(lambda: connector.status == "Unavailable")
    assert (connector.availability, connector.availability_answer) == ("Inoperative", "Accepted")
    assert await bench.sim.start_session(1, WHITELISTED) is None  # an inoperative connector does not charge
    assert (await ops.change_availability(gw.actions, cid, "Operative", 1))["status"] == "Accepted"
    await bench.watch.until(lambda: connector.status == "Available")
    assert connector.availability == "Operative"
    await assert_no_errors_logged(bench)


async def test_set_inoperative_while_busy_is_scheduled_until_the_car_leaves(runner, profile):
    """OCPP 1.6 5.2: Scheduled during a transaction; zappi 'Change Availability': until the next unplug."""
    bench = await bench_for(runner, profile)
    sim, gw, cid = bench.sim, bench.gw, bench.charger_id
    tx = await sim.start_session(1, WHITELISTED)
    await sim.wait_for(lambda: tx.transaction_id is not None)
    answer = await ops.change_availability(gw.actions, cid, "Inoperative", 1)
    connector = bench.station.connectors[1]
    assert answer["status"] == "Scheduled"
    assert (connector.availability, connector.availability_answer) == ("Inoperative", "Scheduled")
    await sim.stop_session(1, "Local")
    await sim.unplug(1)
    await bench.watch.until(lambda: connector.status == "Unavailable")
    [row] = await bench.transactions()
    assert row["status"] == "stopped"


async def test_unknown_rfid_is_refused_and_nothing_is_charged(runner, profile):
    bench = await bench_for(runner, profile)
    assert await bench.sim.start_session(1, UNKNOWN) is None
    [(request, answer)] = bench.sent("Authorize")
    assert request["id_tag"] == UNKNOWN and answer.id_tag_info["status"] == "Invalid"
    assert await bench.transactions() == []
    assert bench.sent("StartTransaction") == []
    lines = await bench.log_lines("AuthorizeConfirmation")
    assert any("Invalid" in r["message"] for r in lines)


async def test_whitelisted_rfid_charges_and_the_transaction_is_logged_with_timestamps_and_meter(
        runner, profile):
    bench = await bench_for(runner, profile)
    sim = bench.sim
    tx = await sim.start_session(1, WHITELISTED)
    await sim.wait_for(lambda: tx.transaction_id is not None)
    await bench.watch.until(lambda: bench.station.connectors[1].transaction_id == tx.transaction_id)
    assert bench.station.connectors[1].status == "Charging"
    sim.advance(600)
    await sim.send_meter_values(1)
    sim.advance(600)
    await sim.stop_session(1, "Local")
    await sim.wait_for(lambda: not sim.pending)
    [(start, _)] = bench.sent("StartTransaction")
    [(stop, _)] = bench.sent("StopTransaction")
    [row] = await bench.transactions()
    assert row["transaction_id"] == tx.transaction_id and row["id_tag"] == WHITELISTED
    assert instants(row["start_time"], row["stop_time"]) == instants(start["timestamp"], stop["timestamp"])
    assert (row["start_meter_wh"], row["stop_meter_wh"]) == (start["meter_start"], stop["meter_stop"])
    assert row["total_meter_wh"] > 0 and row["minutes_charged"] == 20
    assert (row["status"], row["stop_reason"]) == ("stopped", "Local")
    # Meter readings: each sample once (transactionData repeats the MeterValues), on connector 1,
    # from Transaction.Begin to Transaction.End.
    samples = await bench.meter_samples()
    keys = [(s["ts"], s["measurand"], s["phase"], s["location"]) for s in samples]
    assert len(keys) == len(set(keys))
    assert {(s["connector_id"], s["transaction_id"]) for s in samples} == {(1, tx.transaction_id)}
    energy = sorted((s for s in samples if s["measurand"] == "Energy.Active.Import.Register"),
                    key=lambda s: instants(s["ts"]))
    assert [s["context"] for s in energy] == ["Transaction.Begin", "Sample.Periodic", "Transaction.End"]
    assert [s["value"] for s in energy][::2] == [row["start_meter_wh"], row["stop_meter_wh"]]
    await bench.watch.until(lambda: bench.station.connectors[1].transaction_id is None)
    assert bench.station.connectors[1].status == "Finishing"
    await assert_no_errors_logged(bench)


async def test_remote_start_and_remote_stop(runner, profile):
    bench = await bench_for(runner, profile)
    sim, gw, cid = bench.sim, bench.gw, bench.charger_id
    await sim.plug_in(1)
    answer = await ops.remote_start_transaction(gw.actions, cid, WHITELISTED, connector_id=1)
    assert answer["status"] == "Accepted"
    connector = bench.station.connectors[1]
    await bench.watch.until(lambda: connector.transaction_id is not None and connector.status == "Charging")
    tx_id = connector.transaction_id
    stop = await ops.remote_stop_transaction(gw.actions, cid, connector_id=1)
    assert (stop["status"], stop["transaction_id"]) == ("Accepted", tx_id)
    await bench.watch.until(lambda: connector.transaction_id is None)
    [row] = await bench.transactions()
    assert (row["transaction_id"], row["id_tag"], row["stop_reason"]) == (tx_id, WHITELISTED, "Remote")
    types = await bench.log_types()
    assert {"RemoteStartTransactionConfirmation", "RemoteStopTransactionConfirmation"} <= set(types)
    await assert_no_errors_logged(bench)


async def test_offline_charging_is_delivered_with_its_original_timestamps(runner, profile):
    bench = await bench_for(runner, profile)
    sim = bench.sim
    # The card was swiped online once: it is in the charger's authorization cache, which is what a
    # charger that refuses unknown ids offline (AC wallbox, AllowOfflineTxForUnknownId false) checks.
    assert await sim.authorize(WHITELISTED) == "Accepted"
    first = await sim.start_session(1, WHITELISTED)
    await sim.wait_for(lambda: first.transaction_id is not None)
    await sim.go_offline()
    await bench.watch.until(lambda: not bench.station.connected)
    sim.advance(900)
    await sim.send_meter_values(1)
    sim.advance(900)
    await sim.stop_session(1, "Local")
    sim.advance(300)
    second = await sim.start_session(1, WHITELISTED)  # started, metered and stopped while offline
    assert second is not None and second.transaction_id is None
    sim.advance(900)
    await sim.send_meter_values(1)
    sim.advance(900)
    await sim.stop_session(1, "Local")
    await sim.unplug(1)  # back online it reports Available before the queued messages
    queued = [q.action for q in sim.pending]
    assert queued == ["MeterValues", "StopTransaction", "StartTransaction", "MeterValues", "StopTransaction"]
    await sim.go_online()
    await sim.wait_for(lambda: not sim.pending)
    starts = [p for p, _ in bench.sent("StartTransaction")]
    stops = [p for p, _ in bench.sent("StopTransaction")]
    rows = await bench.transactions()
    assert [r["transaction_id"] for r in rows] == [first.transaction_id, second.transaction_id]
    for row, start, stop in zip(rows, starts, stops, strict=True):
        assert instants(row["start_time"], row["stop_time"]) == instants(start["timestamp"], stop["timestamp"])
        assert (row["start_meter_wh"], row["stop_meter_wh"]) == (start["meter_start"], stop["meter_stop"])
        assert row["status"] == "stopped" and row["minutes_charged"] == 30
        assert row["total_meter_wh"] > 0
    # Every periodic sample sent while offline is stored with its own timestamp and transaction.
    samples = await bench.meter_samples()
    for (payload, _) in bench.sent("MeterValues"):
        ts = payload["meter_value"][0]["timestamp"]
        assert any(instants(s["ts"]) == instants(ts) and s["transaction_id"] == payload["transaction_id"]
                   and s["connector_id"] == 1 for s in samples)
    await bench.watch.until(lambda: bench.station.connectors[1].transaction_id is None)
    types = await bench.log_types()
    assert types.count("Connected") == 2 and "Disconnected" in types
    await assert_no_errors_logged(bench)
