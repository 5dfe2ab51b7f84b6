"""A closed or refused connection leaves no reference cycle on the gateway's side (issue 12, RSS).

The gateway freezes the cyclic collector's view every few seconds (gateway.gc_policy), and above
a size never collects the frozen set again: a cycle left by a closed connection would then stay
for good, and hostile peers open and close thousands. Without cycles, reference counting frees
a closed connection whatever the collector does. Counted with the collector off: everything
`gc.collect()` finds afterwards is a cycle refcounting could not free.
"""

from __future__ import annotations

import asyncio
import gc
import sys
from collections import Counter

import pytest

from gateway.main import Gateway
from tests.conftest import GatewayRunner
from tests.support.charger import TestCharger
from tests.support.wait import wait_until

GATEWAY_CODE = f"{sys.modules['gateway'].__path__[0]}"


@pytest.fixture
async def gateway(runner: GatewayRunner) -> Gateway:
    # Guests accepted: a made-up id gets past registration, the worst case on purpose.
    # The status check (a task holding its session) ends soon after a close: then nothing holds
    # a closed session, and a session left only in a cycle would show.
    return await runner.start(registration={"guest_response": "Accepted"},
                              ocpp={"status_trigger_after_s": 0.05, "max_message_bytes": 4096})


async def refused_handshake(url: str, n: int) -> None:
    with pytest.raises(Exception, match="HTTP 401|HTTP 429"):
        await TestCharger(url, f"REFUSED-{n}", password="wrong").connect()


async def bad_frames_then_close(url: str, n: int) -> None:
    async with TestCharger(url, f"BAD-{n}") as cp:
        reply = await cp.send_raw('[2,"b1","BootNotification",{"chargePointVendor":1}]', uid="b1")
        assert reply[0] == 4
        reply = await cp.send_raw('[2,"b2","Heartbeat",{"x":[[[[]]]]}', uid="b2")  # not JSON
        assert reply[0] == 4


async def boot_with_refused_configuration_read(url: str, n: int) -> None:
    """The gateway's GetConfiguration gets a CALLERROR (NotImplemented), as from many chargers."""
    async with TestCharger(url, f"HONEST-{n}") as cp:
        await cp.boot()
        action, _payload = await cp.received.get()
        assert action == "GetConfiguration"
        await cp.call("Heartbeat", {})  # read after the CALLERROR: the gateway has handled it


async def close_with_a_call_pending(url: str, n: int) -> None:
    """The gateway's GetConfiguration is never answered: the connection closes under it."""
    async with TestCharger(url, f"SILENT-{n}") as cp:
        cp.answers["GetConfiguration"] = lambda _payload: None
        await cp.boot()
        await cp.received.get()


async def closed_for_invalid_utf8(url: str, n: int) -> None:
    """websockets closes with 1007 and keeps the UnicodeDecodeError (with its traceback)."""
    async with TestCharger(url, f"UTF8-{n}") as cp:
        assert cp.ws is not None
        await cp.ws.send(b'[2,"u","DataTransfer",{"vendorId":"\xff\xfe"}]', text=True)
        await cp.ws.wait_closed()
        assert cp.ws.close_code == 1007


async def closed_for_an_oversize_frame(url: str, n: int) -> None:
    """websockets closes with 1009 and keeps the PayloadTooBig (with its traceback)."""
    async with TestCharger(url, f"BIG-{n}") as cp:
        assert cp.ws is not None
        await cp.ws.send('[2,"b","DataTransfer",{"vendorId":"x","data":"' + "O" * 5000 + '"}]')
        await cp.ws.wait_closed()
        assert cp.ws.close_code == 1009


def all_closed(gateway: Gateway) -> bool:
    """No session open and no status check (which holds its session) still waiting."""
    return not gateway.connections.sessions and not any(
        task.get_coro().__qualname__ == "Connections.ask_for_status" for task in asyncio.all_tasks())


KINDS = (refused_handshake, bad_frames_then_close, boot_with_refused_configuration_read, close_with_a_call_pending,
         closed_for_invalid_utf8, closed_for_an_oversize_frame)
# The gateway's side of a websocket (the test chargers' side is websockets.client.ClientProtocol).
SERVER_SIDE = ("websockets.server.ServerProtocol", "gateway.ocpp.server.OcppConnection")


def gateway_side(garbage: list[object], port: int) -> Counter[str]:
    """The garbage objects that belong to the gateway's side of the connections (the test
    chargers run in this process too, and their own cycles are not counted)."""
    found: Counter[str] = Counter()
    for obj in garbage:
        kind = type(obj)
        name = f"{kind.__module__}.{kind.__qualname__}"
        if kind.__module__.startswith(("gateway.", "websockets.server", "websockets.asyncio.server")):
            found[name] += 1
        elif kind.__name__ == "frame" and obj.f_code.co_filename.startswith(GATEWAY_CODE):  # type: ignore[attr-defined]
            found[f"frame {obj.f_code.co_name}"] += 1  # type: ignore[attr-defined]
        elif kind.__name__ == "_SelectorSocketTransport" and obj.get_extra_info("sockname", ("", 0))[1] == port:
            found[name] += 1  # the accepted socket
    return found


async def test_closed_and_refused_connections_leave_no_cycles_on_the_gateway_side(gateway, runner):
    for kind in KINDS:  # warm up: caches and lazily built objects are not garbage
        await kind(runner.url, 0)
    await wait_until(lambda: all_closed(gateway))
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)  # keep what the collection finds, to name it
    try:
        for n in range(1, 6):
            for kind in KINDS:
                await kind(runner.url, n)
        await wait_until(lambda: all_closed(gateway))
        gc.collect()
        left = gateway_side(gc.garbage, gateway.ports["ocpp"])
        held = sum(type(obj).__name__ == "ChargerSession" for obj in gc.get_objects())  # garbage too
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert not left, f"30 closed connections left cycles: {dict(left)}"
    assert held == 0  # and nothing else holds a closed session


async def test_closed_connections_are_freed_without_any_collection(gateway, runner):
    """A cycle broken by a finalizer is not in `gc.garbage` (the generator's finalizer breaks it
    and refcounting frees the rest during the collection), but a frozen one is never collected:
    so with the collector off, the gateway's side of every closed connection must already be gone."""
    for kind in KINDS:
        await kind(runner.url, 0)
    await wait_until(lambda: all_closed(gateway))
    gc.collect()
    gc.disable()
    try:
        for n in range(1, 4):
            for kind in KINDS:
                await kind(runner.url, n)
        await wait_until(lambda: all_closed(gateway))
        alive = Counter(name for obj in gc.get_objects()
                        if (name := f"{type(obj).__module__}.{type(obj).__qualname__}") in SERVER_SIDE)
    finally:
        gc.enable()
    assert not alive, f"18 closed connections still held: {dict(alive)}"
