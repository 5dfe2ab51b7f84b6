"""A clean stop (SIGTERM, Ctrl-C, Gateway.stop) ends every background task (issue 12).

The suite once hung in `Gateway.stop()`: the smart-charging worker was cancelled at the moment
its wake-up event fired, `asyncio.wait_for` (Python 3.11) returned the event's result instead
of raising, and the worker kept looping.
"""

from __future__ import annotations

import asyncio

from tests.conftest import GatewayRunner
from tests.support.charger import SITE_PASSWORD, basic_auth


async def test_smart_charging_worker_ends_when_cancelled_as_it_is_woken(runner: GatewayRunner):
    gw = await runner.start()
    (worker,) = [t for t in gw.tasks._tasks if t.get_name() == "smart charging"]
    gw.charging._dirty.set()
    await asyncio.sleep(0)  # one loop step: the wake-up is delivered, the worker not yet resumed
    worker.cancel()
    done, _ = await asyncio.wait({worker}, timeout=5)
    assert worker in done and worker.cancelled()


async def test_gateway_stop_ends_every_task_and_keeps_what_was_queued(runner: GatewayRunner):
    gw = await runner.start()
    for i in range(50):
        gw.history.log("CP1", "Note", f"line {i}")
    tasks = set(gw.tasks._tasks)
    await asyncio.wait_for(runner.stop(), 5)
    assert all(t.done() for t in tasks)
    gw = await runner.start()
    assert len(await gw.history.general_log("CP1", message_type="Note")) == 50


async def test_a_charger_that_never_answers_the_close_does_not_hold_up_the_stop(runner: GatewayRunner):
    """A stop takes less than 5 s whatever the chargers do: this one completes the websocket
    handshake and then reads nothing more (its close frame is never answered)."""
    gw = await runner.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.ports["ocpp"])
    writer.write(b"GET /ocpp/MUTE HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                 b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ocpp1.6\r\n"
                 + "".join(f"{k}: {v}\r\n" for k, v in basic_auth("MUTE", SITE_PASSWORD).items()).encode()
                 + b"\r\n")
    assert b" 101 " in await reader.readuntil(b"\r\n\r\n")
    await asyncio.wait_for(runner.stop(), 5)
    writer.close()
