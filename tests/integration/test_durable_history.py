"""Nothing a charger was told is stored is lost, and no charger spoils another's data (issue 12).

The write path (`gateway.history.writer`): what a message makes the gateway keep is committed in a
real SQLite transaction before the answer; messages that arrive together share one commit; a
transaction commit never waits behind a backlog of log lines; a backlog beyond its bound makes
sessions wait; a unit SQLite refuses is set aside with its raw frame, the others are stored.
The database is read through a separate connection, as another process would after a crash.
"""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import aiohttp

from gateway.history.store import HistoryStore
from gateway.history.writer import HIGH, NORMAL, Unit
from gateway.main import main
from tests.conftest import GatewayRunner, wait_until
from tests.support.charger import TestCharger
from tests.support.database import query as _query

T0 = "2026-11-20T08:00:00Z"
TOO_BIG = 2**64  # valid JSON and valid for the schema; SQLite integers stop at 2**63 - 1


class HeldWriter:
    """Keeps the writer busy on one cycle, so that what is queued meanwhile shares the next one."""

    def __init__(self, store: HistoryStore) -> None:
        self.store = store
        self.release = threading.Event()
        self.entered = threading.Event()
        self.task: asyncio.Task[Any] | None = None

    async def __aenter__(self) -> HeldWriter:
        def hold() -> None:
            self.entered.set()
            self.release.wait(30)
        self.task = asyncio.create_task(self.store.writer.commit(Unit(HIGH, job=hold, origin="test hold")))
        await asyncio.to_thread(self.entered.wait, 30)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release.set()
        assert self.task is not None
        await self.task


def _meter_values(tx_id: int | None, ts: str, connector_id: int = 1) -> dict[str, Any]:
    payload: dict[str, Any] = {"connectorId": connector_id, "meterValue": [
        {"timestamp": ts, "sampledValue": [{"value": "1234", "measurand": "Energy.Active.Import.Register"}]}]}
    if tx_id is not None:
        payload["transactionId"] = tx_id
    return payload


async def _start(cp: TestCharger, connector_id: int = 1) -> int:
    answer = await cp.call("StartTransaction", {"connectorId": connector_id, "idTag": "TAG1",
                                                "meterStart": 0, "timestamp": T0})
    return int(answer["transactionId"])


async def test_meter_values_and_the_exchange_log_are_committed_before_the_answer(gateway, runner: GatewayRunner):
    """Issue 12: MeterValues were answered before they were written (lost on kill -9)."""
    db = gateway.settings.database.path
    await gateway.device_book.add_device("CP1")
    async with TestCharger(runner.url, "CP1") as cp:
        await cp.boot()
        tx_id = await _start(cp)
        await cp.call("MeterValues", _meter_values(tx_id, "2026-11-20T08:01:00Z"))
        # Answered: committed, without any flush, as another connection sees it.
        assert _query(db, "SELECT transaction_id, ts, energy_wh FROM meter_values") == [
            (tx_id, "2026-11-20T08:01:00Z", 1234.0)]
        # The exchange's general-log line is kept with its row (the log shows it from there).
        assert _query(db, "SELECT logged FROM meter_values") == [
            (f"Connector: 1; 1 value(s); Transaction: {tx_id}; Energy: 1234 Wh",)]


async def test_messages_that_arrive_together_share_one_commit(gateway, runner: GatewayRunner):
    writer = gateway.history.writer
    for i in range(3):
        await gateway.device_book.add_device(f"CP{i}")
    chargers = [await TestCharger(runner.url, f"CP{i}").connect() for i in range(3)]
    try:
        for cp in chargers:
            await cp.boot()
        async with HeldWriter(gateway.history):
            calls = [asyncio.create_task(cp.call("MeterValues", _meter_values(None, f"2026-11-20T08:0{i}:00Z")))
                     for i, cp in enumerate(chargers)]
            await wait_until(lambda: writer.queued_units() >= 3)
            before = writer.commits
        await asyncio.gather(*calls)
        assert writer.commits - before <= 2  # the held cycle, then one for all three
    finally:
        for cp in chargers:
            await cp.close()
    assert len(_query(gateway.settings.database.path, "SELECT id FROM meter_values")) == 3


