"""The general log shows every MeterValues exchange from the meter row that carries its line.

Issue 17: two general_log rows a MeterValues (request and answer), each with an entry in the
per-charger index, were a fifth of the gateway's CPU per message. The request line is now kept
with the message's first meter row and the log shows both lines from it: the same lines, in
their place among the others, through every reader (API, CSV, CLI, web page), filtered the same
way, kept for the general log's days. A refused MeterValues is logged as before.

Over the real websocket server with the test charger; the database read as another process would.
"""

from __future__ import annotations

import asyncio
import csv
import io
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.history import schema
from gateway.history.queries import EMPTY_ANSWER_LINE
from gateway.history.store import HistoryStore
from gateway.main import main
from gateway.ocpp.summaries import confirmation_summary
from tests.conftest import GatewayRunner
from tests.support.charger import CallErrorReply, TestCharger
from tests.support.database import older_database
from tests.support.database import query as _query

T0 = "2026-11-20T08:00:00Z"


def _energy(wh: int, ts: str = T0) -> dict[str, Any]:
    return {"timestamp": ts, "sampledValue": [{"value": str(wh), "measurand": "Energy.Active.Import.Register"},
                                              {"value": "11000", "measurand": "Power.Active.Import", "unit": "W"}]}


async def _log(runner: GatewayRunner, query: str) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession(headers=runner.admin_headers) as http, http.get(
            f"{runner.admin_url}/api/history/log?{query}") as resp:
        assert resp.status == 200
        return await resp.json()


def test_the_answer_line_shown_is_the_one_the_session_wrote() -> None:
    assert EMPTY_ANSWER_LINE == confirmation_summary("MeterValues", {})


async def test_a_meter_values_exchange_is_shown_from_its_row_and_takes_no_general_log_row(runner: GatewayRunner):
    gateway = await runner.start()
    await gateway.device_book.add_device("CP1")
    async with TestCharger(runner.url, "CP1") as cp:
        await cp.boot()
        tx = (await cp.call("StartTransaction", {"connectorId": 1, "idTag": "T", "meterStart": 0,
                                                 "timestamp": T0}))["transactionId"]
        await cp.call("MeterValues", {"connectorId": 1, "transactionId": tx,
                                      "meterValue": [_energy(100), _energy(200, "2026-11-20T08:00:10Z")]})
        await cp.call("StatusNotification", {"connectorId": 1, "status": "Charging", "errorCode": "NoError"})
        await cp.call("MeterValues", {"connectorId": 1, "transactionId": tx, "meterValue": [_energy(300)]})
    db = gateway.settings.database.path
    await gateway.history.flush_log()
    assert _query(db, "SELECT COUNT(*) FROM general_log WHERE message_type LIKE 'MeterValues%'") == [(0,)]
    # The first row of each message carries its line; the second meterValue of a message does not.
    assert [row[0] is not None for row in _query(db, "SELECT logged FROM meter_values ORDER BY id")] == [
        True, False, True]

    lines = await _log(runner, "charger=CP1")
    kinds = [line["message_type"] for line in lines]
    start = kinds.index("StartTransactionConfirmation")
    assert kinds[start + 1:start + 7] == [
        "MeterValuesRequest", "MeterValuesConfirmation", "StatusNotificationRequest",
        "StatusNotificationConfirmation", "MeterValuesRequest", "MeterValuesConfirmation"]
    first, answer = lines[start + 1], lines[start + 2]
    assert first["message"] == f"Connector: 1; 4 value(s); Transaction: {tx}; Energy: 200 Wh"
    assert answer["message"] == "(empty answer)" and answer["level"] == "info"
    assert first["ts"] == answer["ts"] and first["identifier"] == "CP1"
    assert lines[start + 5]["message"] == f"Connector: 1; 2 value(s); Transaction: {tx}; Energy: 300 Wh"
    assert [line["ts"] for line in lines] == sorted(line["ts"] for line in lines)

    # Filters: by type, by time, a limit that cuts through a message's pair, another charger.
    requests = await _log(runner, "charger=CP1&type=MeterValuesRequest")
    assert [line["message"][-6:] for line in requests] == ["200 Wh", "300 Wh"]
    assert await _log(runner, "charger=CP1&type=HeartbeatRequest") == []
    for limit in (1, 2, 3, 7):
        assert await _log(runner, f"charger=CP1&limit={limit}") == lines[-limit:]
    since = lines[start + 3]["ts"]  # the StatusNotification's millisecond
    after = await _log(runner, f"since={since}")
    assert [line["message"][-6:] for line in after if line["message_type"] == "MeterValuesRequest"] == ["300 Wh"]
    assert await _log(runner, "charger=CP2") == []
    everybody = await _log(runner, "limit=1000")
    assert [line for line in everybody if line["identifier"] == "CP1"] == lines

    # The same lines in the CSV export and the offline CLI export.
    async with aiohttp.ClientSession(headers=runner.admin_headers) as http, http.get(
            f"{runner.admin_url}/api/history/log?charger=CP1&format=csv") as resp:
        exported = list(csv.DictReader(io.StringIO(await resp.text())))
    assert [row["message"] for row in exported] == [line["message"] for line in lines]


