"""The database file: how it is opened and the tables it holds."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from gateway.history import charger_rows
from gateway.history.permissions import make_private

log = logging.getLogger(__name__)

TABLES = (
    """CREATE TABLE IF NOT EXISTS slots (
        charger_id TEXT PRIMARY KEY, slot INTEGER NOT NULL UNIQUE)""",
    """CREATE TABLE IF NOT EXISTS devices (
        charger_id TEXT PRIMARY KEY, slot INTEGER NOT NULL UNIQUE,
        registration TEXT NOT NULL DEFAULT 'Accepted', auth_key_hash TEXT,
        vendor TEXT, model TEXT, charge_point_serial TEXT, charge_box_serial TEXT,
        firmware_version TEXT, iccid TEXT, imsi TEXT, meter_type TEXT, meter_serial TEXT,
        priority INTEGER NOT NULL DEFAULT 0, weight REAL NOT NULL DEFAULT 1.0,
        added_at TEXT)""",
    """CREATE TABLE IF NOT EXISTS tags (
        id_tag TEXT PRIMARY KEY, listed TEXT NOT NULL, expiry TEXT,
        parent_id_tag TEXT NOT NULL DEFAULT '', note TEXT NOT NULL DEFAULT '')""",
    """CREATE TABLE IF NOT EXISTS general_log (
        id INTEGER PRIMARY KEY, ts TEXT NOT NULL, identifier TEXT NOT NULL,
        message_type TEXT NOT NULL, message TEXT NOT NULL, level TEXT NOT NULL DEFAULT 'info')""",
    "CREATE INDEX IF NOT EXISTS general_log_ts ON general_log(ts)",
    "CREATE INDEX IF NOT EXISTS general_log_id_ts ON general_log(identifier, ts)",
    """CREATE TABLE IF NOT EXISTS transactions (
        transaction_id INTEGER PRIMARY KEY AUTOINCREMENT,
        identifier TEXT NOT NULL, connector_id INTEGER NOT NULL, id_tag TEXT NOT NULL,
        start_meter_wh REAL, stop_meter_wh REAL, start_time TEXT, stop_time TEXT,
        received_start TEXT, received_stop TEXT, stop_reason TEXT, stop_id_tag TEXT,
        reservation_id INTEGER, auth_status TEXT, status TEXT NOT NULL,
        charger_transaction_id INTEGER)""",
    """CREATE UNIQUE INDEX IF NOT EXISTS transactions_dedupe ON transactions(
        identifier, connector_id, id_tag, start_time, start_meter_wh)
        WHERE status != 'orphan'""",
    "CREATE INDEX IF NOT EXISTS transactions_id_start ON transactions(identifier, start_time)",
    """CREATE TABLE IF NOT EXISTS meter_values (
        id INTEGER PRIMARY KEY, identifier TEXT NOT NULL, connector_id INTEGER NOT NULL,
        transaction_id INTEGER, ts TEXT, energy_wh REAL, sampled_values TEXT NOT NULL,
        sample_key INTEGER)""",
    "CREATE INDEX IF NOT EXISTS meter_values_tx ON meter_values(transaction_id)",
    # Each charger's meter rows (its newest, read at start by the points' restore; its log lines
    # and samples): an index caught up in batches (gateway.history.charger_rows), not an SQLite
    # index on meter_values (the `meter_values_id_desc` of earlier versions, replaced on open).
    """CREATE TABLE IF NOT EXISTS meter_by_charger (
        identifier TEXT NOT NULL, id INTEGER NOT NULL, PRIMARY KEY (identifier, id)) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS config_changes (
        id INTEGER PRIMARY KEY, ts TEXT NOT NULL, identifier TEXT NOT NULL, key TEXT NOT NULL,
        old_value TEXT, new_value TEXT, result TEXT NOT NULL, source TEXT)""",
    """CREATE TABLE IF NOT EXISTS config_values (
        identifier TEXT NOT NULL, key TEXT NOT NULL, value TEXT, readonly INTEGER,
        pending_value TEXT, PRIMARY KEY (identifier, key))""",
    """CREATE TABLE IF NOT EXISTS kv (
        scope TEXT NOT NULL, key TEXT NOT NULL, value TEXT, PRIMARY KEY (scope, key))""",
    # Messages the database refused (a value SQLite cannot hold): kept with the raw frame for
    # the operator (`ocpp-gateway history rejected`), instead of failing everybody's batch.
    """CREATE TABLE IF NOT EXISTS rejected (
        id INTEGER PRIMARY KEY, ts TEXT NOT NULL, identifier TEXT NOT NULL, origin TEXT NOT NULL,
        error TEXT NOT NULL, rows TEXT NOT NULL, frame TEXT NOT NULL, frame_bytes INTEGER NOT NULL)""",
)


# After `_add_columns`. A meterValue re-sent because its answer was lost (the gateway was killed
# between the commit and the answer) is stored once: `sample_key` is a hash of its sampled values
# (gateway.ocpp.meter_rows.sample_key). Rows from before the column have NULL there and never clash.
# The charger's timestamp comes first: it is about now for every live charger, so the rows of one
# group commit sit together in the index. With the charger first (the index of earlier versions,
# dropped here) every message wrote an index page of its own at each commit: 14 us of CPU a
# MeterValues end to end (docs/benchmarks.md). Built once over an older database when it opens.
INDEXES = (
    "DROP INDEX IF EXISTS meter_values_once",
    """CREATE UNIQUE INDEX IF NOT EXISTS meter_values_once_by_time ON meter_values(
        ts, identifier, connector_id, coalesce(transaction_id, -1), sample_key)""",
    # The general log's MeterValues lines, read from the rows they describe (`received`, `logged`:
    # see ADDED_COLUMNS): the log's time filters. Written in time order: an append, not a page a charger.
    "CREATE INDEX IF NOT EXISTS meter_values_received ON meter_values(received) WHERE received IS NOT NULL",
)
# The one connection's page cache (SQLite's default is 2,000 KiB). The gateway writes at the end
# of its tables and reads little (the operator's pages and exports; the OS caches the file too).
# The default cache filled during the hostile load and stayed full (0.8 MB of the RSS it kept).
# With 512 KiB, a group commit of a few hundred rows outgrew it, and SQLite wrote its pages out
# early (cache spill): 20-25 % more writer CPU a commit (`python -m bench.writer_statements
# --spill`); without spilling, a commit keeps its pages until it ends (a commit is bounded: the
# writer's backlog limit) and costs what it did with the default cache
# (docs/reliability.md, "RSS after the load").
CACHE_KIB = 512
# Columns added since the first release: (table, column, declaration), added to older databases.
# `received` and `logged` are set on the first row of each MeterValues message only: when it
# arrived and its general-log request line. The log shows that exchange from them instead of
# two general_log rows a message, each with a per-charger index entry (docs/benchmarks.md, the
# MeterValues write path); older rows and StopTransaction's transactionData rows have NULL there.
ADDED_COLUMNS = (("meter_values", "sample_key", "INTEGER"), ("meter_values", "received", "TEXT"),
                 ("meter_values", "logged", "TEXT"))


def _add_columns(conn: sqlite3.Connection) -> None:
    for table, column, declaration in ADDED_COLUMNS:
        if column not in {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")


def connect(path: str) -> sqlite3.Connection:
    """The one connection, in autocommit mode: the writer opens every transaction explicitly."""
    if path != ":memory:":
        make_private(Path(path))  # 0700 directory, 0600 database
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")  # a committed transaction survives power loss
    conn.execute("PRAGMA busy_timeout=5000")
    conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")  # negative: KiB, not pages
    conn.execute("PRAGMA cache_spill=OFF")
    for statement in TABLES:
        conn.execute(statement)
    _add_columns(conn)
    if _has_index(conn, "meter_values_once"):
        log.info("rebuilding the meter-value re-send index with the timestamp first (once, after an "
                 "upgrade; a large database takes a while)")
    for statement in INDEXES:
        conn.execute(statement)
    _replace_charger_index(conn)
    return conn


def _has_index(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?", (name,)).fetchone() is not None


def _replace_charger_index(conn: sqlite3.Connection) -> None:
    """A database of an earlier version: its rows go into `meter_by_charger` once, then the
    per-charger SQLite index is dropped (gateway.history.charger_rows says why)."""
    if _has_index(conn, "meter_values_id_desc"):
        log.info("indexing the stored meter values by charger (once, after an upgrade)")
        conn.execute("BEGIN IMMEDIATE")
        charger_rows.catch_up(conn, limit=None)
        conn.execute("DROP INDEX meter_values_id_desc")
        conn.execute("COMMIT")
