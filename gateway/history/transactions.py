"""Transaction rows, written inside the writer's group transaction (no commits of their own).

Each function runs as the job of one unit (`gateway.history.writer`): it reads and writes with
the connection it is given, returns what the answer needs, and is rolled back alone if it fails.
"""

from __future__ import annotations

import sqlite3

# identifier, connector, transaction, timestamp, energy Wh, sampled values (JSON), sample key
MeterRow = tuple[str, int, int | None, str | None, float | None, str, int]

_METER_INSERT_UNLESS_STORED = (
    "INSERT INTO meter_values(identifier, connector_id, transaction_id, ts, energy_wh, sampled_values, "
    "sample_key) SELECT ?,?,?,?,?,?,? WHERE NOT EXISTS "
    "(SELECT 1 FROM meter_values WHERE transaction_id = ? AND ts = ?) ON CONFLICT DO NOTHING")


def start(conn: sqlite3.Connection, now: str, identifier: str, connector_id: int, id_tag: str,
          meter_start: float, start_time: str, auth_status: str,
          reservation_id: int | None) -> tuple[int, bool]:
    """Insert (or find, for a repeated StartTransaction); return (id, is_new)."""
    row = conn.execute(
        "SELECT transaction_id FROM transactions WHERE identifier=? AND connector_id=? "
        "AND id_tag=? AND start_time=? AND start_meter_wh=? AND status != 'orphan'",
        (identifier, connector_id, id_tag, start_time, meter_start)).fetchone()
    if row:
        return row[0], False
    # An older transaction still open on this connector will never see its stop (the charger
    # lost it, e.g. a hard reset on the AC wallbox, manual 3.1): mark it instead of leaving a
    # zombie (steve#1478). A late StopTransaction still closes it.
    conn.execute(
        "UPDATE transactions SET status='unterminated' WHERE identifier=? AND connector_id=? "
        "AND status='active' AND start_time < ?", (identifier, connector_id, start_time))
    cur = conn.execute(
        "INSERT INTO transactions(identifier, connector_id, id_tag, start_meter_wh, "
        "start_time, received_start, auth_status, reservation_id, status) "
        "VALUES (?,?,?,?,?,?,?,?, 'active')",
        (identifier, connector_id, id_tag, meter_start, start_time, now, auth_status, reservation_id))
    return int(cur.lastrowid or 0), True


def stop(conn: sqlite3.Connection, now: str, identifier: str, transaction_id: int, meter_stop: float,
         stop_time: str, reason: str, id_tag: str | None, samples: list[MeterRow],
         keep_orphan: bool = True) -> str:
    """Close the row (or store an orphan stop for an unknown id); return what was done:
    "stopped", "repeated", "orphan", or "orphan not stored" (unknown id, not `keep_orphan`)."""
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
                (meter_stop, stop_time, now, reason, id_tag, transaction_id))
            outcome = "stopped"
        tx_ref, connector_id = transaction_id, row[2]
    elif not keep_orphan:  # over the charger's orphan budget (gateway.ocpp.logbudget.OrphanStops)
        return "orphan not stored"
    else:
        # Unknown id (steve#156: an InternalError makes chargers resend forever): keep the data
        # as an orphan row so billing can reconcile it, and answer normally.
        cur = conn.execute(
            "INSERT INTO transactions(identifier, connector_id, id_tag, stop_meter_wh, "
            "stop_time, received_stop, stop_reason, stop_id_tag, status, "
            "charger_transaction_id) VALUES (?, 0, ?, ?, ?, ?, ?, ?, 'orphan', ?)",
            (identifier, id_tag or "", meter_stop, stop_time, now, reason, id_tag, transaction_id))
        tx_ref = int(cur.lastrowid or 0)
        outcome = "orphan"
    if samples:
        # transactionData carries no connector: it is the transaction's. It often repeats meter
        # values already sent in MeterValues; those are stored once.
        conn.executemany(_METER_INSERT_UNLESS_STORED, [
            (r[0], r[1] or connector_id, tx_ref, *r[3:], tx_ref, r[3]) for r in samples])
    return outcome


def mark_lost(conn: sqlite3.Connection, identifier: str, transaction_id: int) -> bool:
    """An active transaction the charger forgot (no StopTransaction will come, as far as we know)."""
    return conn.execute(
        "UPDATE transactions SET status='lost' WHERE transaction_id=? AND identifier=? "
        "AND status='active'", (transaction_id, identifier)).rowcount > 0