async def test_the_cli_export_shows_the_lines_from_the_database_alone(runner: GatewayRunner, capsys):
    gateway = await runner.start()
    await gateway.device_book.add_device("CP1")
    async with TestCharger(runner.url, "CP1") as cp:
        await cp.boot()
        await cp.call("MeterValues", {"connectorId": 1, "meterValue": [_energy(42)]})
    path = gateway.settings.database.path
    await runner.stop()
    code = await asyncio.to_thread(main, ["history", "log", "--db", str(path), "--csv", "-"])
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert code == 0
    assert [(r["message_type"], r["message"]) for r in rows if r["message_type"].startswith("MeterValues")] == [
        ("MeterValuesRequest", "Connector: 1; 2 value(s); Energy: 42 Wh"),
        ("MeterValuesConfirmation", "(empty answer)")]


async def test_a_refused_meter_values_is_logged_as_before(runner: GatewayRunner):
    gateway = await runner.start()
    await gateway.device_book.add_device("CP1")
    async with TestCharger(runner.url, "CP1") as cp:
        await cp.boot()
        with pytest.raises(CallErrorReply):
            await cp.call("MeterValues", {"connectorId": 1, "meterValue": [
                {"timestamp": T0, "sampledValue": [{"value": "9" * 5000}]}]})
    lines = [line for line in await gateway.history.general_log("CP1")
             if line["message_type"].startswith("MeterValues")]
    assert [line["message_type"] for line in lines] == ["MeterValuesRequest", "MeterValuesError"]
    assert lines[0]["message"].startswith("Connector: 1; 1 value(s); Energy: 999")
    assert "5000 characters" in lines[1]["message"]
    assert _query(gateway.settings.database.path, "SELECT COUNT(*) FROM meter_values") == [(0,)]


async def test_the_lines_go_with_the_general_logs_days_and_the_rows_stay(tmp_path: Path):
    now = [1_800_000_000.0]
    store = HistoryStore(tmp_path / "h.sqlite", clock=lambda: now[0])
    await store.open()
    try:
        store.queue_meter_value(("CP1", 1, None, T0, 5.0, "[]", 1), "Connector: 1; 0 value(s)")
        store.log("CP1", "HeartbeatRequest", "(no fields)")
        await store.flush_log()
        assert len(await store.general_log("CP1")) == 3
        now[0] += 2 * 86400
        await store.apply_retention(1.0, 1000, 400.0)
        assert await store.general_log("CP1") == []
        assert await store.run(lambda: store.db.conn.execute("SELECT COUNT(*) FROM meter_values").fetchone()) == (1,)
    finally:
        await store.close()


async def test_an_older_database_gets_the_columns_and_its_rows_show_no_second_line(tmp_path: Path):
    path = tmp_path / "old.sqlite"
    older_database(path, rows=[("CP1", 1, None, T0, None, "[]", None)])
    store = HistoryStore(path)
    await store.open()
    try:
        columns = await store.run(lambda: [r[1] for r in store.db.conn.execute("PRAGMA table_info(meter_values)")])
        assert [column for _table, column, _declared in schema.ADDED_COLUMNS] == columns[-3:]
        assert await store.general_log("CP1") == []  # its lines are general_log rows of their own
    finally:
        await store.close()


async def test_an_older_database_gets_the_time_first_once_index_and_still_stores_a_re_send_once(tmp_path: Path):
    """The re-send index of earlier versions began with the charger, which put every message on
    an index page of its own at each commit; it is rebuilt with the timestamp first."""
    path = tmp_path / "old.sqlite"
    older_database(path, """CREATE UNIQUE INDEX meter_values_once ON meter_values(
                   identifier, connector_id, coalesce(transaction_id, -1), ts, sample_key)""",
                   rows=[("CP1", 1, 7, T0, 5.0, "[]", 11)])
    store = HistoryStore(path)
    await store.open()
    try:
        store.queue_meter_value(("CP1", 1, 7, T0, 5.0, "[]", 11), "again")  # the re-send
        store.queue_meter_value(("CP1", 1, 7, T0, 6.0, "[]", 12), "new")
        await store.flush_log()
        indexes = await store.run(lambda: [r[1] for r in store.db.conn.execute("PRAGMA index_list(meter_values)")])
        columns = await store.run(lambda: [r[2] for r in store.db.conn.execute(
            "PRAGMA index_info(meter_values_once_by_time)")])
        rows = await store.run(lambda: store.db.conn.execute(
            "SELECT sample_key, logged FROM meter_values ORDER BY id").fetchall())
    finally:
        await store.close()
    assert "meter_values_once" not in indexes and "meter_values_once_by_time" in indexes
    assert columns[:3] == ["ts", "identifier", "connector_id"]
    assert rows == [(11, None), (12, "new")]
