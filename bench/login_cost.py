"""Charger login cost (security profile 1): ``python -m bench.login_cost --chargers 100``.

Starts the gateway as `ocpp-gateway run` builds it (BACnet, Modbus and the admin API off) on
loopback and opens N websocket connections, `--concurrency` at a time, in three rounds: without
a password (`ocpp.require_password = false`, the old default), first logins with the site
password (the first ones pay one scrypt, then the in-memory check of a password that matched
before), each charger with its own key (one scrypt each: the reconnect storm after a restart),
and the same chargers again. Prints one JSON object: handshakes per second and p50/p99
handshake time per round.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import math
import os
import tempfile
import time
from typing import Any

PASSWORD = "bench-site-password"


def _percentile(sorted_ms: list[float], q: float) -> float:
    return sorted_ms[min(len(sorted_ms) - 1, max(0, math.ceil(q * len(sorted_ms)) - 1))]


async def _round(url: str, ids: list[str], password: str | None, concurrency: int) -> dict[str, Any]:
    from websockets.asyncio.client import connect
    gate = asyncio.Semaphore(concurrency)
    times: list[float] = []

    async def one(charger_id: str) -> None:
        headers = {}
        if password is not None:
            secret = password.format(charger_id)
            token = base64.b64encode(f"{charger_id}:{secret}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        async with gate:
            t0 = time.perf_counter()
            async with connect(f"{url}/{charger_id}", subprotocols=["ocpp1.6"],  # type: ignore[list-item]
                               additional_headers=headers, proxy=None, compression=None):
                times.append((time.perf_counter() - t0) * 1000)

    t0 = time.perf_counter()
    await asyncio.gather(*(one(i) for i in ids))
    elapsed = time.perf_counter() - t0
    times.sort()
    return {"handshakes": len(ids), "per_s": round(len(ids) / elapsed, 1),
            "p50_ms": round(_percentile(times, 0.5), 1), "p99_ms": round(_percentile(times, 0.99), 1)}


async def _gateway(data_dir: str, require_password: bool, own_keys: list[str] = ()) -> Any:
    from gateway.main import Gateway
    from gateway.settings import Settings
    settings = Settings()
    settings.ocpp.host, settings.ocpp.port = "127.0.0.1", 0
    settings.admin.enabled = settings.bacnet.enabled = settings.modbus.enabled = False
    settings.database.path = os.path.join(data_dir, "gateway.sqlite")
    settings.ocpp.require_password = require_password
    settings.ocpp.default_password = PASSWORD if require_password else ""
    gateway = Gateway(settings.validate())
    await gateway.start()
    for charger_id in own_keys:
        await gateway.device_book.add_device(charger_id, auth_key=f"key-of-{charger_id}")
    return gateway


async def main_async(chargers: int, concurrency: int) -> dict[str, Any]:
    ids = [f"LOGIN{i:05d}" for i in range(chargers)]
    result: dict[str, Any] = {"chargers": chargers, "concurrency": concurrency, "cpu_count": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        for name, require, rounds in (("no_password", False, 1), ("site_password", True, 2),
                                      ("own_key", True, 2)):
            gateway = await _gateway(os.path.join(tmp, name), require, ids if name == "own_key" else [])
            url = f"ws://127.0.0.1:{gateway.ports['ocpp']}/ocpp"
            try:
                for n in range(rounds):
                    label = name if rounds == 1 else f"{name}_{'first' if n == 0 else 'again'}"
                    password = {"no_password": None, "site_password": PASSWORD}.get(name, "key-of-{}")
                    result[label] = await _round(url, ids, password, concurrency)
            finally:
                await gateway.stop()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chargers", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=20)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main_async(args.chargers, args.concurrency)), indent=2))


if __name__ == "__main__":
    main()