async def test_a_guest_bad_row_does_not_take_an_honest_stop_with_it(runner: GatewayRunner):
    """Issue 12: a guest's MeterValues with connectorId 2**64 queued beside an honest
    StopTransaction made the whole batch fail: the Stop got InternalError and was not recorded."""
    gw = await runner.start(registration={"guest_response": "Accepted"})
    await gw.device_book.add_device("HONEST")
    db = gw.settings.database.path
    async with TestCharger(runner.url, "HONEST") as honest, TestCharger(runner.url, "GUEST") as guest:
        await honest.boot()
        await guest.boot()
        tx_id = await _start(honest)
        await honest.call("MeterValues", _meter_values(tx_id, "2026-11-20T08:01:00Z"))
        bad = json.dumps([2, "bad-1", "MeterValues", _meter_values(None, T0, TOO_BIG)])
        async with HeldWriter(gw.history):
            guest_reply = asyncio.create_task(guest.send_raw(bad, "bad-1"))
            stop = asyncio.create_task(honest.call("StopTransaction", {
                "transactionId": tx_id, "meterStop": 5000, "timestamp": "2026-11-20T09:00:00Z"}))
            both = {("GUEST", "MeterValues"), ("HONEST", "StopTransaction")}
            await wait_until(lambda: both <= set(gw.history.writer.queued()) or guest_reply.done())
        assert await stop == {}
        reply = await guest_reply
        # Refused by the database here, or earlier by validation (a value beyond 64 bits).
        assert reply[0] == 4 and reply[2] in ("TypeConstraintViolation", "PropertyConstraintViolation")
        # The guest's session is still up, and the honest charger's data is all there.
        assert "currentTime" in await guest.call("Heartbeat", {})
    assert _query(db, "SELECT status, stop_meter_wh FROM transactions WHERE transaction_id = ?", tx_id) == [
        ("stopped", 5000.0)]
    assert len(_query(db, "SELECT id FROM meter_values WHERE identifier = 'HONEST'")) == 1
    async with aiohttp.ClientSession(headers=runner.admin_headers) as http, \
            http.get(runner.admin_url + "/api/status") as resp:
        store = (await resp.json())["store"]
    assert store["group_commits"] > 0 and not store["reading_paused"]


async def test_a_batch_that_fails_is_retried_unit_by_unit_and_only_the_bad_one_is_set_aside(tmp_path: Path, capsys):
    store = HistoryStore(tmp_path / "h.sqlite")
    await store.open()
    try:
        async with HeldWriter(store):
            store.log("CP1", "Note", "before")
            store.queue_meter_value(("CP1", 1, 7, T0, 10.0, "[]", 1))
            bad = store.exchange("GUEST", "MeterValues", '[2,"x","MeterValues",{"connectorId":18446744073709551616}]')
            with bad:
                store.queue_meter_value(("GUEST", TOO_BIG, None, T0, None, "[]", 1))
                bad_commit = asyncio.create_task(bad.commit())
            store.log("CP1", "Note", "bad \ud800 surrogate")  # a lone surrogate SQLite cannot encode
            store.queue_meter_value(("CP1", 1, 7, "2026-11-20T08:01:00Z", 11.0, "[]", 1))
            start = asyncio.create_task(store.start_transaction("CP1", 1, "TAG", 0.0, T0, "Accepted", None))
            await wait_until(lambda: store.writer.queued_units() >= 5)
        tx_id, is_new = await start
        assert is_new
        try:
            await bad_commit
            raise AssertionError("the bad unit was acknowledged")
        except Exception as exc:
            assert getattr(exc, "code", "") == "TypeConstraintViolation"
        await store.flush_log()
        assert [r["message"] for r in await store.general_log("CP1")] == ["before"]
        assert [r["energy_wh"] for r in await store.run(lambda: list(store.db["meter_values"].rows))] == [10.0, 11.0]
        rejected = await store.rejected()
        assert [r["identifier"] for r in rejected] == ["GUEST", "CP1"]
        assert "18446744073709551616" in rejected[0]["frame"]
        assert await store.transaction(tx_id) is not None
    finally:
        await store.close()
    # The operator sees what was set aside: `ocpp-gateway history rejected` (here from the file).
    code = await asyncio.to_thread(main, ["history", "rejected", "--db", store.path, "--csv", "-"])
    out = capsys.readouterr().out
    assert code == 0 and "GUEST" in out and "18446744073709551616" in out and "OverflowError" in out


