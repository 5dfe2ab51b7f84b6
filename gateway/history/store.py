"""SQLite storage: the device database, id tags, the general log, the transaction log, meter
values, configuration changes and small persisted values.

Every row a charger's message makes the gateway keep goes through one write path
(`gateway.history.writer`): committed in a real SQLite transaction, shared by the messages that
arrived together (group commit), before the charger is answered (design rule "Durability").
Reads and the operator's rarer writes run on the same writer thread between group commits, so
the event loop never waits on disk.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from gateway.history import charger_rows, kv, schema
from gateway.history import transactions as tx_rows
from gateway.history.queries import (  # noqa: F401  (re-exported: callers import them from here)
    LOG_SINCE,
    REJECTED_COLUMNS,
    TRANSACTION_COLUMNS,
    general_log_lines,
    sample_view,
    select_rows,
    transaction_view,
)
from gateway.history.sqlite_import import sqlite_utils
from gateway.history.transactions import MeterRow
from gateway.history.writer import (
    HIGH,
    LOW,
    NORMAL,
    Exchange,
    Row,
    StoreError,
    Unit,
    Writer,
    current_exchange,
)
from gateway.model.credentials import stored_key
from gateway.model.timestamps import iso_z

T = TypeVar("T")
log = logging.getLogger(__name__)
# How often the per-charger index of meter rows is caught up (gateway.history.charger_rows): a
# charger's messages of that long share an index page.
INDEX_EVERY_S = 2.0
# Exchanges whose answer carries a transaction: their commits go before every other.
TRANSACTION_ACTIONS = frozenset({"StartTransaction", "StopTransaction"})
__all__ = ["HistoryStore", "MeterRow", "REJECTED_COLUMNS", "StoreError", "TRANSACTION_COLUMNS", "transaction_view"]


def iso(ts: float | None) -> str | None:
    """Epoch seconds as ISO 8601 UTC with milliseconds; sortable as text."""
    return None if ts is None else iso_z(ts)


class HistoryStore:
    """All persistent state. Methods named `*_sync` run on the writer thread only."""

    def __init__(self, path: str | Path, clock: Callable[[], float] = time.time,
                 commit_interval_s: float = 0.0) -> None:
        self.path = str(path)
        self.clock = clock
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
        self._writer = Writer(self._executor, clock, commit_interval_s=commit_interval_s)
        self.db: sqlite_utils.Database | None = None
        self._indexing: asyncio.Task[None] | None = None

    # --- lifecycle -------------------------------------------------------------------------
    async def open(self) -> None:
        conn = await self.run(schema.connect, self.path)
        self.db = sqlite_utils.Database(conn)
        await self.write(charger_rows.catch_up, conn, None)  # what the last run left: the restore reads next
        self._writer.start(conn)
        self._indexing = asyncio.create_task(self._index_meter_rows(conn), name="meter rows by charger")

    async def _index_meter_rows(self, conn: sqlite3.Connection) -> None:
        """Catch the per-charger index up every `INDEX_EVERY_S`, a batch a group commit."""
        job = functools.partial(charger_rows.catch_up, conn)
        while True:
            await asyncio.sleep(INDEX_EVERY_S)
            try:
                while await self._writer.commit(Unit(LOW, [], job, origin="meter rows by charger")) \
                        == charger_rows.BATCH_ROWS:
                    pass
            except StoreError as exc:  # the store is closing, or the disk failed: readers still see the rows
                log.warning("meter rows not indexed by charger yet: %s", exc)

    async def close(self) -> None:
        """Commit everything queued, then close: nothing acknowledged is lost by a clean stop."""
        if self._indexing is not None:
            self._indexing.cancel()
            await asyncio.gather(self._indexing, return_exceptions=True)
        await self._writer.close()
        if self.db is not None:
            await self.run(self.db.conn.close)
        self._executor.shutdown(wait=True)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn` on the writer thread (between group commits) and wait for it."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn` on the writer thread inside one transaction (one fsync, not one per statement).

        For the operator's rarer writes (devices, tags, configuration); a `with conn:` inside
        (sqlite-utils) may commit early, which only splits the transaction.
        """
        return await self.run(self._in_transaction, fn, *args)

    def _in_transaction(self, fn: Callable[..., T], *args: Any) -> T:
        conn = self.db.conn  # type: ignore[union-attr]
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(*args)
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        if conn.in_transaction:
            conn.execute("COMMIT")
        return result

    @property
    def writer(self) -> Writer:
        return self._writer

    # --- the write path ----------------------------------------------------------------------
    def exchange(self, identifier: str, action: str, frame: str) -> Exchange:
        """The rows of one charger message: `with store.exchange(...) as ex: ...; await ex.commit()`."""
        priority = HIGH if action in TRANSACTION_ACTIONS else NORMAL
        return Exchange(self._writer, identifier, action, frame, priority)

    async def room(self) -> None:
        """Wait while the write backlog is beyond its bound (sessions read no more meanwhile)."""
        await self._writer.room()

    def _queue(self, row: Row, identifier: str, origin: str) -> None:
        exchange = current_exchange()
        if exchange is not None:
            exchange.rows.append(row)
        else:
            self._writer.submit(Unit(LOW, [row], identifier=identifier, origin=origin))

    async def _job(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(conn, *args)` inside a group commit; with the current exchange's rows."""
        job = functools.partial(fn, self.db.conn, *args)  # type: ignore[union-attr]
        exchange = current_exchange()
        unit = exchange.unit(job) if exchange is not None else Unit(HIGH, [], job, origin=fn.__name__)
        return await self._writer.commit(unit)

    # --- general log -------------------------------------------------------------------------
    def log(self, identifier: str, message_type: str, message: str, level: str = "info") -> None:
        """One general-log line: part of the current charger exchange, else a background row."""
        self._queue(("general_log", (iso(self.clock()), identifier, message_type, message, level)),
                    identifier, message_type)

    def queue_meter_value(self, row: MeterRow, logged: str | None = None) -> None:
        """One meterValue (identifier, connector, transaction, ts, energy Wh, JSON values, sample key);
        stored once even when the charger sends it again. The first row of a MeterValues message
        carries its general-log line, stamped as a general-log line is (`general_log` shows the
        exchange from it)."""
        received = iso(self.clock()) if logged is not None else None
        self._queue(("meter_values", (*row, received, logged)), row[0], "MeterValues")

    async def flush_log(self) -> int:
        """Wait until everything queued so far is committed; the rows that were queued."""
        queued = self._writer.backlog
        await self._writer.drain()
        return queued

    async def apply_retention(self, days: float, max_rows: int, sample_days: float) -> int:
        return await self.write(self._retention_sync, days, max_rows, sample_days)

    def _retention_sync(self, days: float, max_rows: int, sample_days: float) -> int:
        conn = self.db.conn  # type: ignore[union-attr]
        cutoff = iso(self.clock() - days * 86400)
        removed = conn.execute("DELETE FROM general_log WHERE ts < ?", (cutoff,)).rowcount
        row = conn.execute("SELECT MAX(id) FROM general_log").fetchone()
        if row and row[0] is not None:
            removed += conn.execute("DELETE FROM general_log WHERE id <= ?",
                                    (row[0] - max_rows,)).rowcount
        # The MeterValues lines kept with meter rows go with the general log's days (not its row
        # bound: the meter budget bounds them). Their rows stay for their own retention, so the
        # readers leave out what is older (`queries.LOG_SINCE`): clearing the columns instead would
        # rewrite an hour of meter rows every hour.
        kv.put(conn, LOG_SINCE, cutoff)
        sample_cutoff = iso(self.clock() - sample_days * 86400)
        conn.execute("DELETE FROM meter_values WHERE ts < ?", (sample_cutoff,))
        charger_rows.forget_deleted(conn)
        return removed

    async def general_log(self, identifier: str | None = None, since: str | None = None,
                          until: str | None = None, limit: int = 1000,
                          message_type: str | None = None) -> list[dict[str, Any]]:
        """The newest `limit` lines, oldest first (`queries.general_log_lines`)."""
        await self.flush_log()
        return await self.run(general_log_lines, self.db.conn, identifier, since, until, limit,  # type: ignore[union-attr]
                              message_type)

    async def rejected(self, identifier: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        """Messages the database refused, kept with their raw frame (newest last)."""
        await self.flush_log()
        return await self.run(select_rows, self.db.conn, "rejected", "ts", identifier, None, None,  # type: ignore[union-attr]
                              limit, {})

    # --- devices and slots -------------------------------------------------------------------
    async def devices(self) -> list[dict[str, Any]]:
        return await self.run(lambda: list(self.db["devices"].rows_where(order_by="slot")))

    async def add_device(self, charger_id: str, registration: str = "Accepted",
                         boot: dict[str, str] | None = None) -> dict[str, Any]:
        return await self.write(self._add_device_sync, charger_id, registration, boot or {})

    def _add_device_sync(self, charger_id: str, registration: str, boot: dict[str, str]) -> dict:
        db = self.db
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
        return await self.write(work)

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
        return await self.write(work)

    async def set_auth_key(self, charger_id: str, key: str | None) -> bool:
        value = await self.run(stored_key, key) if key else None  # scrypt: off the event loop
        return await self.update_device(charger_id, auth_key_hash=value) is not None

    # --- tags --------------------------------------------------------------------------------
    async def tags(self) -> list[dict[str, Any]]:
        return await self.run(lambda: list(self.db["tags"].rows_where(order_by="id_tag")))

    async def put_tag(self, id_tag: str, listed: str, expiry: str | None = None,
                      parent_id_tag: str = "", note: str = "") -> None:
        await self.write(lambda: self.db["tags"].upsert(
            {"id_tag": id_tag, "listed": listed, "expiry": expiry,
             "parent_id_tag": parent_id_tag, "note": note}, pk="id_tag"))

    async def remove_tag(self, id_tag: str) -> bool:
        return await self.write(lambda: self.db.conn.execute(
            "DELETE FROM tags WHERE id_tag = ?", (id_tag,)).rowcount > 0)

    # --- transactions ------------------------------------------------------------------------
    async def start_transaction(self, identifier: str, connector_id: int, id_tag: str,
                                meter_start_wh: float, start_time: str, auth_status: str,
                                reservation_id: int | None) -> tuple[int, bool]:
        """Insert (or find, for a repeated StartTransaction) and commit; return (id, is_new)."""
        return await self._job(tx_rows.start, iso(self.clock()), identifier, connector_id, id_tag,
                               meter_start_wh, start_time, auth_status, reservation_id)

    async def stop_transaction(self, identifier: str, transaction_id: int, meter_stop_wh: float,
                               stop_time: str, reason: str, id_tag: str | None,
                               samples: Iterable[MeterRow] = (), keep_orphan: bool = True) -> str:
        """Close the row (or store an orphan stop for an unknown id) and commit; what was done."""
        return await self._job(tx_rows.stop, iso(self.clock()), identifier, transaction_id, meter_stop_wh,
                               stop_time, reason, id_tag, list(samples), keep_orphan)

    async def mark_lost(self, identifier: str, transaction_id: int) -> bool:
        """An active transaction the charger forgot (no StopTransaction will come, as far as we know)."""
        return await self._job(tx_rows.mark_lost, identifier, transaction_id)

    async def meter_samples(self, identifier: str | None = None,
                            transaction_id: int | None = None) -> list[dict[str, Any]]:
        """Stored meter values expanded to one dict per sampled value, oldest first."""
        await self.flush_log()

        def work() -> list[dict[str, Any]]:
            conn = self.db.conn  # type: ignore[union-attr]
            columns = "m.identifier, m.connector_id, m.transaction_id, m.ts, m.sampled_values"
            if identifier is not None and transaction_id is None:
                found = charger_rows.select(conn, columns, identifier, newest_first=False)
            else:
                where, params = [], []
                for clause, value in (("identifier = ?", identifier), ("transaction_id = ?", transaction_id)):
                    if value is not None:
                        where.append(clause)
                        params.append(value)
                found = conn.execute(f"SELECT {columns} FROM meter_values m"
                                     + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id",
                                     params).fetchall()
            rows = [dict(zip(("identifier", "connector_id", "transaction_id", "ts", "sampled_values"), row,
                             strict=True)) for row in found]
            return [sample_view(row, sv) for row in rows for sv in json.loads(row["sampled_values"])]
        return await self.run(work)

    async def latest_meter_rows(self, identifier: str, limit: int = 50) -> list[dict[str, Any]]:
        """The newest stored MeterValues rows of a charger, newest first (points restore the
        last reading of each value from them after a restart)."""
        await self.flush_log()

        def work() -> list[dict[str, Any]]:
            cursor = self.db.conn.execute("SELECT * FROM meter_values LIMIT 0")  # type: ignore[union-attr]
            names = [c[0] for c in cursor.description]
            rows = charger_rows.select(self.db.conn, "m.*", identifier, limit=limit)  # type: ignore[union-attr]
            return [dict(zip(names, row, strict=True)) for row in rows]
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
        rows = await self.run(select_rows, self.db.conn, "transactions", "start_time", identifier,  # type: ignore[union-attr]
                              since, until, limit, {})
        return [transaction_view(r) for r in rows]

    # --- configuration -----------------------------------------------------------------------
    async def save_config(self, identifier: str, rows: list[dict[str, Any]]) -> None:
        """Keep a charger's configuration keys: one background write for all of them."""
        values: list[Row] = [("config_values", (identifier, r["key"], r.get("value"), r.get("readonly"),
                                                r.get("pending_value"))) for r in rows]
        if values:
            await self._writer.commit(Unit(LOW, values, identifier=identifier, origin="configuration"))

    async def load_config(self, identifier: str) -> list[dict[str, Any]]:
        return await self.run(lambda: list(self.db["config_values"].rows_where(
            "identifier = ?", [identifier], order_by="key")))

    async def record_config_change(self, identifier: str, key: str, old: str | None, new: str,
                                   result: str, source: str) -> None:
        await self.write(lambda: self.db["config_changes"].insert(
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
        """Store small values now (through the write path, committed when this returns)."""
        await self.kv_put_many({scope: values}, background=False)

    async def kv_put_many(self, values: dict[str, dict[str, str]], background: bool = True,
                          origin: str = "kv") -> None:
        """Store the values of several scopes in ONE write; `background` ones yield to chargers."""
        rows: list[Row] = [("kv", (scope, k, v)) for scope, kv in values.items() for k, v in kv.items()]
        if rows:
            await self._writer.commit(Unit(LOW if background else NORMAL, rows, origin=origin))
