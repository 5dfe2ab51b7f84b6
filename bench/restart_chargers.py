"""Chargers for the restart benchmark (`bench.restart`), in their own process.

`python -m bench.restart_chargers '{"ids": [...], "booting": [...]}'`, then JSON lines on stdin:

* `commission` (url): every charger connects, boots, reports connectors 0 and 1 Available and
  one MeterValues (so its meter points exist), and answers the gateway's configuration read;
  answers once every charger has been asked for its whole configuration;
* `reconnect` (url, port, started_at, within): what the chargers do when their central system
  restarts. A probe connects to the port every 5 ms; the moment it opens, every charger connects
  at once. Chargers in `booting` send BootNotification and a StatusNotification per connector
  (a power cycle); the others send only a Heartbeat and report their connectors when the
  gateway asks (TriggerMessage), as many real chargers do after a mere reconnect
  (real-firmware notes, "Outages and restarts"). Answers with the port-open time and each
  charger's accepted time (`time.time()`, one clock for every process of the benchmark);
* `wait_port` (port, until): the time the port first accepts a TCP connection;
* `config_reads`: GetConfiguration calls received since the last `reconnect`;
* `stop`: close every connection.

Server calls are answered as a minimal charger would (`bench.frames`); GetConfiguration with the
21 Core keys, and GetConfiguration calls are counted per round.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from bench import frames
from bench.pipe import emit, requests

ANSWERS = {**frames.SERVER_CALL_ANSWERS, "TriggerMessage": '{"status":"Accepted"}'}
HEARTBEAT = '[2,"%(uid)s","Heartbeat",{}]'
_uids = itertools.count(1)
_clock = frames.Clock()


class Charger:
    """One charger: a websocket, a reader task, one CALL of ours in flight at a time."""

    def __init__(self, fleet: Fleet, charger_id: str, booting: bool) -> None:
        self.fleet, self.charger_id, self.booting = fleet, charger_id, booting
        self.ws: ClientConnection | None = None
        self.waiting: dict[str, asyncio.Future[list[Any]]] = {}
        self.reader: asyncio.Task[None] | None = None
        self.config_reads = 0
        self.full_read = asyncio.Event()

    async def open(self, url: str) -> None:
        self.ws = await connect(url + self.charger_id, subprotocols=["ocpp1.6"],  # type: ignore[list-item]
                                compression=None, proxy=None, ping_interval=None, open_timeout=30)
        self.reader = asyncio.create_task(self._read())

    async def call(self, template: str) -> list[Any]:
        assert self.ws is not None
        uid = str(next(_uids))
        future = self.waiting[uid] = asyncio.get_running_loop().create_future()
        await self.ws.send(template % {"uid": uid, "ts": _clock.now(), "wh": 1000})
        async with asyncio.timeout(30):
            return await future

    async def boot(self) -> None:
        answer = await self.call(frames.boot_notification(self.charger_id))
        if answer[0] != 3 or answer[2].get("status") != "Accepted":
            raise RuntimeError(f"{self.charger_id}: boot answered {answer}")

    async def report_connectors(self) -> None:
        for connector_id in (0, 1):
            await self.call(frames.status_notification(connector_id, "Available"))

    async def commission(self, url: str) -> None:
        await self.open(url)
        await self.boot()
        await self.report_connectors()
        await self.call(frames.meter_values(None))
        async with asyncio.timeout(120):
            await self.full_read.wait()

    async def reconnect(self, url: str) -> float:
        """Connect, boot or not, and return when the gateway has accepted this charger."""
        await self.open(url)
        if self.booting:
            await self.boot()
            accepted = time.time()
            await self.report_connectors()
            return accepted
        answer = await self.call(HEARTBEAT)
        if answer[0] != 3:
            raise RuntimeError(f"{self.charger_id}: heartbeat answered {answer}")
        return time.time()

    async def _read(self) -> None:
        assert self.ws is not None
        try:
            async for raw in self.ws:
                msg = json.loads(raw)
                if msg[0] == 2:
                    await self._answer(msg[1], msg[2], msg[3])
                    continue
                future = self.waiting.pop(msg[1], None)
                if future is not None and not future.done():
                    future.set_result(msg)
        except ConnectionClosed:
            pass

    async def _answer(self, uid: str, action: str, payload: dict[str, Any]) -> None:
        assert self.ws is not None
        body: str | None
        if action == "GetConfiguration":
            keys = payload.get("key")
            body = frames.get_configuration_answer(keys if isinstance(keys, list) else None)
            self.config_reads += 1
            if not keys:
                self.full_read.set()
        else:
            body = ANSWERS.get(action)
        text = (f"[3,{json.dumps(uid)},{body}]" if body is not None
                else json.dumps([4, uid, "NotImplemented", action, {}]))
        await self.ws.send(text)
        if action == "TriggerMessage" and payload.get("requestedMessage") == "StatusNotification":
            self.fleet.keep(self.report_connectors())

    async def close(self) -> None:
        if self.reader is not None:
            self.reader.cancel()
        if self.ws is not None:
            await self.ws.close()
        self.ws = None
        self.full_read.clear()


class Fleet:
    """All chargers of this process."""

    def __init__(self, ids: list[str], booting: set[str]) -> None:
        self.chargers = [Charger(self, i, i in booting) for i in ids]
        self._tasks: set[asyncio.Task[Any]] = set()

    def keep(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def commission(self, url: str) -> dict[str, Any]:
        gate = asyncio.Semaphore(100)
        t0 = time.perf_counter()

        async def one(c: Charger) -> None:
            async with gate:
                await c.commission(url)
        results = await asyncio.gather(*(one(c) for c in self.chargers), return_exceptions=True)
        failed = [f"{c.charger_id}: {r!r}" for c, r in zip(self.chargers, results, strict=True) if r is not None]
        return {"seconds": round(time.perf_counter() - t0, 3), "failed": failed[:5], "errors": len(failed)}

    async def reconnect(self, url: str, port: int, started_at: float, within: float) -> dict[str, Any]:
        for c in self.chargers:
            await c.close()
            c.config_reads = 0
        port_open = await probe(port, started_at + within)
        results = await asyncio.gather(*(c.reconnect(url) for c in self.chargers), return_exceptions=True)
        accepted = {c.charger_id: r for c, r in zip(self.chargers, results, strict=True) if isinstance(r, float)}
        failed = [f"{c.charger_id}: {r!r}" for c, r in zip(self.chargers, results, strict=True)
                  if not isinstance(r, float)]
        return {"port_open_at": port_open, "accepted_at": accepted, "errors": len(failed), "failed": failed[:5]}

    def config_reads(self) -> dict[str, Any]:
        return {"get_configuration_calls": sum(c.config_reads for c in self.chargers)}

    async def stop(self) -> dict[str, Any]:
        await asyncio.gather(*(c.close() for c in self.chargers), return_exceptions=True)
        return {"stopped": True}


async def probe(port: int, deadline: float) -> float | None:
    """The first moment a TCP connection to the port succeeds (every 5 ms until `deadline`)."""
    while time.time() < deadline:
        try:
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.005)
            continue
        opened = time.time()
        writer.close()
        return opened
    return None


async def main(spec: dict[str, Any]) -> None:
    fleet = Fleet(spec["ids"], set(spec["booting"]))
    async for req in requests():
        op = req["op"]
        try:
            if op == "commission":
                emit(await fleet.commission(req["url"]))
            elif op == "reconnect":
                emit(await fleet.reconnect(req["url"], req["port"], req["started_at"], req["within"]))
            elif op == "wait_port":
                emit({"port_open_at": await probe(req["port"], req["until"])})
            elif op == "config_reads":
                emit(fleet.config_reads())
            elif op == "stop":
                emit(await fleet.stop())
                return
            else:
                emit({"error": f"unknown op {op}"})
        except (Exception, InvalidHandshake, InvalidURI) as exc:  # reported to the benchmark, which fails
            emit({"error": f"{op}: {exc!r}"})
    await fleet.stop()


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
