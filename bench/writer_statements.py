"""What the writer's multi-row INSERTs keep prepared, and how long a commit takes beside a busy thread.

``python -m bench.writer_statements [--exact] [--busy]`` replays group commits of 1-300
general-log rows and a third as many meter-value rows (a fixed random sequence) through
`Writer._insert_rows` on a fresh database, outside the gateway, and prints SQLite's memory
growth (the sqlite3 module keeps the last 128 prepared statements) and the commit time.
``--exact`` inserts each commit with a statement of exactly its row count, as the writer did
before it padded them to a power of two; ``--busy`` runs a pure-Python thread beside it, as
the event loop is under load: every statement's step hands the GIL over and must win it back.
``--cache-kib N`` sets the page cache (the gateway's is `schema.CACHE_KIB`) and ``--spill``
lets SQLite write a transaction's pages out early once they outgrow it (its default, which
the gateway turns off): what a smaller cache costs in the writer's CPU per commit.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import json
import random
import tempfile
import threading
import time
from itertools import chain
from typing import Any

from bench.stats import percentiles_ms
from gateway.history import schema
from gateway.history.writer import INSERTS, ROWS_PER_STATEMENT, Writer


def sqlite_memory_used() -> int:
    lib = ctypes.CDLL(ctypes.util.find_library("sqlite3"))
    now, high = ctypes.c_int64(), ctypes.c_int64()
    lib.sqlite3_status64(0, ctypes.byref(now), ctypes.byref(high), 0)  # SQLITE_STATUS_MEMORY_USED
    return now.value


def insert_exact(conn: Any, rows: list[tuple[str, tuple[Any, ...]]]) -> None:
    """The earlier way: one statement of exactly each chunk's row count."""
    by_table: dict[str, list[Any]] = {}
    for table, params in rows:
        by_table.setdefault(table, []).append(params)
    for table, params_list in by_table.items():
        head, width, tail = INSERTS[table]
        for i in range(0, len(params_list), ROWS_PER_STATEMENT):
            chunk = params_list[i:i + ROWS_PER_STATEMENT]
            values = ",".join(["(" + ",".join("?" * width) + ")"] * len(chunk))
            conn.execute(f"{head} VALUES {values}{tail}", tuple(chain.from_iterable(chunk)))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.writer_statements", description=__doc__.split("\n")[0])
    p.add_argument("--exact", action="store_true", help="statements of each commit's exact row count")
    p.add_argument("--busy", action="store_true", help="a busy Python thread beside the commits")
    p.add_argument("--commits", type=int, default=1500)
    p.add_argument("--cache-kib", type=int, default=schema.CACHE_KIB)
    p.add_argument("--spill", action="store_true", help="SQLite's default cache_spill=ON")
    args = p.parse_args(argv)
    conn = schema.connect(tempfile.mkdtemp(prefix="bench-statements-") + "/gateway.sqlite")
    conn.execute("PRAGMA synchronous=OFF")  # the statements' cost, not the disk's
    conn.execute(f"PRAGMA cache_size=-{args.cache_kib}")
    if args.spill:
        conn.execute("PRAGMA cache_spill=ON")
    stop = threading.Event()

    def busy() -> None:
        while not stop.is_set():
            sum(range(1000))
    spinner = threading.Thread(target=busy, daemon=True)
    if args.busy:
        spinner.start()
    insert = insert_exact if args.exact else Writer._insert_rows
    rng, took, before, cpu0 = random.Random(1), [], sqlite_memory_used(), time.thread_time()
    for k in range(args.commits):
        n = rng.randint(1, 300)
        rows = [("general_log", ("2026-01-01T00:00:00Z", f"CP{i % 200}", "MeterValues", "x" * 80, "info"))
                for i in range(n)]
        rows += [("meter_values", (f"CP{i}", 1, k, f"2026-01-01T00:00:{i % 60:02d}Z", 1.0, "[]", i))
                 for i in range(n // 3)]
        t0 = time.perf_counter()
        conn.execute("BEGIN")
        insert(conn, rows)
        conn.execute("COMMIT")
        took.append(time.perf_counter() - t0)
    cpu_us = (time.thread_time() - cpu0) / args.commits * 1e6  # this thread's: the writer's share
    stop.set()
    print(json.dumps({"statements": "exact" if args.exact else "padded", "busy_thread": args.busy,
                      "cache_kib": args.cache_kib, "spill": args.spill, "cpu_us_per_commit": round(cpu_us),
                      "sqlite_memory_grew_kib": (sqlite_memory_used() - before) // 1024,
                      "commit_ms": percentiles_ms(took),
                      "rows": conn.execute("SELECT COUNT(*) FROM general_log").fetchone()[0]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
