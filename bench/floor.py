"""The "floor" server: bare websockets answering every OCPP 1.6 CALL with a fixed CALLRESULT.

Why: it is what the transport alone costs with the gateway's websocket settings, so the
gateway's figures can be read as a ratio to it on the same machine and the same day
(the performance notes show run-to-run and machine-to-machine spread is large).
It parses each frame with json.loads, as any server must, and does nothing else.

Run: ``python -m bench.floor --port 0`` prints ``LISTENING <port>`` once it accepts.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import signal
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

# The websocket settings the gateway uses (performance notes, section 5.5): no
# permessage-deflate, 256 KiB largest frame, a listen backlog that absorbs a reconnect storm.
SUBPROTOCOL = "ocpp1.6"
MAX_SIZE = 256 * 1024
BACKLOG = 1024
HEARTBEAT_INTERVAL_S = 300

# Minimal valid CALLRESULT payloads (OCPP 1.6 JSON schemas) for charger-initiated actions.
FIXED_ANSWERS: dict[str, str] = {
    "Authorize": '{"idTagInfo":{"status":"Accepted"}}',
    "DataTransfer": '{"status":"Accepted"}',
    "DiagnosticsStatusNotification": "{}",
    "FirmwareStatusNotification": "{}",
    "MeterValues": "{}",
    "StatusNotification": "{}",
    "StopTransaction": '{"idTagInfo":{"status":"Accepted"}}',
}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class FloorServer:
    """Holds the only state the floor needs: the next transactionId."""

    def __init__(self) -> None:
        self._transaction_ids = itertools.count(1)

    def answer(self, raw: str | bytes) -> str | None:
        """The reply frame for one incoming frame; None for frames that need none."""
        try:
            msg = json.loads(raw)
            kind, uid = msg[0], msg[1]
        except (ValueError, IndexError, KeyError, TypeError):
            return None
        if kind != 2:
            return None  # the floor sends no CALLs, so answers to it cannot occur
        action = msg[2]
        payload = FIXED_ANSWERS.get(action)
        if payload is None:
            if action == "BootNotification":
                payload = (
                    f'{{"status":"Accepted","currentTime":"{_now()}","interval":{HEARTBEAT_INTERVAL_S}}}'
                )
            elif action == "Heartbeat":
                payload = f'{{"currentTime":"{_now()}"}}'
            elif action == "StartTransaction":
                tx = next(self._transaction_ids)
                payload = f'{{"idTagInfo":{{"status":"Accepted"}},"transactionId":{tx}}}'
            else:
                return json.dumps([4, uid, "NotImplemented", f"{action} is not an OCPP 1.6 CALL", {}])
        return f"[3,{json.dumps(uid)},{payload}]"

    async def handle(self, ws: ServerConnection) -> None:
        try:
            async for raw in ws:
                reply = self.answer(raw)
                if reply is not None:
                    await ws.send(reply)
        except ConnectionClosed:
            pass


async def serve_floor(host: str, port: int, ready: asyncio.Future[int] | None = None) -> None:
    """Serve until SIGTERM/SIGINT; report the bound port (port 0 picks a free one)."""
    floor = FloorServer()
    async with serve(
        floor.handle,
        host,
        port,
        subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
        compression=None,
        max_size=MAX_SIZE,
        backlog=BACKLOG,
    ) as server:
        bound = server.sockets[0].getsockname()[1]
        if ready is not None:
            ready.set_result(bound)
        else:
            print(f"LISTENING {bound}", flush=True)
        stop = asyncio.get_running_loop().create_future()
        for sig in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
        await stop


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    args = p.parse_args(argv)
    asyncio.run(serve_floor(args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
