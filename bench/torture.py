"""Crash and kill: chargers in transactions, the gateway killed (SIGKILL) and restarted.

``python -m bench.torture --chargers 200 --kills 5`` adds the chargers to a fresh database,
starts the gateway as a real process (``python -m gateway.main run``), lets every
charger connect for the first time (AC wallbox configuration keys, so each gets its points),
then runs transactions with MeterValues. At random moments (after a random number of answers)
the gateway is killed with SIGKILL and started again on the same data directory; the chargers
reconnect and carry on, sending again the message that got no answer (the same payload, as
chargers do with transaction messages). At the end the gateway is stopped with SIGTERM under load, and every
Start, Stop and MeterValues that got a CALLRESULT is looked up in the database, whose
`PRAGMA integrity_check` must say ok; a message stored twice (committed, then the kill came
before its answer, then sent again) is counted as a duplicate. Prints one JSON report
(docs/reliability.md).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import json
import os
import random
import re
import signal
import sqlite3
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import websockets
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from bench import frames
from bench.stats import percentiles_ms

REPO_ROOT = Path(__file__).resolve().parent.parent
_RUNNING = re.compile(r"ocpp-gateway running: OCPP ws://[^:]+:(\d+)/")
T_BASE = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
KINDS = ("StartTransaction", "MeterValues", "StopTransaction")
SITE_PASSWORD = "torture-site-password"  # security profile 1 stays on, as by default


def basic_auth(charger_id: str) -> dict[str, str]:
    """Security profile 1: HTTP Basic, user name = charger id, the site password."""
    token = base64.b64encode(f"{charger_id}:{SITE_PASSWORD}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


class GatewayProcess:
    """The gateway as the operator runs it, on loopback with a port the kernel picks."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.db = data_dir / "gateway.sqlite"
        self.proc: asyncio.subprocess.Process | None = None
        self.starts = 0

    def argv(self) -> list[str]:
        settings = {"ocpp.host": "127.0.0.1", "ocpp.port": "0", "admin.enabled": "false",
                    "bacnet.enabled": "false", "modbus.enabled": "false",
                    "database.path": str(self.db), "ocpp.default_password": SITE_PASSWORD}
        sets = [arg for key, value in settings.items() for arg in ("--set", f"{key}={value}")]
        return [sys.executable, "-m", "gateway.main", "run", *sets]

    async def start(self) -> str:
        """Start it; the OCPP URL once it listens."""
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
        log = open(self.data_dir / f"gateway-{self.starts}.log", "wb")  # noqa: SIM115 (the child owns it)
        self.starts += 1
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv(), stdout=asyncio.subprocess.PIPE, stderr=log, stdin=asyncio.subprocess.DEVNULL,
            cwd=REPO_ROOT, env=env)
        log.close()
        assert self.proc.stdout is not None
        async with asyncio.timeout(60):
            while line := (await self.proc.stdout.readline()).decode():
                match = _RUNNING.search(line)
                if match:
                    return f"ws://127.0.0.1:{match.group(1)}/ocpp/"
        raise RuntimeError(f"the gateway exited with {await self.proc.wait()} before listening")

    async def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()

    async def terminate(self, limit_s: float = 30.0) -> tuple[float, int]:
        """SIGTERM; (seconds until it exited, exit code)."""
        assert self.proc is not None
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(limit_s):
            code = await self.proc.wait()
        return time.monotonic() - t0, code


@dataclass
class Ledger:
    """What got a CALLRESULT, to look up in the database afterwards."""

    starts: set[tuple[str, int]] = field(default_factory=set)
    stops: dict[tuple[str, int], float] = field(default_factory=dict)
    meters: set[tuple[str, int, str]] = field(default_factory=set)
    sent: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    resent: Counter[str] = field(default_factory=Counter)  # sent again after a kill left them unanswered
    first_start_s: list[float] = field(default_factory=list)
    progress: asyncio.Event = field(default_factory=asyncio.Event)
    acked: int = 0

    def ack(self) -> None:
        self.acked += 1
        self.progress.set()

    async def wait_acked(self, target: int, timeout_s: float = 120.0) -> None:
        async with asyncio.timeout(timeout_s):
            while self.acked < target:
                self.progress.clear()
                await self.progress.wait()


