"""Raw-websocket chargers for the BMS-side benchmarks, in their own process.

`python -m bench.bms_chargers '{"url": ..., "ids": [...]}'` then JSON lines on stdin:

* `setup` (transaction: bool): connect, BootNotification, StatusNotification, and with a
  transaction Authorize + StartTransaction + StatusNotification Charging;
* `load` (rate, seconds, sample: [ids]): open-loop MeterValues at `rate` msg/s in total,
  round-robin; each message's Power.Active.Import rises by POWER_STEP_W (more than the points'
  100 W COV increment), so every message must produce one COV notification. Answers with the
  send time (`time.time()`) of each message of the sampled chargers;
* `profiles`: every SetChargingProfile received so far, per charger, with its arrival time;
* `stop`: StopTransaction where one runs, then close.

Server calls are answered as a minimal charger would (`bench.frames`), except
SetChargingProfile and ClearChargingProfile, which are Accepted. One CALL in flight per
charger (OCPP-J 4.1.1): a MeterValues due while one is unanswered waits its turn.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time
from collections import deque
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bench import frames
from bench.pipe import emit, requests

POWER_BASE_W, POWER_STEP_W, POWER_STEPS = 1000, 150, 140  # 1.0 .. 21.9 kW, then round again
ANSWERS = {**frames.SERVER_CALL_ANSWERS, "SetChargingProfile": '{"status":"Accepted"}',
           "ClearChargingProfile": '{"status":"Accepted"}'}
_uids = itertools.count(1)
_clock = frames.Clock()


class RawCharger:
    """One charger: a websocket, a reader task, one CALL of ours in flight at a time."""

    def __init__(self, fleet: Fleet, charger_id: str) -> None:
        self.fleet = fleet
        self.charger_id = charger_id
        self.ws: ClientConnection | None = None
        self.transaction_id: int | None = None
        self.energy_wh = 0
        self.seq = 0
        self.meter_template = frames.meter_values(None)
        self.waiting: dict[str, asyncio.Future[list[Any]]] = {}
        self.busy = False
        self.backlog: deque[float] = deque()
        self.profiles: list[tuple[float, dict[str, Any]]] = []
        self.reader: asyncio.Task[None] | None = None

    async def open(self) -> None:
        self.ws = await connect(self.fleet.url + self.charger_id, subprotocols=["ocpp1.6"],  # type: ignore[list-item]
                                compression=None, proxy=None, ping_interval=None, open_timeout=30)
        self.reader = asyncio.create_task(self._read())

    async def call(self, template: str) -> list[Any]:
        assert self.ws is not None
        uid = str(next(_uids))
        future = self.waiting[uid] = asyncio.get_running_loop().create_future()
        await self.ws.send(template % {"uid": uid, "ts": _clock.now(), "wh": self.energy_wh})
        async with asyncio.timeout(30):
            return await future

    async def setup(self, transaction: bool) -> None:
        await self.open()
        boot = await self.call(frames.boot_notification(self.charger_id))
        if boot[0] != 3 or boot[2].get("status") != "Accepted":
            raise RuntimeError(f"{self.charger_id}: boot answered {boot}")
        await self.call(frames.status_notification(0, "Available"))
        if not transaction:
            await self.call(frames.status_notification(1, "Available"))
            return
        await self.call(frames.status_notification(1, "Preparing"))
        await self.call(frames.authorize("BENCHTAG"))
        started = await self.call(frames.start_transaction("BENCHTAG"))
        self.transaction_id = started[2].get("transactionId")
        if self.transaction_id is None:
            raise RuntimeError(f"{self.charger_id}: no transactionId in {started}")
        self.meter_template = frames.meter_values(self.transaction_id)
        await self.call(frames.status_notification(1, "Charging"))

    def schedule(self) -> None:
        """A MeterValues is due: send it now, or after the call in flight."""
        if self.busy:
            self.backlog.append(time.time())
        else:
            self.fleet.keep(self._send_meter())

    async def _send_meter(self) -> None:
        assert self.ws is not None
        self.busy = True
        self.seq += 1
        self.energy_wh += 31
        power_w = POWER_BASE_W + POWER_STEP_W * (self.seq % POWER_STEPS)
        uid = str(next(_uids))
        self.waiting[uid] = asyncio.get_running_loop().create_future()
        self.waiting[uid].add_done_callback(lambda _f: self._meter_done())
        frame = self.meter_template.replace('"value":"11040"', f'"value":"{power_w}"')
        sent = time.time()
        if self.charger_id in self.fleet.sample:
            self.fleet.sends.append((self.charger_id, power_w, sent))
        self.fleet.sent += 1
        try:
            await self.ws.send(frame % {"uid": uid, "ts": _clock.now(), "wh": self.energy_wh})
        except ConnectionClosed:
            self.fleet.errors["send_on_closed"] += 1

    def _meter_done(self) -> None:
        self.busy = False
        self.fleet.answered += 1
        self.fleet.last_answer = time.perf_counter()
        if self.backlog:
            self.fleet.queued_s.append(time.time() - self.backlog.popleft())
            self.fleet.keep(self._send_meter())

    async def _read(self) -> None:
        assert self.ws is not None
        try:
            async for raw in self.ws:
                msg = json.loads(raw)
                if msg[0] == 2:
                    await self._answer(msg[1], msg[2], msg[3])
                    continue
                future = self.waiting.pop(msg[1], None)
                if msg[0] == 4:
                    self.fleet.errors["callerror"] += 1
                if future is not None and not future.done():
                    future.set_result(msg)
        except ConnectionClosed:
            if not self.fleet.closing:
                self.fleet.errors["disconnect"] += 1

    async def _answer(self, uid: str, action: str, payload: dict[str, Any]) -> None:
        assert self.ws is not None
        if action == "SetChargingProfile":
            self.profiles.append((time.time(), payload))
        if action == "GetConfiguration":
            keys = payload.get("key")
            body: str | None = frames.get_configuration_answer(keys if isinstance(keys, list) else None)
        else:
            body = ANSWERS.get(action)
        text = (f"[3,{json.dumps(uid)},{body}]" if body is not None
                else json.dumps([4, uid, "NotImplemented", action, {}]))
        await self.ws.send(text)

    async def stop(self) -> None:
        if self.ws is None:
            return
        if self.transaction_id is not None:
            try:
                await self.call(frames.stop_transaction(self.transaction_id))
            except (TimeoutError, ConnectionClosed):
                self.fleet.errors["stop_failed"] += 1
        await self.ws.close()


class Fleet:
    """All chargers of this process, and what they measured."""

    def __init__(self, url: str, ids: list[str]) -> None:
        self.url = url.rstrip("/") + "/"
        self.chargers = [RawCharger(self, i) for i in ids]
        self.sample: set[str] = set()
        self.sends: list[tuple[str, int, float]] = []
        self.queued_s: list[float] = []
        self.sent = self.answered = 0
        self.last_answer = 0.0
        self.errors = {"setup": 0, "callerror": 0, "disconnect": 0, "send_on_closed": 0, "stop_failed": 0}
        self.closing = False
        self._tasks: set[asyncio.Task[None]] = set()

    def keep(self, coro: Any) -> None:
        """Run a send as a task we hold a reference to (the loop keeps only weak ones)."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def setup(self, transaction: bool, concurrency: int = 100) -> dict[str, Any]:
        gate = asyncio.Semaphore(concurrency)
        t0 = time.perf_counter()

        async def one(c: RawCharger) -> None:
            async with gate:
                try:
                    await c.setup(transaction)
                except Exception as exc:  # counted and reported; the benchmark decides
                    self.errors["setup"] += 1
                    print(f"{c.charger_id}: setup failed: {exc!r}", file=sys.stderr)
        await asyncio.gather(*(one(c) for c in self.chargers))
        return {"seconds": round(time.perf_counter() - t0, 3), "errors": dict(self.errors)}

    async def load(self, rate: float, seconds: float, sample: list[str]) -> dict[str, Any]:
        """Open loop: message k of the run is due at k / rate, whatever the answers do."""
        self.sample, self.sends, self.queued_s = set(sample), [], []
        sent0, answered0 = self.sent, self.answered
        n, due_total, t0 = len(self.chargers), int(rate * seconds), time.perf_counter()
        k = 0
        while k < due_total:
            due = min(due_total, int((time.perf_counter() - t0) * rate) + 1)
            while k < due:
                self.chargers[k % n].schedule()
                k += 1
            await asyncio.sleep(0.002)
        elapsed = time.perf_counter() - t0
        deadline = time.perf_counter() + 10
        while self.answered - answered0 < due_total and time.perf_counter() < deadline:
            await asyncio.sleep(0.01)
        return {"scheduled": due_total, "sent": self.sent - sent0, "answered": self.answered - answered0,
                "offered_rate": rate, "send_seconds": round(elapsed, 3),
                # answers per second, from the first send to the last answer (backlog included)
                "achieved_rate": round((self.answered - answered0) / max(elapsed, self.last_answer - t0), 1),
                "queued_behind_call": len(self.queued_s),
                "queued_max_ms": round(max(self.queued_s, default=0) * 1000, 1),
                "errors": dict(self.errors), "sends": self.sends}

    def profiles(self) -> dict[str, Any]:
        return {c.charger_id: [(t, p) for t, p in c.profiles] for c in self.chargers}

    async def stop(self) -> dict[str, Any]:
        self.closing = True
        await asyncio.gather(*(c.stop() for c in self.chargers), return_exceptions=True)
        return {"errors": dict(self.errors)}


async def main(spec: dict[str, Any]) -> None:
    fleet = Fleet(spec["url"], spec["ids"])
    async for req in requests():
        op = req["op"]
        try:
            if op == "setup":
                emit(await fleet.setup(req.get("transaction", False), req.get("concurrency", 100)))
            elif op == "load":
                emit(await fleet.load(req["rate"], req["seconds"], req.get("sample", [])))
            elif op == "profiles":
                emit({"profiles": fleet.profiles()})
            elif op == "stop":
                emit(await fleet.stop())
                return
            else:
                emit({"error": f"unknown op {op}"})
        except Exception as exc:  # the task boundary: report to the benchmark, which fails
            emit({"error": f"{op}: {exc!r}"})
    await fleet.stop()


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
