"""Group commits of any size use a few statements, padded with rows the INSERT leaves out."""

from __future__ import annotations

import sqlite3

import pytest

from gateway.history.writer import ROWS_PER_STATEMENT, Writer, _statement, padded_size


def test_every_row_count_takes_one_of_nine_statement_sizes():
    sizes = {padded_size(rows) for rows in range(1, ROWS_PER_STATEMENT + 1)}
    assert sizes == {2**k for k in range(9)}  # 1, 2, 4, ..., 256: every one stays prepared
    assert all(rows <= padded_size(rows) < 2 * rows for rows in range(1, ROWS_PER_STATEMENT + 1))


def kv_table() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute("CREATE TABLE kv (scope TEXT NOT NULL, key TEXT NOT NULL, value TEXT, PRIMARY KEY (scope, key))")
    return conn


def test_padding_rows_are_left_out_and_upserts_still_take_the_last_value():
    conn = kv_table()
    rows = [("kv", ("s", f"k{i}", str(i))) for i in range(5)] + [("kv", ("s", "k0", "last"))]
    Writer._insert_rows(conn, rows)  # 6 rows in the statement of 8
    assert conn.execute("SELECT key, value FROM kv ORDER BY key").fetchall() == [
        ("k0", "last"), ("k1", "1"), ("k2", "2"), ("k3", "3"), ("k4", "4")]
    assert "WHERE column1 IS NOT NULL" in _statement("kv", 8)


def test_a_real_row_without_its_first_column_is_refused_not_taken_for_padding():
    conn = kv_table()
    with pytest.raises(sqlite3.IntegrityError, match="NOT NULL"):
        Writer._insert_rows(conn, [("kv", ("s", "k", "v")), ("kv", (None, "k", "v"))])
