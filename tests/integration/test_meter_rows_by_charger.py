"""Each charger's meter rows are found whether the per-charger index has caught up or not.

Issue 17: an SQLite index beginning with the charger made every MeterValues write an index page
of its own (15-20 us of CPU a message end to end). `meter_by_charger` (gateway.history.charger_rows)
is caught up in batches; a reader takes the rows past it from the table. These tests read a
charger's newest rows, its samples and its log lines in every state of the catch-up, and check
the catch-up itself: in the running gateway, over an older database, after the retention.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from gateway.history import charger_rows
from gateway.history.store import HistoryStore
from tests.conftest import GatewayRunner, wait_until
from tests.support.charger import TestCharger
from tests.support.database import older_database, query

T0 = "2026-11-20T08:00:00Z"


def _row(charger_id: str, n: int) -> tuple:
    sampled = f'[{{"value":"{n}","measurand":"Energy.Active.Import.Register"}}]'
    return (charger_id, 1, None, f"2026-11-20T08:{n // 60:02d}:{n % 60:02d}Z", float(n), sampled, n)


async def _run(store: HistoryStore, fn: Any, *args: Any) -> Any:
    return await store.run(fn, store.db.conn, *args)


async def test_a_charger_s_rows_are_complete_before_during_and_after_the_catch_up(tmp_path: Path):
    seconds = itertools.count(1_800_000_000)  # a second a line: the time filter has something to cut
    store = HistoryStore(tmp_path / "h.sqlite", clock=lambda: float(next(seconds)))
    await store.open()
    try:
        for n in range(30):
            store.queue_meter_value(_row(f"CP{n % 3}", n), f"line {n}")
        await store.flush_log()
        expected = [n for n in range(30) if n % 3 == 1]
        states = []
        for limit in (0, 4, 5, None):  # none indexed, a batch, another, all of them
            if limit != 0:
                await store.write(charger_rows.catch_up, store.db.conn, limit)
            states.append(await _run(store, charger_rows.through))
            newest = await store.latest_meter_rows("CP1", limit=4)
            assert [r["energy_wh"] for r in newest] == [float(n) for n in expected[::-1][:4]]
            samples = await store.meter_samples("CP1")
            assert [s["value"] for s in samples] == [float(n) for n in expected]
            lines = await store.general_log("CP1", message_type="MeterValuesRequest")
            assert [line["message"] for line in lines] == [f"line {n}" for n in expected]
            since = await store.general_log("CP1", since=lines[5]["ts"], message_type="MeterValuesRequest")
            assert [line["message"] for line in since] == [f"line {n}" for n in expected[5:]]
        assert states == [0, 4, 9, 30]
        assert await _run(store, charger_rows.catch_up) == 0  # nothing left: nothing done
    finally:
        await store.close()


async def test_the_running_gateway_catches_the_index_up_by_itself(runner: GatewayRunner):
    gateway = await runner.start()
    await gateway.device_book.add_device("CP1")
    async with TestCharger(runner.url, "CP1") as cp:
        await cp.boot()
        for n in range(3):
            await cp.call("MeterValues", {"connectorId": 1, "meterValue": [
                {"timestamp": f"2026-11-20T08:00:0{n}Z", "sampledValue": [{"value": str(n)}]}]})
    db = gateway.settings.database.path

    def indexed() -> list[tuple]:
        return query(db, "SELECT b.identifier, b.id FROM meter_by_charger b ORDER BY b.id")
    await wait_until(lambda: len(indexed()) == 3, timeout=10)
    assert indexed() == [("CP1", 1), ("CP1", 2), ("CP1", 3)]


async def test_an_older_database_s_rows_are_indexed_once_and_its_sqlite_index_dropped(tmp_path: Path):
    path = tmp_path / "old.sqlite"
    older_database(path, "CREATE INDEX meter_values_id_desc ON meter_values(identifier, id)",
                   rows=[_row(f"CP{n % 2}", n) for n in range(6)])
    store = HistoryStore(path)
    await store.open()
    try:
        indexes = await store.run(lambda: [r[1] for r in store.db.conn.execute("PRAGMA index_list(meter_values)")])
        assert "meter_values_id_desc" not in indexes
        assert await _run(store, charger_rows.through) == 6
        assert [r["energy_wh"] for r in await store.latest_meter_rows("CP0")] == [4.0, 2.0, 0.0]
    finally:
        await store.close()


async def test_what_the_last_run_left_unindexed_is_indexed_when_the_store_opens(tmp_path: Path):
    """A killed gateway leaves up to a few seconds of rows unindexed; the points' restore reads
    every charger's newest rows right after the store opens."""
    store = HistoryStore(tmp_path / "h.sqlite")
    await store.open()
    for n in range(4):
        store.queue_meter_value(_row("CP1", n))
    await store.flush_log()
    await store.close()
    store = HistoryStore(tmp_path / "h.sqlite")
    await store.open()
    try:
        assert await _run(store, charger_rows.through) == 4
    finally:
        await store.close()


async def _after_retention(store: HistoryStore, rows: list[tuple]) -> None:
    """`rows` stored and indexed, then the retention (90 days) run at the store's clock."""
    for row in rows:
        store.queue_meter_value(row)
    await store.flush_log()
    await store.write(charger_rows.catch_up, store.db.conn, None)
    await store.apply_retention(90.0, 1000, 400.0)


async def test_the_retention_drops_the_entries_of_the_rows_it_deletes(tmp_path: Path):
    store = HistoryStore(tmp_path / "h.sqlite", clock=lambda: 1_800_000_000.0)
    await store.open()
    try:
        await _after_retention(store, [("CP1", 1, None, "2020-01-01T00:00:00Z", 1.0, "[]", 1),
                                       ("CP1", 1, None, "2027-01-01T00:00:00Z", 2.0, "[]", 2)])
        assert await store.run(lambda: store.db.conn.execute("SELECT id FROM meter_by_charger").fetchall()) == [(2,)]
        assert [r["energy_wh"] for r in await store.latest_meter_rows("CP1")] == [2.0]
    finally:
        await store.close()


async def test_an_id_the_retention_freed_is_indexed_again_for_its_new_row(tmp_path: Path):
    """The newest row deleted (its timestamp was old): its id comes again for the next row."""
    store = HistoryStore(tmp_path / "h.sqlite", clock=lambda: 1_800_000_000.0)
    await store.open()
    try:
        await _after_retention(store, [("CP1", 1, None, "2027-01-01T00:00:00Z", 1.0, "[]", 1),
                                       ("OLD", 1, None, "2020-01-01T00:00:00Z", 2.0, "[]", 2)])
        store.queue_meter_value(("CP2", 1, None, "2027-01-01T00:00:01Z", 3.0, "[]", 3))
        await store.flush_log()
        ids = await store.run(lambda: store.db.conn.execute("SELECT id, identifier FROM meter_values").fetchall())
        assert ids == [(1, "CP1"), (2, "CP2")]  # the freed id, again
        for _ in range(2):  # before and after the catch-up
            assert [r["energy_wh"] for r in await store.latest_meter_rows("CP2")] == [3.0]
            assert await store.latest_meter_rows("OLD") == []
            await store.write(charger_rows.catch_up, store.db.conn, None)
    finally:
        await store.close()
