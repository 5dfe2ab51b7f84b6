"""Group commits of any size use a few statement sizes, so SQLite's prepared statements stay few."""

from __future__ import annotations

from gateway.history.writer import ROWS_PER_STATEMENT, statement_sizes


def test_every_row_count_is_inserted_in_at_most_nine_sizes_of_statement():
    seen: set[int] = set()
    for rows in range(0, 3 * ROWS_PER_STATEMENT + 1):
        sizes = statement_sizes(rows)
        assert sum(sizes) == rows
        assert len(sizes) <= rows // ROWS_PER_STATEMENT + 8  # 256 at a time, then one of each power of two
        seen.update(sizes)
    assert seen == {2**k for k in range(9)}  # 1, 2, 4, ..., 256: every one stays prepared
