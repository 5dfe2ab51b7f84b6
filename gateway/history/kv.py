"""One small persisted value (the `kv` table), read or written with the writer's connection,
inside whatever transaction the caller is in. `HistoryStore.kv_get` / `kv_put` are the
loop-side way for everything else."""

from __future__ import annotations

import sqlite3

Name = tuple[str, str]  # (scope, key)


def value(conn: sqlite3.Connection, name: Name) -> str | None:
    row = conn.execute("SELECT value FROM kv WHERE scope = ? AND key = ?", name).fetchone()
    return row[0] if row is not None else None


def put(conn: sqlite3.Connection, name: Name, text: str) -> None:
    conn.execute("INSERT INTO kv(scope, key, value) VALUES (?, ?, ?) ON CONFLICT(scope, key) "
                 "DO UPDATE SET value = excluded.value", (*name, text))
