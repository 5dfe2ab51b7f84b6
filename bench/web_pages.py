"""How long the web pages take with many chargers: the device manager and its live part.

``python -m bench.web_pages --chargers 100,1000,5000`` starts a gateway in this process (no BACnet
or Modbus), puts N added chargers with two connectors each into the live model (no sockets: the
pages read the model), logs in like a browser, and times each page and part over a few requests.
Prints one JSON line per size: median and worst milliseconds per path, the HTML size, and the
worst event-loop lag seen meanwhile (what a charger's message would have waited; the benchmark's
own HTTP client shares the loop, so this is an upper bound).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp

from gateway.main import Gateway
from gateway.model.station import BootInfo
from gateway.operator.token import read_admin_token
from gateway.settings import Settings

PATHS = ("/ui/", "/ui/devices", "/ui/part/chargers", "/ui/devices/CP-1", "/ui/site", "/ui/history")


def settings_for(folder: Path) -> Settings:
    s = Settings()
    s.ocpp.host, s.ocpp.port, s.admin.port = "127.0.0.1", 0, 0
    s.bacnet.enabled = s.modbus.enabled = False
    s.database.path = str(folder / "gateway.sqlite")
    return s.validate()


async def measure(chargers: int, rounds: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as folder:
        gw = Gateway(settings_for(Path(folder)))
        await gw.start()
        try:
            for i in range(1, chargers + 1):
                station = gw.registry.ensure(f"CP-{i}")
                gw.registry.update_station(station, slot=i, registration="Accepted",
                                           boot=BootInfo("Vendor", "Model", f"SER{i}", "", "1.0"))
                for connector in (0, 1, 2):
                    gw.registry.update_connector(station, connector, status="Available")
            base = f"http://127.0.0.1:{gw.ports['admin']}"
            lag = [0.0]
            probe = asyncio.create_task(_watch_loop(lag))
            jar = aiohttp.CookieJar(unsafe=True)
            async with aiohttp.ClientSession(base, cookie_jar=jar) as http:
                await (await http.post("/ui/login", data={"token": read_admin_token(gw.settings)})).read()
                result: dict[str, object] = {"chargers": chargers}
                for path in PATHS:
                    times, size, lag[0] = [], 0, 0.0
                    for _ in range(rounds):
                        start = time.perf_counter()
                        async with http.get(path) as response:
                            size = len(await response.read())
                        times.append((time.perf_counter() - start) * 1000)
                    result[path] = {"median_ms": round(statistics.median(times), 1),
                                    "max_ms": round(max(times), 1), "kB": round(size / 1024, 1),
                                    "loop_lag_max_ms": round(lag[0], 1)}
                probe.cancel()
                return result
        finally:
            await gw.stop()


async def _watch_loop(worst: list[float], period_s: float = 0.005) -> None:
    loop = asyncio.get_running_loop()
    while True:
        before = loop.time()
        await asyncio.sleep(period_s)
        worst[0] = max(worst[0], (loop.time() - before - period_s) * 1000)


def main() -> None:
    logging.disable(logging.WARNING)  # slots past the flat Modbus range say so once per charger
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chargers", default="100,1000", help="comma-separated sizes")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    for size in (int(n) for n in args.chargers.split(",")):
        print(json.dumps(asyncio.run(measure(size, args.rounds))), flush=True)


if __name__ == "__main__":
    main()
