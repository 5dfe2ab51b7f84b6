"""CPU per MeterValues inside the gateway, without sockets: where the time of one message goes.

End to end (`bench.run`) a message's CPU mixes the gateway's own work with the websocket
reader and writer and the kernel's sockets, and the machine's load moves it. This driver builds
the whole gateway as `ocpp-gateway run` does (history store, live model, points, smart
charging, general log), hands each of `--chargers` guest sessions an in-memory connection, boots
them, then feeds `--messages` rounds of the benchmark's 8-value MeterValues, one per charger per
round, and waits for every answer (each after its group commit, as in production). It reports
the CPU of the event loop's thread and of the SQLite writer's thread per message, from
/proc/self/task (user and system time apart: the writer's system time is its WAL writes and
fsyncs).

    python -m bench.session_cpu --chargers 1000 --messages 40
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from collections.abc import Sequence
from typing import Any

from bench import frames
from bench.procstat import CLOCK_TICKS
from gateway.main import Gateway, event_loop_factory
from gateway.settings import Settings

ROUND_TIMEOUT_S = 60.0  # every charger's answer to one round; a hang fails the run instead


class MemoryConnection:
    """What a session reads from and writes to: frames in, answers counted."""

    remote_address = ("127.0.0.1", 0)

    def __init__(self) -> None:
        self.inbox: asyncio.Queue[str | None] = asyncio.Queue()
        self.answers = 0
        self.wanted = 0
        self.done: asyncio.Future[None] | None = None

    def __aiter__(self) -> MemoryConnection:
        return self

    async def __anext__(self) -> str:
        message = await self.inbox.get()
        if message is None:
            raise StopAsyncIteration
        return message

    async def send(self, text: str) -> None:
        self.answers += 1
        if self.done is not None and self.answers >= self.wanted and not self.done.done():
            self.done.set_result(None)

    async def close(self, *args: Any) -> None:
        self.inbox.put_nowait(None)

    def expect(self, answers: int) -> asyncio.Future[None]:
        self.wanted = answers
        self.done = asyncio.get_running_loop().create_future()
        return self.done


def thread_cpu() -> dict[str, tuple[float, float]]:
    """(user, system) CPU seconds of the event loop's thread ("loop", the main thread) and of
    the others together ("other threads": the SQLite writer, and the BACnet/Modbus helpers)."""
    out = {"loop": (0.0, 0.0), "other threads": (0.0, 0.0)}
    for tid in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{tid}/stat", encoding="ascii") as f:
            data = f.read()
        fields = data[data.rfind(")") + 2:].split()
        name = "loop" if int(tid) == os.getpid() else "other threads"
        user, system = out[name]
        out[name] = (user + int(fields[11]) / CLOCK_TICKS, system + int(fields[12]) / CLOCK_TICKS)
    return out


def gateway_settings(data_dir: str, commit_interval_s: float) -> Settings:
    settings = Settings()
    settings.ocpp.host = "127.0.0.1"
    settings.ocpp.port = settings.admin.port = settings.bacnet.port = settings.modbus.port = 0
    settings.ocpp.require_password = False
    settings.registration.guest_response = "Accepted"
    settings.database.path = os.path.join(data_dir, "gateway.sqlite")
    settings.database.commit_interval_s = commit_interval_s
    return settings.validate()


async def measure(chargers: int, messages: int, commit_interval_s: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ocpp-session-cpu-") as data_dir:
        gateway = Gateway(gateway_settings(data_dir, commit_interval_s))
        await gateway.start()
        assert gateway.connections is not None
        links = [MemoryConnection() for _ in range(chargers)]
        sessions = [asyncio.create_task(gateway.connections.run(f"BENCH{i:05d}", link, "ocpp1.6", "127.0.0.1:0"))
                    for i, link in enumerate(links)]
        try:
            boot = json.dumps([2, "boot", "BootNotification", {"chargePointVendor": "Bench", "chargePointModel": "B"}])
            waits = [link.expect(1) for link in links]
            for link in links:
                link.inbox.put_nowait(boot)
            async with asyncio.timeout(ROUND_TIMEOUT_S):
                await asyncio.gather(*waits)
            await gateway.history.flush_log()
            template = frames.meter_values(None)
            before, cpu0, wall0 = thread_cpu(), time.process_time(), time.perf_counter()
            for round_no in range(messages):
                waits = []
                for i, link in enumerate(links):
                    waits.append(link.expect(link.answers + 1))
                    link.inbox.put_nowait(template % {"uid": f"m{round_no}-{i}", "wh": 1000 + round_no,
                                                      "ts": f"2026-12-05T06:{round_no // 60 % 60:02d}:{round_no % 60:02d}Z"})
                async with asyncio.timeout(ROUND_TIMEOUT_S):
                    await asyncio.gather(*waits)
            after, cpu1, wall1 = thread_cpu(), time.process_time(), time.perf_counter()
        finally:
            for link in links:
                link.inbox.put_nowait(None)
            await asyncio.gather(*sessions, return_exceptions=True)
            await gateway.stop()
    count = chargers * messages
    per_thread = {name: {"user_us": round((user - before[name][0]) / count * 1e6, 1),
                         "system_us": round((system - before[name][1]) / count * 1e6, 1)}
                  for name, (user, system) in after.items()}
    return {"chargers": chargers, "messages": count, "commit_interval_s": commit_interval_s,
            "cpu_us_per_message": round((cpu1 - cpu0) / count * 1e6, 1),
            "wall_us_per_message": round((wall1 - wall0) / count * 1e6, 1), "threads": per_thread}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.session_cpu", description=__doc__.splitlines()[0])
    p.add_argument("--chargers", type=int, default=1000)
    p.add_argument("--messages", type=int, default=40, help="MeterValues per charger")
    p.add_argument("--commit-interval", type=float, default=Settings().database.commit_interval_s,
                   help="database.commit_interval_s (s)")
    args = p.parse_args(argv)
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:  # the gateway's own loop
        result = runner.run(measure(args.chargers, args.messages, args.commit_interval))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