async def test_a_transaction_commit_never_waits_behind_a_backlog_of_log_lines(tmp_path: Path):
    store = HistoryStore(tmp_path / "h.sqlite")
    await store.open()
    backlog = 3 * store.writer.backlog_limit // 2
    try:
        async with HeldWriter(store):
            for i in range(backlog):
                store.log("NOISY", "Note", f"line {i}")
            start = asyncio.create_task(store.start_transaction("CP1", 1, "TAG", 0.0, T0, "Accepted", None))
            await wait_until(lambda: store.writer.queued_units() >= backlog + 1)
            # Beyond the bound: sessions wait before reading more from their chargers.
            assert not store.writer.has_room
        await start
        written = _query(store.path, "SELECT COUNT(*) FROM general_log")[0][0]
        assert written < backlog // 2  # committed long before the backlog
        await store.room()
        await store.flush_log()
        assert store.writer.has_room
        assert _query(store.path, "SELECT COUNT(*) FROM general_log")[0][0] == backlog
    finally:
        await store.close()


async def test_under_load_commits_are_paced_so_that_more_messages_share_one(tmp_path: Path):
    """Back-to-back commits of a few messages each spent more CPU on fsyncs than on the messages
    (docs/benchmarks.md): a commit starts no sooner than `commit_interval_s` after the last one
    began, unless the last one is older than that (a quiet site waits for nothing)."""
    store = HistoryStore(tmp_path / "h.sqlite", commit_interval_s=1.5)
    await store.open()
    writer = store.writer
    try:
        await writer.commit(Unit(NORMAL, rows=[("kv", ("test", "quiet", "1"))]))
        assert (writer.commits, writer.paced) == (1, 0)  # the first in a while: at once
        first = asyncio.create_task(writer.commit(Unit(NORMAL, rows=[("kv", ("test", "a", "1"))])))
        await wait_until(lambda: writer.pacing)
        second = asyncio.create_task(writer.commit(Unit(NORMAL, rows=[("kv", ("test", "b", "1"))])))
        await wait_until(lambda: writer.queued_units() == 2)
        assert _query(store.path, "SELECT COUNT(*) FROM kv WHERE scope = 'test'")[0][0] == 1
        await asyncio.wait_for(asyncio.gather(first, second), 10)
        assert writer.commits == 2
        assert writer.paced == 1 and writer.stats()["paced_commits"] == 1
        assert _query(store.path, "SELECT COUNT(*) FROM kv WHERE scope = 'test'")[0][0] == 3
    finally:
        await store.close()


async def test_a_transaction_or_a_reader_waiting_for_the_queue_is_never_paced(tmp_path: Path):
    """Pacing is for chargers' exchanges under load: a Start/Stop, or a reader that drains the
    queue first (the points' restore after a restart drains once per charger), commits at once."""
    store = HistoryStore(tmp_path / "h.sqlite", commit_interval_s=60.0)
    await store.open()
    writer = store.writer
    try:
        await writer.commit(Unit(NORMAL, rows=[("kv", ("test", "quiet", "1"))]))
        paced = asyncio.create_task(writer.commit(Unit(NORMAL, rows=[("kv", ("test", "a", "1"))])))
        await wait_until(lambda: writer.pacing)
        await asyncio.wait_for(store.flush_log(), 10)  # not a minute
        assert paced.done()
        _tx_id, is_new = await asyncio.wait_for(
            store.start_transaction("CP1", 1, "TAG", 0.0, T0, "Accepted", None), 10)
        assert is_new
    finally:
        await store.close()


async def test_a_clean_stop_keeps_everything_queued(tmp_path: Path):
    store = HistoryStore(tmp_path / "h.sqlite")
    await store.open()
    for i in range(100):
        store.log("CP1", "Note", f"line {i}")
    await store.close()
    assert _query(tmp_path / "h.sqlite", "SELECT COUNT(*) FROM general_log")[0][0] == 100
    assert _query(tmp_path / "h.sqlite", "PRAGMA integrity_check") == [("ok",)]


