"""Which meter rows are whose: the per-charger index of `meter_values`, written in batches.

An SQLite index that begins with the charger puts every message on an index page of its own:
each charger's entries sit together, so the rows of one group commit land on as many pages as
chargers, and every such page is written to the WAL and again at the checkpoint. At thousands
of MeterValues a second that was 15-20 us of CPU a message, the largest single cost left on the
write path (docs/benchmarks.md). `meter_by_charger` holds the same (charger, row id) pairs, but
is caught up in batches, in key order, a bounded number of rows a group commit: a charger's
entries of a batch share its page. `through` (in `kv`) is the last row id it covers; a reader
takes the rows past it from the table itself (a short range of row ids) and the others through
the index, so what it reads is complete at any moment.

Every function takes the writer's connection and runs on the writer thread (between group
commits, or as a group commit's job), so a catch-up and a read never interleave.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from gateway.history import kv

THROUGH = ("history", "meter_by_charger_through")  # kv (scope, key): the last meter row id indexed
BATCH_ROWS = 2000  # rows indexed a group commit: a few ms of the writer's time, not a stall


def through(conn: sqlite3.Connection) -> int:
    return int(kv.value(conn, THROUGH) or 0)


def catch_up(conn: sqlite3.Connection, limit: int | None = BATCH_ROWS) -> int:
    """Index the meter rows of up to `limit` row ids past `through` (all of them with None);
    how many ids it covered (`limit`: there may be more). Runs inside the caller's transaction."""
    start = through(conn)
    last = conn.execute("SELECT MAX(id) FROM meter_values").fetchone()[0] or 0
    end = last if limit is None else min(last, start + limit)
    if end <= start:
        return 0
    conn.execute("INSERT OR IGNORE INTO meter_by_charger(identifier, id) SELECT identifier, id "
                 "FROM meter_values WHERE id > ? AND id <= ? ORDER BY identifier, id", (start, end))
    kv.put(conn, THROUGH, str(end))
    return end - start


def forget_deleted(conn: sqlite3.Connection) -> None:
    """After the retention: drop the entries of rows older than every row kept, and of the newest
    ids if it deleted those (a reading replayed with an old timestamp): SQLite gives a new row the
    highest id plus one, so such an id comes again for another row, which `through` must not
    cover yet and whose charger an old entry must not name."""
    oldest, newest = conn.execute("SELECT MIN(id), MAX(id) FROM meter_values").fetchone()
    newest = newest or 0
    conn.execute("DELETE FROM meter_by_charger WHERE id < ? OR id > ?", (oldest or 0, newest))
    if through(conn) > newest:
        kv.put(conn, THROUGH, str(newest))


def select(conn: sqlite3.Connection, columns: str, identifier: str, where: str = "", params: tuple[Any, ...] = (),
           newest_first: bool = True, limit: int = -1) -> list[tuple]:
    """`columns` of one charger's meter rows matching `where` (about the meter row `m`), by row id:
    the newest `limit` newest first, or all (limit -1) oldest first with `newest_first` False."""
    order = "DESC" if newest_first else "ASC"
    extra = f" AND {where}" if where else ""
    last = through(conn)
    # NOT INDEXED: the rows past `through` are a short range of row ids; an index on another
    # column (`received` for a time filter) would walk far more.
    tail = conn.execute(f"SELECT {columns} FROM meter_values m NOT INDEXED WHERE m.id > ? AND m.identifier = ?{extra} "
                        f"ORDER BY m.id {order} LIMIT ?", (last, identifier, *params, limit)).fetchall()
    indexed = conn.execute(f"SELECT {columns} FROM meter_by_charger b JOIN meter_values m ON m.id = b.id "
                           f"WHERE b.identifier = ? AND b.id <= ?{extra} ORDER BY b.id {order} LIMIT ?",
                           (identifier, last, *params, limit)).fetchall()
    rows = tail + indexed if newest_first else indexed + tail
    return rows if limit < 0 else rows[:limit]
