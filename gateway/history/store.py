"""SQLite storage through sqlite-utils: the device database, id tags, the general log, the
transaction log, meter values and configuration changes.

One thread owns the connection (a single-worker executor), so the event loop never waits on
disk except where it must: a Start/StopTransaction row is committed before the charger is
answered (design rule "Durability"). General-log lines are queued and written in batches.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import sqlite_utils

from gateway.history.permissions import make_private
from gateway.model.credentials import stored_key
from gateway.model.timestamps import iso_z

log = logging.getLogger(__name__)
T = TypeVar("T")
MeterRow = tuple[str, int, int | None, str | None, float | None, str]

TRANSACTION_COLUMNS = (
    "timestamp", "identifier", "connector_id", "id_tag", "start_meter_wh", "stop_meter_wh",
    "total_meter_wh", "start_time", "stop_time", "minutes_charged", "transaction_id",
    "stop_reason", "status",
)


def iso(ts: float | None) -> str | None:
    """Epoch seconds as ISO 8601 UTC with milliseconds; sortable as text."""
    return None if ts is None else iso_z(ts)


# One row per OCPP meterValue element: its sampled values kept raw (JSON), lossless and cheap;
# a row per sampled value made the writer thread the bottleneck at thousands of messages/s.
_METER_INSERT = (
    "INSERT INTO meter_values(identifier, connector_id, transaction_id, ts, energy_wh, sampled_values) "
    "VALUES (?,?,?,?,?,?)")
_FLUSH_CHUNK = 2000  # rows per writer job, so a transaction commit never waits behind a huge batch

_METER_INSERT_UNLESS_STORED = (
    "INSERT INTO meter_values(identifier, connector_id, transaction_id, ts, energy_wh, sampled_values) "
    "SELECT ?,?,?,?,?,? WHERE NOT EXISTS (SELECT 1 FROM meter_values WHERE transaction_id = ? AND ts = ?)")


class HistoryStore:
    """All persistent state. Methods named `*_sync` run on the writer thread only."""

    def __init__(self, path: str | Path, clock: Callable[[], float] = time.time) -> None:
        self.path = str(path)
        self.clock = clock
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
        self._pending_log: list[tuple[str, str, str, str, str]] = []
        self._pending_samples: list[tuple] = []
        self.db: sqlite_utils.Database | None = None

    # --- lifecycle -------------------------------------------------------------------------
    async def open(self) -> None:
        await self.run(self._open_sync)

    def _open_sync(self) -> None:
        if self.path != ":memory:":
            make_private(Path(self.path))  # 0700 directory, 0600 database
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")  # a committed transaction survives power loss
        conn.execute("PRAGMA busy_timeout=5000")
        self.db = sqlite_utils.Database(conn)
        self._create_schema()

    def _create_schema(self) -> None:
        db = self.db
        assert db is not None
        db.execute("""CREATE TABLE IF NOT EXISTS slots (
            charger_id TEXT PRIMARY KEY, slot INTEGER NOT NULL UNIQUE)""")
        db.execute("""CREATE TABLE IF NOT EXISTS devices (
            charger_id TEXT PRIMARY KEY, slot INTEGER NOT NULL UNIQUE,
            registration TEXT NOT NULL DEFAULT 'Accepted', auth_key_hash TEXT,
            vendor TEXT, model TEXT, charge_point_serial TEXT, charge_box_serial TEXT,
            firmware_version TEXT, iccid TEXT, imsi TEXT, meter_type TEXT, meter_serial TEXT,
            priority INTEGER NOT NULL DEFAULT 0, weight REAL NOT NULL DEFAULT 1.0,
            added_at TEXT)""")
        db.execute("""CREATE TABLE IF NOT EXISTS tags (
            id_tag TEXT PRIMARY KEY, listed TEXT NOT NULL, expiry TEXT,
            parent_id_tag TEXT NOT NULL DEFAULT '', note TEXT NOT NULL DEFAULT '')""")
        db.execute("""CREATE TABLE IF NOT EXISTS general_log (
            id INTEGER PRIMARY KEY, ts TEXT NOT NULL, identifier TEXT NOT NULL,
            message_type TEXT NOT NULL, message TEXT NOT NULL, level TEXT NOT NULL DEFAULT 'info')""")
        db.execute("CREATE INDEX IF NOT EXISTS general_log_ts ON general_log(ts)")
        db.execute("CREATE INDEX IF NOT EXISTS general_log_id_ts ON general_log(identifier, ts)")
        db.execute("""CREATE TABLE IF NOT EXISTS transactions (
            transaction_id INTEGER PRIMARY KEY AUTOINCREMENT,
            identifier TEXT NOT NULL, connector_id INTEGER NOT NULL, id_tag TEXT NOT NULL,
            start_meter_wh REAL, stop_meter_wh REAL, start_time TEXT, stop_time TEXT,
            received_start TEXT, received_stop TEXT, stop_reason TEXT, stop_id_tag TEXT,
            reservation_id INTEGER, auth_status TEXT, status TEXT NOT NULL,
            charger_transaction_id INTEGER)""")
        db.execute("""CREATE UNIQUE INDEX IF NOT EXISTS transactions_dedupe ON transactions(
            identifier, connector_id, id_tag, start_time, start_meter_wh)
            WHERE status != 'orphan'""")
        db.execute("CREATE INDEX IF NOT EXISTS transactions_id_start ON transactions(identifier, start_time)")
        db.execute("""CREATE TABLE IF NOT EXISTS meter_values (
            id INTEGER PRIMARY KEY, identifier TEXT NOT NULL, connector_id INTEGER NOT NULL,
            transaction_id INTEGER, ts TEXT, energy_wh REAL, sampled_values TEXT NOT NULL)""")
        db.execute("CREATE INDEX IF NOT EXISTS meter_values_tx ON meter_values(transaction_id)")
        db.execute("""CREATE TABLE IF NOT EXISTS config_changes (
            id INTEGER PRIMARY KEY, ts TEXT NOT NULL, identifier TEXT NOT NULL, key TEXT NOT NULL,
            old_value TEXT, new_value TEXT, result TEXT NOT NULL, source TEXT)""")
        db.execute("""CREATE TABLE IF NOT EXISTS config_values (
            identifier TEXT NOT NULL, key TEXT NOT NULL, value TEXT, readonly INTEGER,
            pending_value TEXT, PRIMARY KEY (identifier, key))""")
        db.execute("""CREATE TABLE IF NOT EXISTS kv (
            scope TEXT NOT NULL, key TEXT NOT NULL, value TEXT, PRIMARY KEY (scope, key))""")

    async def close(self) -> None:
        await self.flush_log()
        if self.db is not None:
            await self.run(self.db.conn.close)
        self._executor.shutdown(wait=True)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn` on the writer thread and wait for it."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    # --- general log -------------------------------------------------------------------------
    def log(self, identifier: str, message_type: str, message: str, level: str = "info") -> None:
        """Queue one general-log line; written by `flush_log` (batched so the loop never waits)."""
        self._pending_log.append((iso(self.clock()), identifier, message_type, message, level))

    def queue_meter_value(self, row: MeterRow) -> None:
        """Queue one meterValue (identifier, connector, transaction, ts, energy Wh, JSON values)."""
        self._pending_samples.append(row)

    async def flush_log(self) -> int:
        """Write queued log lines and meter values, in chunks between other writer jobs."""
        batch, self._pending_log = self._pending_log, []
        samples, self._pending_samples = self._pending_samples, []
        if self.db is None:
            return 0
        for i in range(0, max(len(batch), len(samples)), _FLUSH_CHUNK):
            await self.run(self._insert_batch_sync, batch[i:i + _FLUSH_CHUNK], samples[i:i + _FLUSH_CHUNK])
        return len(batch) + len(samples)

    def _insert_batch_sync(self, batch: list[tuple], samples: list[tuple]) -> None:
        conn = self.db.conn  # type: ignore[union-attr]
        with conn:
            conn.executemany(
                "INSERT INTO general_log(ts, identifier, message_type, message, level) VALUES (?,?,?,?,?)",
                batch)
            conn.executemany(_METER_INSERT, samples)

    async def apply_retention(self, days: float, max_rows: int, sample_days: float) -> int:
        return await self.run(self._retention_sync, days, max_rows, sample_days)

    def _retention_sync(self, days: float, max_rows: int, sample_days: float) -> int:
        conn = self.db.conn  # type: ignore[union-attr]
        cutoff = iso(self.clock() - days * 86400)
        removed = conn.execute("DELETE FROM general_log WHERE ts < ?", (cutoff,)).rowcount
        row = conn.execute("SELECT MAX(id) FROM general_log").fetchone()
        if row and row[0] is not None:
            removed += conn.execute("DELETE FROM general_log WHERE id <= ?",
                                    (row[0] - max_rows,)).rowcount
        sample_cutoff = iso(self.clock() - sample_days * 86400)
        conn.execute("DELETE FROM meter_values WHERE ts < ?", (sample_cutoff,))
        return removed

    async def general_log(self, identifier: str | None = None, since: str | None = None,
                          until: str | None = None, limit: int = 1000,
                          message_type: str | None = None) -> list[dict[str, Any]]:
        await self.flush_log()
        return await self.run(self._query_sync, "general_log", "ts", identifier, since, until,
                              limit, {"message_type": message_type} if message_type else {})

    # --- devices and slots -------------------------------------------------------------------
    async def devices(self) -> list[dict[str, Any]]:
        return await self.run(lambda: list(self.db["devices"].rows_where(order_by="slot")))

    async def add_device(self, charger_id: str, registration: str = "Accepted",
                         boot: dict[str, str] | None = None) -> dict[str, Any]:
        return await self.run(self._add_device_sync, charger_id, registration, boot or {})

    def _add_device_sync(self, charger_id: str, registration: str, boot: dict[str, str]) -> dict:
        db = self.db
        with db.conn:  # type: ignore[union-attr]
            row = db.execute("SELECT slot FROM slots WHERE charger_id = ?", [charger_id]).fetchone()
            if row is None:
                # A slot is never reused, even after a removal: an integrator's mapping of an old
                # charger must not silently point at a new one.
                nxt = db.execute("SELECT COALESCE(MAX(slot), 0) + 1 FROM slots").fetchone()[0]
                db.execute("INSERT INTO slots(charger_id, slot) VALUES (?, ?)", [charger_id, nxt])
                slot = nxt
            else:
                slot = row[0]
            record = {"charger_id": charger_id, "slot": slot, "registration": registration,
                      "added_at": iso(self.clock()), **boot}
            db["devices"].upsert(record, pk="charger_id")
        return db["devices"].get(charger_id)

    async def update_device(self, charger_id: str, **fields: Any) -> dict[str, Any] | None:
        def work() -> dict | None:
            table = self.db["devices"]
            try:
                table.get(charger_id)
            except sqlite_utils.db.NotFoundError:
                return None
            if fields:
                table.update(charger_id, fields)
            return table.get(charger_id)
        return await self.run(work)

    async def save_boot(self, charger_id: str, boot: dict[str, Any]) -> None:
        """Store a device's boot identity and matched quirk (columns added to older databases)."""
        def work() -> None:
            with self.db.conn:  # type: ignore[union-attr]
                self.db["devices"].update(charger_id, boot, alter=True)
        await self.run(work)

    async def remove_device(self, charger_id: str) -> bool:
        def work() -> bool:
            return self.db.conn.execute("DELETE FROM devices WHERE charger_id = ?",
                                        (charger_id,)).rowcount > 0
        return await self.run(work)

    async def set_auth_key(self, charger_id: str, key: str | None) -> bool:
        value = await self.run(stored_key, key) if key else None  # scrypt: off the event loop
        return await self.update_device(charger_id, auth_key_hash=value) is not None

    # --- tags --------------------------------------------------------------------------------
    async def tags(self) -> list[dict[str, Any]]:
        return await self.run(lambda: list(self.db["tags"].rows_where(order_by="id_tag")))

    async def put_tag(self, id_tag: str, listed: str, expiry: str | None = None,
                      parent_id_tag: str = "", note: str = "") -> None:
        await self.run(lambda: self.db["tags"].upsert(
            {"id_tag": id_tag, "listed": listed, "expiry": expiry,
             "parent_id_tag": parent_id_tag, "note": note}, pk="id_tag"))

    async def remove_tag(self, id_tag: str) -> bool:
        return await self.run(lambda: self.db.conn.execute(
            "DELETE FROM tags WHERE id_tag = ?", (id_tag,)).rowcount > 0)

    # --- transactions ------------------------------------------------------------------------
    async def start_transaction(self, identifier: str, connector_id: int, id_tag: str,
                                meter_start_wh: float, start_time: str, auth_status: str,
                                reservation_id: int | None) -> tuple[int, bool]:
        """Insert (or find, for a repeated StartTransaction) and commit; return (id, is_new)."""
        return await self.run(self._start_sync, identifier, connector_id, id_tag,
                              meter_start_wh, start_time, auth_status, reservation_id)

    def _start_sync(self, identifier: str, connector_id: int, id_tag: str, meter_start: float,
                    start_time: str, auth_status: str, reservation_id: int | None) -> tuple[int, bool]:
        conn = self.db.conn  # type: ignore[union-attr]
        with conn:
            row = conn.execute(
                "SELECT transaction_id FROM transactions WHERE identifier=? AND connector_id=? "
                "AND id_tag=? AND start_time=? AND start_meter_wh=? AND status != 'orphan'",
                (identifier, connector_id, id_tag, start_time, meter_start)).fetchone()
            if row:
                return row[0], False
            # An older transaction still open on this connector will never see its stop (the
            # charger lost it, e.g. a hard reset on the AC wallbox, manual 3.1): mark it instead
            # of leaving a zombie (steve#1478). A late StopTransaction still closes it.
            conn.execute(
                "UPDATE transactions SET status='unterminated' WHERE identifier=? AND connector_id=? "
                "AND status='active' AND start_time < ?", (identifier, connector_id, start_time))
            cur = conn.execute(
                "INSERT INTO transactions(identifier, connector_id, id_tag, start_meter_wh, "
                "start_time, received_start, auth_status, reservation_id, status) "
                "VALUES (?,?,?,?,?,?,?,?, 'active')",
                (identifier, connector_id, id_tag, meter_start, start_time, iso(self.clock()),
                 auth_status, reservation_id))
            return int(cur.lastrowid), True

    async def stop_transaction(self, identifier: str, transaction_id: int, meter_stop_wh: float,
                               stop_time: str, reason: str, id_tag: str | None,
                               samples: Iterable[MeterRow] = ()) -> str:
        """Close the row (or store an orphan stop for an unknown id); return what was done."""
        await self.flush_log()  # MeterValues samples first, so transactionData can skip repeats
        return await self.run(self._stop_sync, identifier, transaction_id, meter_stop_wh,
                              stop_time, reason, id_tag, list(samples))

    def _stop_sync(self, identifier: str, transaction_id: int, meter_stop: float, stop_time: str,
                   reason: str, id_tag: str | None, samples: list[MeterRow]) -> str:
        conn = self.db.conn  # type: ignore[union-attr]
        with conn:
            row = conn.execute("SELECT identifier, status, connector_id FROM transactions "
                               "WHERE transaction_id=?", (transaction_id,)).fetchone()
            connector_id = 0
            if row is not None and row[0] == identifier:
                if row[1] == "stopped":
                    outcome = "repeated"  # the charger retried; keep the first stop
                else:
                    conn.execute(
                        "UPDATE transactions SET stop_meter_wh=?, stop_time=?, received_stop=?, "
                        "stop_reason=?, stop_id_tag=?, status='stopped' WHERE transaction_id=?",
                        (meter_stop, stop_time, iso(self.clock()), reason, id_tag, transaction_id))
                    outcome = "stopped"
                tx_ref, connector_id = transaction_id, row[2]
            else:
                # Unknown id (steve#156: an InternalError makes chargers resend forever): keep the
                # data as an orphan row so billing can reconcile it, and answer normally.
                cur = conn.execute(
                    "INSERT INTO transactions(identifier, connector_id, id_tag, stop_meter_wh, "
                    "stop_time, received_stop, stop_reason, stop_id_tag, status, "
                    "charger_transaction_id) VALUES (?, 0, ?, ?, ?, ?, ?, ?, 'orphan', ?)",
                    (identifier, id_tag or "", meter_stop, stop_time, iso(self.clock()), reason,
                     id_tag, transaction_id))
                tx_ref = int(cur.lastrowid)
                outcome = "orphan"
            if samples:
                # transactionData carries no connector: it is the transaction's. It often repeats
                # meter values already sent in MeterValues; those are stored once.
                conn.executemany(_METER_INSERT_UNLESS_STORED, [
                    (r[0], r[1] or connector_id, tx_ref, *r[3:], tx_ref, r[3]) for r in samples])
        return outcome

    async def mark_lost(self, identifier: str, transaction_id: int) -> bool:
        """An active transaction the charger forgot (no StopTransaction will come, as far as we know)."""
        def work() -> bool:
            with self.db.conn:  # type: ignore[union-attr]
                return self.db.conn.execute(  # type: ignore[union-attr]
                    "UPDATE transactions SET status='lost' WHERE transaction_id=? AND identifier=? "
                    "AND status='active'", (transaction_id, identifier)).rowcount > 0
        return await self.run(work)

    async def meter_samples(self, identifier: str | None = None,
                            transaction_id: int | None = None) -> list[dict[str, Any]]:
        """Stored meter values expanded to one dict per sampled value, oldest first (queued
        ones are written first)."""
        await self.flush_log()

        def work() -> list[dict[str, Any]]:
            where, params = [], []
            if identifier is not None:
                where.append("identifier = ?")
                params.append(identifier)
            if transaction_id is not None:
                where.append("transaction_id = ?")
                params.append(transaction_id)
            rows = self.db["meter_values"].rows_where(" AND ".join(where) or None, params, order_by="id")
            return [_sample_view(row, sv) for row in rows for sv in json.loads(row["sampled_values"])]
        return await self.run(work)

    async def active_transactions(self) -> list[dict[str, Any]]:
        return await self.run(lambda: list(self.db["transactions"].rows_where(
            "status = 'active'", order_by="transaction_id")))

    async def transaction(self, transaction_id: int) -> dict[str, Any] | None:
        def work() -> dict | None:
            try:
                return self.db["transactions"].get(transaction_id)
            except sqlite_utils.db.NotFoundError:
                return None
        return await self.run(work)

    async def transactions(self, identifier: str | None = None, since: str | None = None,
                           until: str | None = None, limit: int = 100000) -> list[dict[str, Any]]:
        rows = await self.run(self._query_sync, "transactions", "start_time", identifier, since,
                              until, limit, {})
        return [transaction_view(r) for r in rows]

    def _query_sync(self, table: str, time_col: str, identifier: str | None, since: str | None,
                    until: str | None, limit: int, equals: dict[str, Any]) -> list[dict[str, Any]]:
        where, params = [], []
        if identifier:
            where.append("identifier = ?")
            params.append(identifier)
        if since:
            where.append(f"COALESCE({time_col}, received_stop) >= ?" if table == "transactions"
                         else f"{time_col} >= ?")
            params.append(since)
        if until:
            where.append(f"COALESCE({time_col}, received_stop) < ?" if table == "transactions"
                         else f"{time_col} < ?")
            params.append(until)
        for col, val in equals.items():
            where.append(f"{col} = ?")
            params.append(val)
        sql = f"SELECT * FROM {table}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        order = "transaction_id" if table == "transactions" else "id"
        sql += f" ORDER BY {order} DESC LIMIT ?"
        params.append(limit)
        cur = self.db.conn.execute(sql, params)  # type: ignore[union-attr]
        cols = [c[0] for c in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()][::-1]

    # --- configuration -----------------------------------------------------------------------
    async def save_config(self, identifier: str, rows: list[dict[str, Any]]) -> None:
        def work() -> None:
            self.db["config_values"].upsert_all(
                [{"identifier": identifier, **r} for r in rows], pk=("identifier", "key"))
        if rows:
            await self.run(work)

    async def load_config(self, identifier: str) -> list[dict[str, Any]]:
        return await self.run(lambda: list(self.db["config_values"].rows_where(
            "identifier = ?", [identifier], order_by="key")))

    async def record_config_change(self, identifier: str, key: str, old: str | None, new: str,
                                   result: str, source: str) -> None:
        await self.run(lambda: self.db["config_changes"].insert(
            {"ts": iso(self.clock()), "identifier": identifier, "key": key, "old_value": old,
             "new_value": new, "result": result, "source": source}))

    async def config_changes(self, identifier: str | None = None) -> list[dict[str, Any]]:
        return await self.run(lambda: list(self.db["config_changes"].rows_where(
            "identifier = ?" if identifier else None, [identifier] if identifier else [],
            order_by="id")))

    # --- small persisted values (point offsets, smart-charging settings, ...) --------------
    async def kv_get(self, scope: str) -> dict[str, str]:
        return await self.run(lambda: {r["key"]: r["value"] for r in self.db["kv"].rows_where(
            "scope = ?", [scope])})

    async def kv_put(self, scope: str, values: dict[str, str]) -> None:
        await self.run(lambda: self.db["kv"].upsert_all(
            [{"scope": scope, "key": k, "value": v} for k, v in values.items()],
            pk=("scope", "key")))


