"""A central system written the way the `ocpp` library's documentation shows, on its defaults.

Why: the second reference of the benchmark table (issue "Fast where a building feels it"). The
floor is what the transport alone costs; this is what a typical Python central system costs
(the library's router: jsonschema validation of every CALL and CALLRESULT, camelCase <->
snake_case conversion, dataclass payloads). It keeps nothing: no database, no points.

Run: ``python -m bench.ocpp_library_server --port 0`` prints ``LISTENING <port>`` once it accepts.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import signal
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from ocpp.routing import on
from ocpp.v16 import ChargePoint, call_result
from ocpp.v16.enums import Action, AuthorizationStatus, RegistrationStatus
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from bench.floor import BACKLOG, HEARTBEAT_INTERVAL_S, MAX_SIZE, SUBPROTOCOL

TRANSACTION_IDS = itertools.count(1)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class LibraryCentralSystem(ChargePoint):
    """One charger's session, with a handler per charger-initiated action the load sends."""

    @on(Action.boot_notification)
    def on_boot(self, **_: Any) -> call_result.BootNotification:
        return call_result.BootNotification(current_time=_now(), interval=HEARTBEAT_INTERVAL_S,
                                            status=RegistrationStatus.accepted)

    @on(Action.heartbeat)
    def on_heartbeat(self, **_: Any) -> call_result.Heartbeat:
        return call_result.Heartbeat(current_time=_now())

    @on(Action.status_notification)
    def on_status(self, **_: Any) -> call_result.StatusNotification:
        return call_result.StatusNotification()

    @on(Action.authorize)
    def on_authorize(self, **_: Any) -> call_result.Authorize:
        return call_result.Authorize(id_tag_info={"status": AuthorizationStatus.accepted})

    @on(Action.start_transaction)
    def on_start(self, **_: Any) -> call_result.StartTransaction:
        return call_result.StartTransaction(transaction_id=next(TRANSACTION_IDS),
                                            id_tag_info={"status": AuthorizationStatus.accepted})

    @on(Action.stop_transaction)
    def on_stop(self, **_: Any) -> call_result.StopTransaction:
        return call_result.StopTransaction(id_tag_info={"status": AuthorizationStatus.accepted})

    @on(Action.meter_values)
    def on_meter_values(self, **_: Any) -> call_result.MeterValues:
        return call_result.MeterValues()


async def handle(ws: ServerConnection) -> None:
    charger_id = ws.request.path.rstrip("/").rsplit("/", 1)[-1] if ws.request else "unknown"
    try:
        await LibraryCentralSystem(charger_id, ws).start()
    except ConnectionClosed:
        pass


async def serve_library(host: str, port: int) -> None:
    """Serve with the floor's websocket settings until SIGTERM/SIGINT."""
    async with serve(handle, host, port, subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
                     compression=None, max_size=MAX_SIZE, backlog=BACKLOG) as server:
        print(f"LISTENING {server.sockets[0].getsockname()[1]}", flush=True)
        stop = asyncio.get_running_loop().create_future()
        for sig in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
        await stop


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.ocpp_library_server", description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    args = p.parse_args(argv)
    logging.getLogger("ocpp").setLevel(logging.WARNING)  # the library logs every frame at INFO
    asyncio.run(serve_library(args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