async def test_the_page_cache_is_bounded(tmp_path: Path):
    """SQLite's default 2,000 KiB page cache filled under load and stayed in the RSS (schema.CACHE_KIB)."""
    store = HistoryStore(tmp_path / "gateway.sqlite")
    await store.open()
    try:
        assert await store.run(lambda: store.db.conn.execute("PRAGMA cache_size").fetchone()[0]) == -512
        # A large commit keeps its pages rather than writing them out early (it cost 20-25 % CPU).
        assert await store.run(lambda: store.db.conn.execute("PRAGMA cache_spill").fetchone()[0]) == 0
    finally:
        await store.close()


async def test_a_new_charger_s_points_are_persisted_in_one_background_write(gateway, runner: GatewayRunner):
    """Issue 12: each new point was its own durable write (38 per AC wallbox), on the same writer
    as the transaction commits; 200 new chargers waited p50 2.4 s for StartTransaction."""
    from points.table import OFFSETS_SCOPE

    await gateway.device_book.add_device("CP1")
    service = gateway.points
    await service.flush()
    written = gateway.history.writer.written
    before = written["points"]
    measurands = ["Voltage", "Current.Import", "Power.Active.Import", "Frequency", "Temperature", "SoC"]
    async with TestCharger(runner.url, "CP1") as cp:
        await cp.boot()
        await cp.call("MeterValues", {"connectorId": 1, "meterValue": [{"timestamp": T0, "sampledValue": [
            {"value": "1", "measurand": m, "location": "Inlet"} for m in measurands]}]})
        await service.flush()
    offsets = await gateway.history.kv_get(OFFSETS_SCOPE)
    assert sum(key.startswith("meter:") for key in offsets) == len(measurands)
    assert written["points"] - before == 1


async def test_a_call_to_the_charger_never_overtakes_the_answer_it_is_owed(gateway, runner: GatewayRunner):
    """The live model shows a new transaction as soon as it is committed, while the answer still
    waits for the exchange's log lines: a remote stop decided in between must reach the charger
    after the StartTransaction answer that tells it the id (smappee compat test, issue 12)."""
    await gateway.device_book.add_device("CP1")
    async with TestCharger(runner.url, "CP1") as cp:
        await cp.boot()
        start_answered_first: list[bool] = []
        cp.answers["RemoteStopTransaction"] = lambda p: (start_answered_first.append(not cp._pending),
                                                         {"status": "Accepted"})[1]
        session = gateway.connections.session_for("CP1")
        async with HeldWriter(gateway.history):
            start = asyncio.create_task(cp.call("StartTransaction", {"connectorId": 1, "idTag": "T",
                                                                     "meterStart": 0, "timestamp": T0}))
            await wait_until(lambda: ("CP1", "StartTransaction") in gateway.history.writer.queued())
            stop = asyncio.create_task(session.call("RemoteStopTransaction", {"transactionId": 1}))
            await wait_until(lambda: session._call_lock.locked() or bool(start_answered_first))
        await start
        await stop
    assert start_answered_first == [True]


async def test_a_session_reads_no_more_while_the_backlog_is_beyond_its_bound(gateway, runner: GatewayRunner):
    """Backpressure instead of memory: after answering, a session takes the charger's next frame
    only once the writer is back under half its bound."""
    writer = gateway.history.writer
    backlog = writer.backlog_limit + 1000
    await gateway.device_book.add_device("CP1")
    async with TestCharger(runner.url, "CP1") as cp:
        await cp.boot()
        async with HeldWriter(gateway.history):
            for i in range(backlog):
                gateway.history.log("NOISY", "Note", f"line {i}")
            first = asyncio.create_task(cp.send_raw(json.dumps([2, "hb-a", "Heartbeat", {}]), "hb-a"))
            second = asyncio.create_task(cp.send_raw(json.dumps([2, "hb-b", "Heartbeat", {}]), "hb-b"))
            await wait_until(lambda: ("CP1", "Heartbeat") in writer.queued())
        await first
        await second
    rows = _query(gateway.settings.database.path,
                  "SELECT id FROM general_log WHERE identifier = 'CP1' AND message_type = 'HeartbeatRequest'")
    noisy_before_b = _query(gateway.settings.database.path,
                            "SELECT COUNT(*) FROM general_log WHERE identifier = 'NOISY' AND id < ?", rows[1][0])[0][0]
    # The first Heartbeat went before the backlog; the second was read only once it had shrunk.
    assert noisy_before_b >= backlog - writer.backlog_limit // 2