class Link:
    """Where the gateway is now; chargers wait on `up` while it is down."""

    def __init__(self) -> None:
        self.url = ""
        self.up = asyncio.Event()
        self.stopping = False


class TortureCharger:
    """One charger: reconnects whenever the gateway comes back, one CALL in flight at a time."""

    def __init__(self, charger_id: str, link: Link, ledger: Ledger, config_answer: str, meters_per_tx: int) -> None:
        self.charger_id = charger_id
        self.link = link
        self.ledger = ledger
        self.config_answer = config_answer
        self.meters_per_tx = meters_per_tx
        self.tick = itertools.count(int(random.random() * 1e6))  # the charger's clock, one second a message
        self.energy_wh = 0
        self.tx_id: int | None = None
        self.meters_sent = 0
        self.first_start = True
        self.unanswered: tuple[str, dict[str, Any]] | None = None  # sent, no answer yet: sent again
        self._uids = itertools.count(1)
        self._pending: dict[str, asyncio.Future[list[Any]]] = {}

    def _ts(self) -> str:
        return datetime.fromtimestamp(T_BASE + next(self.tick), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    async def run(self) -> None:
        while not self.link.stopping:
            await self.link.up.wait()
            try:
                async with websockets.connect(self.link.url + self.charger_id, subprotocols=["ocpp1.6"],  # type: ignore[list-item]
                                              additional_headers=basic_auth(self.charger_id),
                                              compression=None, proxy=None, open_timeout=20,
                                              close_timeout=1, ping_interval=None) as ws:
                    reader = asyncio.create_task(self._read(ws))
                    try:
                        await self._session(ws)
                    finally:
                        reader.cancel()
                        await asyncio.gather(reader, return_exceptions=True)
            except (OSError, ConnectionClosed, InvalidHandshake, TimeoutError):
                if self.link.up.is_set() and not self.link.stopping:
                    await asyncio.sleep(0.2)  # refused while the gateway is still coming up: retry

    async def _read(self, ws: Any) -> None:
        try:
            async for text in ws:
                msg = json.loads(text)
                if msg[0] == 2:
                    await ws.send(self._answer_call(msg[1], msg[2], msg[3]))
                else:
                    fut = self._pending.pop(msg[1], None)
                    if fut is not None and not fut.done():
                        fut.set_result(msg)
        finally:
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(ConnectionError("closed"))
                    fut.add_done_callback(lambda f: f.exception())  # nobody may be waiting any more
            self._pending.clear()

    def _answer_call(self, uid: str, action: str, payload: dict[str, Any]) -> str:
        if action == "GetConfiguration":
            return f'[3,"{uid}",{self.config_answer}]'
        answer = frames.SERVER_CALL_ANSWERS.get(action)
        if answer is None:
            return json.dumps([4, uid, "NotImplemented", f"{action} not supported", {}])
        return f'[3,"{uid}",{answer}]'

    async def _call(self, ws: Any, action: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        """The CALLRESULT payload, or None for a CALLERROR; raises when the connection is lost."""
        uid = f"{self.charger_id}-{next(self._uids)}"
        fut = self._pending[uid] = asyncio.get_running_loop().create_future()
        self.ledger.sent[action] += 1
        await ws.send(json.dumps([2, uid, action, payload]))
        async with asyncio.timeout(60):
            reply = await fut
        if reply[0] != 3:
            self.ledger.refused[f"{action}: {reply[2]}"] += 1
            return None
        return reply[2]

    async def _session(self, ws: Any) -> None:
        await self._call(ws, "BootNotification", {"chargePointVendor": "AC EV Wallbox", "chargePointModel": "AC Wallbox"})
        await self._call(ws, "StatusNotification", {"connectorId": 1, "status": "Available", "errorCode": "NoError"})
        while not self.link.stopping:
            if self.unanswered is None:
                self.unanswered = self._next_message()
            else:  # no answer came (the gateway was killed): the same message again, as chargers do
                self.ledger.resent[self.unanswered[0]] += 1
            action, payload = self.unanswered
            t0 = time.perf_counter()
            answer = await self._call(ws, action, payload)  # raises if the connection is lost
            self.unanswered = None
            if answer is not None:
                self._acknowledged(action, payload, answer, time.perf_counter() - t0)

    def _next_message(self) -> tuple[str, dict[str, Any]]:
        """The charger's next transaction message: Start, `meters_per_tx` MeterValues, Stop."""
        if self.tx_id is None:
            return "StartTransaction", {"connectorId": 1, "idTag": "TORTURE", "meterStart": self.energy_wh,
                                        "timestamp": self._ts()}
        if self.meters_sent < self.meters_per_tx:
            self.energy_wh += 100
            sampled = [{"value": str(self.energy_wh), "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
                       {"value": "7360", "measurand": "Power.Active.Import", "unit": "W"},
                       {"value": "32", "measurand": "Current.Import", "unit": "A", "phase": "L1"}]
            return "MeterValues", {"connectorId": 1, "transactionId": self.tx_id,
                                   "meterValue": [{"timestamp": self._ts(), "sampledValue": sampled}]}
        return "StopTransaction", {"transactionId": self.tx_id, "meterStop": self.energy_wh, "timestamp": self._ts(),
                                   "reason": "Local"}

    def _acknowledged(self, action: str, payload: dict[str, Any], answer: dict[str, Any], took_s: float) -> None:
        """Record what got a CALLRESULT (and so will never be sent again)."""
        if action == "StartTransaction":
            if self.first_start:
                self.first_start = False
                self.ledger.first_start_s.append(took_s)
            self.tx_id, self.meters_sent = int(answer["transactionId"]), 0
            self.ledger.starts.add((self.charger_id, self.tx_id))
        elif action == "MeterValues":
            self.meters_sent += 1
            self.ledger.meters.add((self.charger_id, payload["transactionId"], payload["meterValue"][0]["timestamp"]))
        else:
            self.ledger.stops[(self.charger_id, payload["transactionId"])] = float(payload["meterStop"])
            self.tx_id = None
        self.ledger.ack()


def check_database(db: Path, ledger: Ledger) -> dict[str, Any]:
    """Acknowledged against stored, per message type, and SQLite's own integrity check."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        txs = {(r[0], r[1]): (r[2], r[3]) for r in conn.execute(
            "SELECT identifier, transaction_id, status, stop_meter_wh FROM transactions")}
        meter_rows = conn.execute("SELECT identifier, transaction_id, ts FROM meter_values").fetchall()
        meters = set(meter_rows)
        # Every message of a charger has its own timestamp: a second row for one is a duplicate.
        starts = conn.execute("SELECT COUNT(*), COUNT(DISTINCT identifier || ' ' || connector_id || ' ' || start_time) "
                              "FROM transactions WHERE status != 'orphan'").fetchone()
        orphans = conn.execute("SELECT COUNT(*) FROM transactions WHERE status = 'orphan'").fetchone()[0]
        try:
            rejected = conn.execute("SELECT COUNT(*) FROM rejected").fetchone()[0]
        except sqlite3.OperationalError:  # a gateway from before the rejected table
            rejected = None
    finally:
        conn.close()
    stored = {
        "StartTransaction": sum(key in txs for key in ledger.starts),
        "MeterValues": sum(key in meters for key in ledger.meters),
        "StopTransaction": sum(txs.get(key, ("", None))[0] == "stopped" and txs[key][1] == wh
                               for key, wh in ledger.stops.items()),
    }
    acked = {"StartTransaction": len(ledger.starts), "MeterValues": len(ledger.meters),
             "StopTransaction": len(ledger.stops)}
    # A stop stored twice would be an orphan row beside the stopped one (a stop updates its row).
    duplicates = {"StartTransaction": starts[0] - starts[1], "MeterValues": len(meter_rows) - len(meters),
                  "StopTransaction": orphans}
    by_type = {k: {"sent": ledger.sent[k], "resent": ledger.resent[k], "acknowledged": acked[k], "stored": stored[k],
                   "lost": acked[k] - stored[k], "duplicates": duplicates[k]} for k in KINDS}
    return {"integrity_check": integrity, "by_type": by_type, "rejected_rows": rejected,
            "lost_total": sum(v["lost"] for v in by_type.values()),
            "duplicates_total": sum(duplicates.values())}


async def add_chargers(db: Path, ids: list[str]) -> None:
    """Put the chargers in the device database (what `ocpp-gateway devices add` does)."""
    from gateway.history.store import HistoryStore
    store = HistoryStore(db)
    await store.open()
    try:
        for charger_id in ids:
            await store.add_device(charger_id)
    finally:
        await store.close()


def wallbox_configuration() -> str:
    """The AC wallbox's GetConfiguration answer (manual 001), from the simulator's profile."""
    from gateway.simulator.profile import load_profile
    keys = load_profile("acwallbox").keys.values()
    return json.dumps({"configurationKey": [{"key": k.name, "readonly": k.readonly, "value": k.value or ""}
                                            for k in keys]}, separators=(",", ":"))


async def run_torture(data_dir: Path, chargers: int, kills: int, meters_per_tx: int = 4,
                      acks_between_kills: tuple[int, int] = (2, 6), seed: int | None = None) -> dict[str, Any]:
    """The whole run; `acks_between_kills` is a range of answers per charger before each kill."""
    rng = random.Random(seed)
    data_dir.mkdir(parents=True, exist_ok=True)
    gateway, link, ledger = GatewayProcess(data_dir), Link(), Ledger()
    ids = [f"TORTURE{i:05d}" for i in range(chargers)]
    await add_chargers(gateway.db, ids)
    config = wallbox_configuration()
    fleet = [TortureCharger(cid, link, ledger, config, meters_per_tx) for cid in ids]
    tasks = [asyncio.create_task(c.run()) for c in fleet]
    kill_after: list[int] = []
    try:
        for round_no in range(kills + 1):
            link.url = await gateway.start()
            link.up.set()
            if round_no == 0:  # every charger's first StartTransaction: the first-connection storm
                await ledger.wait_acked(chargers)
            kill_after.append(chargers * rng.randint(*acks_between_kills))
            await ledger.wait_acked(ledger.acked + kill_after[-1])
            if round_no < kills:
                link.up.clear()
                await gateway.kill()
        stop_s, exit_code = await gateway.terminate()  # under load: chargers still sending
    finally:
        link.stopping = True
        link.up.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if gateway.proc is not None and gateway.proc.returncode is None:
            await gateway.kill()
    report = check_database(gateway.db, ledger)
    report.update(chargers=chargers, kills=kills, meters_per_tx=meters_per_tx, acks_between_kills=kill_after,
                  sigterm_stop_s=round(stop_s, 3), sigterm_exit_code=exit_code,
                  callerrors=dict(ledger.refused),
                  first_start_latency_ms=percentiles_ms(ledger.first_start_s))
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chargers", type=int, default=200)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--meters-per-transaction", type=int, default=4)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--data-dir", help="default: a new temporary directory")
    args = parser.parse_args(argv)
    import tempfile
    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="torture-"))
    report = asyncio.run(run_torture(data_dir, args.chargers, args.kills, args.meters_per_transaction, seed=args.seed))
    report["data_dir"] = str(data_dir)
    print(json.dumps(report))
    ok = report["lost_total"] == 0 and report["duplicates_total"] == 0 and report["integrity_check"] == "ok"
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
