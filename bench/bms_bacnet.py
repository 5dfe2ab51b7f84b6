"""A BACnet/IP client for the benchmarks (bacpypes3), in its own process.

`python -m bench.bms_bacnet '{"bind": "127.0.0.1/8:<port>", "server": "127.0.0.1:<port>"}'`,
then JSON lines on stdin. The client binds another UDP port than the gateway: bacpypes3 0.0.110
never sends to a 127.x address on its own port (notes 1.4). Ops:

* `subscribe` (objects, lifetime): SubscribeCOV, unconfirmed, on each object; from then on
  every presentValue notification is recorded with its arrival time (`time.time()`);
* `notifications`: the records so far (object, value, arrival), then forget them;
* `rpm` (objects, requests): ReadPropertyMultiple of presentValue of `objects` (a list of
  lists, one request each, round-robin), `requests` times; latencies in ms;
* `wait_read` (object, within): ReadProperty presentValue until the device answers; the
  wall time of the first answer (start-up benchmark);
* `write` (object, value, priority): WriteProperty presentValue (REAL); send and ack times.
* `watch` (groups, within): ReadPropertyMultiple of presentValue and reliability of every
  object of every group, over and over, until each group is live: each of its objects answers
  with reliability no-fault-detected, and a BI/BV at present-value active. The wall time each
  group first was (restart benchmark: a group is one charger's points).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from bacpypes3.apdu import ErrorRejectAbortNack
from bacpypes3.app import Application
from bacpypes3.argparse import SimpleArgumentParser
from bacpypes3.pdu import Address
from bacpypes3.primitivedata import ObjectIdentifier, Real

from bench.pipe import emit, requests


class Client:
    def __init__(self, app: Application, server: str) -> None:
        self.app = app
        self.server = Address(server)
        self.records: list[tuple[str, float, float]] = []
        self.tasks: set[asyncio.Task[None]] = set()
        self.failed_subscriptions = 0

    async def _follow(self, obj: list[Any], lifetime: int, ready: asyncio.Future[None]) -> None:
        oid = ObjectIdentifier(tuple(obj))
        key = f"{obj[0]},{obj[1]}"
        try:
            async with self.app.change_of_value(self.server, oid, None, False, lifetime) as scm:
                ready.set_result(None)
                while True:
                    prop, value = await scm.get_value()
                    if str(prop) in ("present-value", "presentValue"):
                        self.records.append((key, float(value), time.time()))
        except Exception as exc:
            if not ready.done():
                ready.set_exception(exc)
            raise

    async def subscribe(self, objects: list[list[Any]], lifetime: int) -> dict[str, Any]:
        t0 = time.perf_counter()
        for chunk in range(0, len(objects), 20):
            waits = []
            for obj in objects[chunk:chunk + 20]:
                ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                task = asyncio.create_task(self._follow(obj, lifetime, ready))
                self.tasks.add(task)
                waits.append(asyncio.wait_for(ready, 10))
            for result in await asyncio.gather(*waits, return_exceptions=True):
                if isinstance(result, BaseException):
                    self.failed_subscriptions += 1
        return {"subscribed": len(objects) - self.failed_subscriptions, "failed": self.failed_subscriptions,
                "seconds": round(time.perf_counter() - t0, 3)}

    def notifications(self) -> dict[str, Any]:
        records, self.records = self.records, []
        return {"records": records}

    async def rpm(self, requests_spec: list[list[list[Any]]], requests: int) -> dict[str, Any]:
        latencies, errors, values = [], 0, 0
        for i in range(requests + 20):
            objects = requests_spec[i % len(requests_spec)]
            args: list[Any] = []
            for obj in objects:
                args += [ObjectIdentifier(tuple(obj)), ["presentValue"]]
            t0 = time.perf_counter()
            try:
                result = await asyncio.wait_for(self.app.read_property_multiple(self.server, args), 10)
            except (Exception, ErrorRejectAbortNack):
                errors += 1
                continue
            elapsed = (time.perf_counter() - t0) * 1000
            bad = sum(1 for *_x, value in result if isinstance(value, ErrorRejectAbortNack))
            errors += 1 if bad or len(result) != len(objects) else 0
            if i >= 20:  # warm-up: the first requests fill caches on both sides
                latencies.append(elapsed)
                values += len(result)
        return {"latencies_ms": latencies, "errors": errors, "values": values}

    async def wait_read(self, obj: list[Any], timeout: float) -> dict[str, Any]:
        deadline, tries = time.time() + timeout, 0
        oid = ObjectIdentifier(tuple(obj))
        while time.time() < deadline:
            tries += 1
            try:
                value = await asyncio.wait_for(self.app.read_property(self.server, oid, "presentValue"), 0.2)
            except (Exception, ErrorRejectAbortNack):
                await asyncio.sleep(0.02)
                continue
            if not isinstance(value, ErrorRejectAbortNack):
                return {"answered_at": time.time(), "tries": tries, "value": str(value)}
            await asyncio.sleep(0.02)
        return {"answered_at": None, "tries": tries}

    async def watch(self, groups: dict[str, list[list[Any]]], within: float) -> dict[str, Any]:
        deadline, live, sweeps = time.time() + within, {}, 0
        states: dict[tuple[str, int], bool] | None = {}
        waiting = dict(groups)
        while waiting and time.time() < deadline:
            sweeps += 1
            names = list(waiting)
            for i in range(0, len(names), 20):  # about 40 objects per request
                chunk = names[i:i + 20]
                states = await self._read_live([o for n in chunk for o in waiting[n]])
                if states is None:  # the device does not answer (yet): start over at once
                    break
                at = time.time()
                for n in chunk:
                    if all(states.get((o[0], o[1]), False) for o in waiting[n]):
                        live[n] = at
                        del waiting[n]
            if waiting:
                await asyncio.sleep(0.2 if states is not None else 0.02)
        return {"live_at": live, "not_live": sorted(waiting)[:10], "not_live_count": len(waiting), "sweeps": sweeps}

    async def _read_live(self, objects: list[list[Any]]) -> dict[tuple[str, int], bool] | None:
        """Whether each object reads live now; None when the device did not answer."""
        args: list[Any] = []
        for obj in objects:
            args += [ObjectIdentifier(tuple(obj)), ["presentValue", "reliability"]]
        try:
            result = await asyncio.wait_for(self.app.read_property_multiple(self.server, args), 1.0)
        except (Exception, ErrorRejectAbortNack):
            return None
        seen: dict[tuple[str, int], dict[str, Any]] = {}
        for oid, prop, _index, value in result:
            seen.setdefault((str(oid[0]), int(oid[1])), {})[str(prop)] = value
        states = {}
        for obj in objects:
            props = seen.get((obj[0], obj[1]), {})
            reliability, value = props.get("reliability"), props.get("present-value")
            ok = reliability is not None and str(reliability) == "no-fault-detected"
            if obj[0] in ("binary-input", "binary-value"):
                ok = ok and str(value) == "active"
            states[(obj[0], obj[1])] = ok
        return states

    async def write(self, obj: list[Any], value: float, priority: int) -> dict[str, Any]:
        sent = time.time()
        answer = await self.app.write_property(self.server, ObjectIdentifier(tuple(obj)), "presentValue",
                                               Real(value), None, priority)
        return {"sent_at": sent, "acked_at": time.time(),
                "error": str(answer) if isinstance(answer, ErrorRejectAbortNack) else None}


async def main(spec: dict[str, Any]) -> None:
    args = SimpleArgumentParser().parse_args(["--address", spec["bind"], "--instance", "990002",
                                              "--name", "bench-client"])
    client = Client(Application.from_args(args), spec["server"])
    async for req in requests():
        op = req.pop("op")
        try:
            if op == "subscribe":
                emit(await client.subscribe(req["objects"], req.get("lifetime", 600)))
            elif op == "notifications":
                emit(client.notifications())
            elif op == "rpm":
                emit(await client.rpm(req["objects"], req["requests"]))
            elif op == "wait_read":
                emit(await client.wait_read(req["object"], req.get("within", 60)))
            elif op == "watch":
                emit(await client.watch(req["groups"], req.get("within", 60)))
            elif op == "write":
                emit(await client.write(req["object"], req["value"], req.get("priority", 8)))
            else:
                emit({"error": f"unknown op {op}"})
        except Exception as exc:  # the task boundary: the benchmark reports it
            emit({"error": f"{op}: {exc!r}"})
    client.app.close()


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