def _parse_iso(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _sample_view(row: dict[str, Any], sv: dict[str, Any]) -> dict[str, Any]:
    """One sampled value with the OCPP defaults filled in (spec 7.43 SampledValue)."""
    measurand = sv.get("measurand", "Energy.Active.Import.Register")
    try:
        value: float | str | None = float(sv.get("value"))
    except (TypeError, ValueError):
        value = sv.get("value")
    return {"identifier": row["identifier"], "connector_id": row["connector_id"],
            "transaction_id": row["transaction_id"], "ts": row["ts"], "measurand": measurand,
            "phase": sv.get("phase", ""), "location": sv.get("location", "Outlet"),
            "unit": sv.get("unit", "Wh" if measurand.startswith("Energy") else ""),
            "context": sv.get("context", "Sample.Periodic"), "format": sv.get("format", "Raw"),
            "value": value}


def transaction_view(row: dict[str, Any]) -> dict[str, Any]:
    """A transaction row with the Niagara transaction-log columns (guide 5.3) derived."""
    start, stop = _parse_iso(row.get("start_time")), _parse_iso(row.get("stop_time"))
    total = None
    if row.get("start_meter_wh") is not None and row.get("stop_meter_wh") is not None:
        total = row["stop_meter_wh"] - row["start_meter_wh"]
    minutes = int((stop - start) / timedelta(minutes=1)) if start and stop else None
    return {
        "timestamp": row.get("received_stop") or row.get("received_start"),
        "identifier": row["identifier"], "connector_id": row["connector_id"],
        "id_tag": row["id_tag"], "start_meter_wh": row.get("start_meter_wh"),
        "stop_meter_wh": row.get("stop_meter_wh"), "total_meter_wh": total,
        "start_time": row.get("start_time"), "stop_time": row.get("stop_time"),
        "minutes_charged": minutes, "transaction_id": row["transaction_id"],
        "stop_reason": row.get("stop_reason"), "status": row["status"],
    }
