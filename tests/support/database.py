"""The database as another process sees it: committed rows read through a connection of its
own, and a database file as an earlier version of the gateway left it."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

# meter_values before the general-log columns (`received`, `logged`) were added
OLDER_METER_VALUES = """CREATE TABLE meter_values (id INTEGER PRIMARY KEY, identifier TEXT NOT NULL,
    connector_id INTEGER NOT NULL, transaction_id INTEGER, ts TEXT, energy_wh REAL,
    sampled_values TEXT NOT NULL, sample_key INTEGER)"""


def query(path: str | Path, sql: str, *params: Any) -> list[tuple]:
    """Read what is committed, through a connection of its own."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def older_database(path: Path, *statements: str, rows: list[tuple] = ()) -> None:
    """A database file with an earlier version's meter_values, `statements` run after it (its
    indexes), and `rows` (identifier, connector, transaction, ts, energy, sampled values, key)."""
    conn = sqlite3.connect(path)
    try:
        for statement in (OLDER_METER_VALUES, *statements):
            conn.execute(statement)
        conn.executemany("INSERT INTO meter_values(identifier, connector_id, transaction_id, ts, energy_wh, "
                         "sampled_values, sample_key) VALUES (?,?,?,?,?,?,?)", rows)
        conn.commit()
    finally:
        conn.close()
