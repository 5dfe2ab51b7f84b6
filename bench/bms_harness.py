"""Shared parts of the BMS-side benchmarks: the gateway under test and its client processes.

The gateway runs in the benchmark's own process, built as `ocpp-gateway run` builds it (a real
`Gateway` of `gateway.main`; history, schema validation, BACnet and Modbus on; loopback
and free ports). Chargers (`bench.bms_chargers`) and the BACnet client (`bench.bms_bacnet`) run in
child processes driven by JSON lines, so neither is measured inside the gateway's event loop.
Every timestamp that crosses a process boundary is `time.time()`: one host, one clock.
"""

from __future__ import annotations

import asyncio
import gc
import json
import math
import os
import platform
import socket
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from bench import procstat

ROOT = Path(__file__).resolve().parent.parent


def free_udp_port() -> int:
    """A UDP port nobody uses on 127.0.0.1 now (BAC0 cannot bind port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def charger_ids(n: int) -> list[str]:
    return [f"BMSB{i:05d}" for i in range(1, n + 1)]


async def add_devices(db_path: str, ids: list[str]) -> None:
    """Put chargers into the device database before the gateway starts (slots 1..N, in order)."""
    from gateway.history.store import HistoryStore
    store = HistoryStore(db_path)
    await store.open()
    try:
        for charger_id in ids:
            await store.add_device(charger_id, "Accepted")
    finally:
        await store.close()


def gateway_settings(db_path: str, bacnet_port: int, unit_ids: bool = False, **smart: Any) -> Any:
    """The settings a user runs with, on loopback: only addresses, ports and the database differ."""
    from gateway.settings import Settings
    settings = Settings()
    settings.ocpp.host, settings.ocpp.port = "127.0.0.1", 0
    settings.ocpp.require_password = False  # the benchmark chargers send no password
    settings.admin.port = 0
    settings.bacnet.address, settings.bacnet.port = "127.0.0.1/8", bacnet_port
    settings.modbus.port, settings.modbus.unit_id_per_charger = 0, unit_ids
    settings.database.path = db_path
    for key, value in smart.items():
        setattr(settings.smart_charging, key, value)
    return settings.validate()


async def start_gateway(settings: Any) -> Any:
    from gateway.main import Gateway
    gateway = Gateway(settings)
    await gateway.start()
    return gateway


class Agent:
    """A child process spoken to in JSON lines: one request, one answer."""

    def __init__(self, proc: asyncio.subprocess.Process, name: str) -> None:
        self.proc = proc
        self.name = name

    @classmethod
    async def spawn(cls, module: str, spec: dict[str, Any]) -> Agent:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", module, json.dumps(spec), cwd=ROOT,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=64 * 1024 * 1024)
        agent = cls(proc, module)
        await agent.answer(timeout=60)  # {"ready": true}
        return agent

    async def answer(self, timeout: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not line:
            raise RuntimeError(f"{self.name} exited (code {await self.proc.wait()})")
        reply = json.loads(line)
        if reply.get("error"):
            raise RuntimeError(f"{self.name}: {reply['error']}")
        return reply

    async def ask(self, op: str, timeout: float = 120, **fields: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps({"op": op, **fields}) + "\n").encode())
        await self.proc.stdin.drain()
        return await self.answer(timeout)

    async def close(self) -> None:
        if self.proc.returncode is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                await asyncio.wait_for(self.proc.wait(), 15)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


class CpuWindow:
    """CPU of the gateway (this process), the agents, and everything else over an interval."""

    def __init__(self, agents: list[Agent]) -> None:
        self.pids = [os.getpid()] + [a.proc.pid for a in agents]
        self.t0 = time.perf_counter()
        self.cpu0 = [procstat.cpu_seconds(p) for p in self.pids]
        self.machine0 = procstat.machine_times()

    def result(self) -> dict[str, Any]:
        wall = time.perf_counter() - self.t0
        cpu1 = [procstat.cpu_seconds(p) for p in self.pids]
        own = [b - a for a, b in zip(self.cpu0, cpu1, strict=True) if a is not None and b is not None]
        return {"gateway_cpu_pct": procstat.cpu_percent(self.cpu0[0], cpu1[0], wall),
                "clients_cpu_pct": round(sum(own[1:]) / wall * 100, 1) if wall >= 0.5 else None,
                **procstat.others_percent(self.machine0, procstat.machine_times(), sum(own), wall)}


def percentiles(values_ms: list[float]) -> dict[str, Any]:
    """count, p50, p99, max (nearest rank), in ms."""
    if not values_ms:
        return {"count": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}
    s = sorted(values_ms)

    def rank(q: float) -> float:
        return s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))]
    return {"count": len(s), "p50_ms": round(rank(0.50), 2), "p99_ms": round(rank(0.99), 2),
            "max_ms": round(s[-1], 2)}


def machine() -> dict[str, Any]:
    versions = {}
    for dist in ("BAC0", "bacpypes3", "pymodbus", "websockets", "ocpp"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return {"nproc": os.cpu_count(), "python": platform.python_version(), "loadavg": os.getloadavg(),
            **versions}


def tempdir() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="bmsbench-")


class LoopWatch:
    """Stalls of the gateway's event loop (this process), and the garbage collections behind them.

    The gateway shares this process, so a loop lag here is a pause every charger and BMS client
    sees; gen-2 collections over tens of thousands of BACnet objects are the usual suspect.
    """

    def __init__(self) -> None:
        self.lag_max_ms = 0.0
        self.gc_ms: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self._gc_t0 = 0.0
        self._task: asyncio.Task[None] | None = None

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_t0 = time.perf_counter()
        else:
            self.gc_ms[info["generation"]].append((time.perf_counter() - self._gc_t0) * 1000)

    async def _lag(self) -> None:
        while True:
            t0 = time.perf_counter()
            await asyncio.sleep(0.01)
            self.lag_max_ms = max(self.lag_max_ms, (time.perf_counter() - t0 - 0.01) * 1000)

    def start(self) -> None:
        gc.callbacks.append(self._on_gc)
        self._task = asyncio.ensure_future(self._lag())

    def result(self) -> dict[str, Any]:
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)
        if self._task is not None:
            self._task.cancel()
        gen2 = self.gc_ms[2]
        return {"gateway_loop_lag_max_ms": round(self.lag_max_ms, 1), "gc_gen2_collections": len(gen2),
                "gc_gen2_max_ms": round(max(gen2, default=0.0), 1),
                "gc_max_ms": round(max(max(v, default=0.0) for v in self.gc_ms.values()), 1)}
