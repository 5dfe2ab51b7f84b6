"""The one write path into SQLite: group commit, priorities, backpressure, bad rows set aside.

Everything the gateway keeps from a charger goes through `Writer.submit` as a `Unit`: the rows
of one exchange (general-log lines, meter values, small persisted values) and at most one job
(a function that runs inside the transaction and returns a value, such as the new transaction
id). One task on the loop takes everything queued, runs it in ONE SQLite transaction on the
writer thread, commits, and only then releases every answer waiting on it (group commit: one
fsync for all messages that arrived together).

Pacing: a commit starts no sooner than `commit_interval_s` after the previous one began. Each
commit costs a fixed fsync and WAL write whatever it holds: at thousands of messages a second,
back-to-back commits of a few messages each spent more CPU on fsyncs than on the messages
(docs/benchmarks.md). A message that arrives when the last commit is older than the interval is
committed at once, so a quiet site waits for nothing; a transaction (HIGH) or a reader waiting
for what is queued (`drain`) is never paced: the restore of 418 chargers' points after a restart
drains once per charger, and paced drains made it 3 s slower.

Priorities: units someone waits on for a transaction (Start/Stop) come first, then the other
exchanges a charger waits on, then background lines nobody waits on, of which a cycle takes a
bounded number, so a commit never waits behind a backlog. Past `backlog_limit` queued rows,
`room()` makes sessions wait before reading more from their chargers (backpressure) instead of
letting memory grow.

A unit that SQLite refuses (an integer beyond 64 bits, a lone surrogate in a string, ...) never
takes others with it: the group is rolled back and done again unit by unit, each in its own
SAVEPOINT, and only the refused unit is left out and kept in the `rejected` table with its raw
frame.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import Executor
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from functools import cache
from itertools import chain
from typing import Any

from gateway.errors import OcppError
from gateway.model.timestamps import iso_z

log = logging.getLogger(__name__)
HIGH, NORMAL, LOW = 0, 1, 2
DRAIN = "drain"  # the origin of the empty unit `drain` commits to wait for what is queued

# table -> (INSERT with its columns, how many, tail): rows go in multi-row statements, so a commit
# of thousands of rows costs a few statements (each sqlite3 step hands the GIL to the loop and
# must win it back: per-row statements made answers wait on a busy loop).
INSERTS: dict[str, tuple[str, int, str]] = {
    "general_log": ("INSERT INTO general_log(ts, identifier, message_type, message, level)", 5, ""),
    # One row per OCPP meterValue element, its sampled values kept raw (JSON); one re-sent after a
    # lost answer is already there (schema index meter_values_once_by_time) and is not stored again. The
    # first row of a message carries its general-log line (gateway.history.schema ADDED_COLUMNS).
    "meter_values": ("INSERT INTO meter_values(identifier, connector_id, transaction_id, ts, energy_wh, "
                     "sampled_values, sample_key, received, logged)", 9, " ON CONFLICT DO NOTHING"),
    "kv": ("INSERT INTO kv(scope, key, value)", 3,
           " ON CONFLICT(scope, key) DO UPDATE SET value = excluded.value"),
    "config_values": ("INSERT INTO config_values(identifier, key, value, readonly, pending_value)", 5,
                      " ON CONFLICT(identifier, key) DO UPDATE SET value = excluded.value, "
                      "readonly = excluded.readonly, pending_value = excluded.pending_value"),
}
ROWS_PER_STATEMENT = 256
MAX_ORIGINS_COUNTED = 100
REJECT_INSERT = ("INSERT INTO rejected(ts, identifier, origin, error, rows, frame, frame_bytes) "
                 "VALUES (?,?,?,?,?,?,?)")
FRAME_KEEP_CHARS = 65536  # of a refused frame; its full size is noted beside it
Row = tuple[str, tuple[Any, ...]]  # (table, parameters)


class StoreError(OcppError):
    """The store could not keep a message; answered as a CALLERROR, never acknowledged."""


@dataclass(eq=False)
class Unit:
    """What one exchange makes the gateway keep: committed together, or set aside together."""

    priority: int
    rows: list[Row] = field(default_factory=list)
    job: Callable[[], Any] | None = None
    future: asyncio.Future[Any] | None = None
    identifier: str = ""
    origin: str = ""  # the OCPP action, or what queued a background line
    frame: str = ""  # the raw frame, kept with the unit if it is refused


@cache
def _statement(table: str, rows: int) -> str:
    """The INSERT into `table` of up to `rows` rows: the rows past the real ones are all NULL,
    and left out by the WHERE (every table's first column is NOT NULL; see `_insert_rows`).

    Group commits take any number of rows, and each count was its own statement: the sqlite3
    module keeps the last 128 prepared statements, and a multi-row INSERT of n rows takes about
    n x 0.7-0.8 KB prepared, so varied commits kept 7.5 MB (`python -m bench.writer_statements
    --exact`: 1,500 commits of 1-300 rows). Padded to a power of two, a table has 9 statements,
    all of them kept prepared (1.0 MB), and none is prepared again. Splitting the rows into statements of
    those sizes instead (100 rows: 64 + 32 + 4) doubled the time a commit took next to a busy
    thread: every statement hands the GIL over and must win it back (docs/reliability.md, "RSS
    after the load"). The UPSERT tails parse after a SELECT because it has a WHERE (SQLite,
    "The UPSERT clause", parsing ambiguity)."""
    head, width, tail = INSERTS[table]
    values = ",".join(["(" + ",".join("?" * width) + ")"] * rows)
    return f"{head} SELECT * FROM (VALUES {values}) WHERE column1 IS NOT NULL{tail}"


def padded_size(rows: int) -> int:
    """The statement size that takes `rows` rows (1 to `ROWS_PER_STATEMENT`): the next power of two."""
    return 1 << (rows - 1).bit_length()


def _safe_text(value: Any) -> str:
    """Any value as text SQLite accepts (lone surrogates escaped)."""
    return str(value).encode("utf-8", "backslashreplace").decode("utf-8")


def _refusal(exc: BaseException) -> StoreError:
    """The 1.6 CALLERROR for a unit SQLite refused: a value it cannot hold is a type violation."""
    if isinstance(exc, OverflowError | UnicodeEncodeError | sqlite3.IntegrityError):
        return StoreError("TypeConstraintViolation", f"a value the database cannot hold ({exc})")
    return StoreError("InternalError", f"not stored: {exc}")


class Writer:
    """Owns every write: units queue on the loop; one task commits them in groups on `executor`."""

    def __init__(self, executor: Executor, clock: Callable[[], float] = time.time,
                 max_background_rows: int = 2000, backlog_limit: int = 20000,
                 commit_interval_s: float = 0.0) -> None:
        self.executor = executor
        self.commit_interval_s = commit_interval_s
        self.clock = clock
        self.max_background_rows = max_background_rows
        self.backlog_limit = backlog_limit
        self.conn: sqlite3.Connection | None = None
        self.commits = 0  # group commits done (one fsync each)
        self.paced = 0  # commits that waited for `commit_interval_s` (the store was busy)
        self.pacing = False  # waiting now
        self.rejected = 0
        self.written: Counter[str] = Counter()  # units committed, by origin
        self._queues: tuple[deque[Unit], ...] = (deque(), deque(), deque())
        self._queued_rows = 0
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._last_commit_start = float("-inf")  # loop time
        self._urgent = asyncio.Event()  # a unit that must not be paced is queued

    # --- the loop side ----------------------------------------------------------------------
    def start(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._task = asyncio.create_task(self._run(), name="sqlite group commit")

    @property
    def backlog(self) -> int:
        """Rows queued and not yet committed."""
        return self._queued_rows

    @property
    def has_room(self) -> bool:
        """False while the backlog is beyond its bound (until it is back to half of it)."""
        return self._room.is_set()

    def stats(self) -> dict[str, Any]:
        """What the operator sees in /api/status: is the store keeping up, was anything refused."""
        return {"backlog_rows": self._queued_rows, "reading_paused": not self.has_room,
                "group_commits": self.commits, "paced_commits": self.paced,
                "rejected_since_start": self.rejected}

    def queued_units(self) -> int:
        return sum(len(q) for q in self._queues)

    def queued(self) -> list[tuple[str, str]]:
        """(identifier, origin) of every unit waiting for the next group commit, highest first."""
        return [(u.identifier, u.origin) for q in self._queues for u in q]

    def submit(self, unit: Unit) -> None:
        self._queues[unit.priority].append(unit)
        if unit.priority == HIGH or unit.origin == DRAIN:
            self._urgent.set()
        self._queued_rows += len(unit.rows) + 1
        if self._queued_rows > self.backlog_limit:
            self._room.clear()
        self._wake.set()

    async def commit(self, unit: Unit) -> Any:
        """Queue `unit` and wait until it is committed; its job's result, or StoreError."""
        if self._closing or self._task is None or self._task.done():
            raise StoreError("InternalError", "the store is closed")
        unit.future = asyncio.get_running_loop().create_future()
        self.submit(unit)
        return await unit.future

    async def room(self) -> None:
        """Wait while the backlog is beyond its bound (backpressure on the chargers)."""
        await self._room.wait()

    async def drain(self) -> None:
        """Wait until everything queued before this call is committed."""
        if self._task is not None and not self._task.done() and not self._closing:
            await self.commit(Unit(LOW, origin=DRAIN))

    async def close(self) -> None:
        """Commit what is queued, then stop the task."""
        self._closing = True
        self._urgent.set()
        self._wake.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                while any(self._queues):
                    await self._pace(loop)
                    units = self._take()
                    try:
                        outcomes = await loop.run_in_executor(self.executor, self._commit_sync, units)
                    except asyncio.CancelledError:
                        self._fail(units, StoreError("InternalError", "the store was stopped"))
                        raise
                    self._release(units, outcomes)
                if self._closing:
                    return
        finally:
            self._fail([u for q in self._queues for u in q], StoreError("InternalError", "the store was stopped"))

    async def _pace(self, loop: asyncio.AbstractEventLoop) -> None:
        """Let what arrives within `commit_interval_s` of the last commit share the next one,
        unless a transaction or a waiting reader is queued (or comes)."""
        wait = self._last_commit_start + self.commit_interval_s - loop.time()
        if wait > 0 and not self._urgent.is_set():
            self.paced += 1
            self.pacing = True
            try:
                async with asyncio.timeout(wait):
                    await self._urgent.wait()
            except TimeoutError:
                pass
            finally:
                self.pacing = False
        self._urgent.clear()
        self._last_commit_start = loop.time()

    def _take(self) -> list[Unit]:
        """Every unit someone waits on, and a bounded share of the background rows."""
        high, normal, low = self._queues
        units = [*high, *normal]
        high.clear()
        normal.clear()
        budget = self.max_background_rows
        while low and budget > 0:
            unit = low.popleft()
            budget -= len(unit.rows)
            units.append(unit)
        self._queued_rows -= sum(len(u.rows) + 1 for u in units)
        return units

    def _release(self, units: list[Unit], outcomes: list[tuple[Any, BaseException | None]]) -> None:
        self.commits += 1
        for unit, (result, exc) in zip(units, outcomes, strict=True):
            # Origins include OCPP action names a charger chose: a bounded number are counted.
            if exc is None and (unit.origin in self.written or len(self.written) < MAX_ORIGINS_COUNTED):
                self.written[unit.origin] += 1
            if unit.future is None or unit.future.done():
                if exc is not None and unit.future is None:
                    log.warning("background rows of %s not stored: %s", unit.identifier, exc)
                continue
            if exc is not None:
                unit.future.set_exception(exc)
            else:
                unit.future.set_result(result)
        if self._queued_rows <= self.backlog_limit // 2:
            self._room.set()

    @staticmethod
    def _fail(units: list[Unit], exc: StoreError) -> None:
        for unit in units:
            if unit.future is not None and not unit.future.done():
                unit.future.set_exception(exc)

    # --- the writer thread ------------------------------------------------------------------
    def _commit_sync(self, units: list[Unit]) -> list[tuple[Any, BaseException | None]]:
        """One SQLite transaction for all `units`; the outcome of each."""
        conn = self.conn
        assert conn is not None
        try:
            try:
                conn.execute("BEGIN IMMEDIATE")
                outcomes = self._apply_together(conn, units)
            except Exception:  # something was refused: again, each unit in its own SAVEPOINT
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                conn.execute("BEGIN IMMEDIATE")
                order = sorted(range(len(units)), key=lambda i: units[i].job is not None)
                outcomes = [(None, None)] * len(units)
                for i in order:
                    outcomes[i] = self._apply_alone(conn, units[i])
            conn.execute("COMMIT")
        except Exception as exc:  # the commit itself failed (disk full, I/O): nothing is kept
            log.exception("group commit of %d units failed", len(units))
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            error = StoreError("InternalError", f"not stored: {exc}")
            return [(None, error)] * len(units)
        return outcomes

    @staticmethod
    def _insert_rows(conn: sqlite3.Connection, rows: list[Row]) -> None:
        by_table: dict[str, list[Any]] = {}
        for table, params in rows:
            by_table.setdefault(table, []).append(params)
        for table, params_list in by_table.items():
            width = INSERTS[table][1]
            for i in range(0, len(params_list), ROWS_PER_STATEMENT):
                chunk = params_list[i:i + ROWS_PER_STATEMENT]
                if any(params[0] is None for params in chunk):  # would be taken for padding
                    raise sqlite3.IntegrityError(f"NOT NULL constraint failed: {table}, first column")
                size = padded_size(len(chunk))
                # This thread holds the GIL the event loop needs: the flattening runs in C.
                conn.execute(_statement(table, size),
                             tuple(chain.from_iterable(chunk)) + (None,) * (width * (size - len(chunk))))

    def _apply_together(self, conn: sqlite3.Connection, units: list[Unit]) -> list[tuple[Any, BaseException | None]]:
        """The fast path: every row in a few multi-row statements, then the jobs; raises if
        anything is refused (the caller rolls back and goes unit by unit)."""
        self._insert_rows(conn, [row for u in units for row in u.rows])
        return [(u.job() if u.job is not None else None, None) for u in units]

    def _apply_alone(self, conn: sqlite3.Connection, unit: Unit) -> tuple[Any, BaseException | None]:
        conn.execute("SAVEPOINT unit")
        try:
            self._insert_rows(conn, unit.rows)
            result = unit.job() if unit.job is not None else None
        except Exception as exc:  # a value SQLite refuses, or a job's own failure
            error: BaseException = exc
        else:
            conn.execute("RELEASE unit")
            return result, None
        # If SQLite gave up the whole transaction (disk full, I/O), this raises: the group fails.
        conn.execute("ROLLBACK TO unit")
        conn.execute("RELEASE unit")
        self._set_aside(conn, unit, error)
        return None, _refusal(error)

    def _set_aside(self, conn: sqlite3.Connection, unit: Unit, error: BaseException) -> None:
        """Keep a refused unit, with its raw frame, in `rejected` for the operator."""
        self.rejected += 1
        log.warning("%s: %s not stored, kept in the rejected table: %s", unit.identifier, unit.origin, error)
        rows = _safe_text(repr([(t, p) for t, p in unit.rows]))[:FRAME_KEEP_CHARS]
        frame = _safe_text(unit.frame)
        try:
            conn.execute(REJECT_INSERT, (iso_z(self.clock()), _safe_text(unit.identifier), _safe_text(unit.origin),
                                         _safe_text(f"{type(error).__name__}: {error}")[:2000], rows,
                                         frame[:FRAME_KEEP_CHARS], len(unit.frame.encode("utf-8", "replace"))))
        except sqlite3.Error:
            log.exception("could not keep the refused unit of %s", unit.identifier)


_current: ContextVar[Exchange | None] = ContextVar("history_exchange", default=None)


class Exchange:
    """The rows one charger message makes the gateway keep, committed before its answer.

    While an exchange is current (`with exchange:` in the task handling the message), general-log
    lines and meter values join it instead of the background queue; a job the handler awaits
    (a transaction row) takes the rows gathered so far along into its commit.
    """

    def __init__(self, writer: Writer, identifier: str, origin: str, frame: str, priority: int) -> None:
        self.writer = writer
        self.identifier = identifier
        self.origin = origin
        self.frame = frame
        self.priority = priority
        self.rows: list[Row] = []
        self.open = True
        self._token: Token[Exchange | None] | None = None

    def __enter__(self) -> Exchange:
        self._token = _current.set(self)
        return self

    def __exit__(self, *exc: object) -> None:
        self.open = False
        if self._token is not None:
            _current.reset(self._token)

    def unit(self, job: Callable[[], Any] | None = None) -> Unit:
        """A unit with the rows gathered so far (and `job`)."""
        rows, self.rows = self.rows, []
        return Unit(self.priority, rows, job, identifier=self.identifier, origin=self.origin, frame=self.frame)

    async def commit(self) -> None:
        """Commit what is gathered; StoreError if the database refused it (set aside)."""
        self.open = False
        if self.rows:
            await self.writer.commit(self.unit())


def current_exchange() -> Exchange | None:
    exchange = _current.get()
    return exchange if exchange is not None and exchange.open else None
