"""A minimal OCPP-J test charger: sends raw calls, answers server calls from a table.

Raw frames on purpose: tests must be able to send what real chargers send, schema-breaking
frames included, which a validating client library would refuse to send.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
from collections.abc import Callable
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

Answer = Callable[[dict[str, Any]], dict[str, Any] | tuple[str, str]]


# The site password the test gateways use (tests/conftest.py): every test charger sends it unless
# the test says otherwise (password=None sends no credentials at all).
SITE_PASSWORD = "site-password-for-tests"


def basic_auth(charger_id: str, password: str | bytes) -> dict[str, str]:
    """The header of security profile 1: HTTP Basic, user name = charger id."""
    secret = password if isinstance(password, bytes) else password.encode()
    token = base64.b64encode(charger_id.encode() + b":" + secret).decode()
    return {"Authorization": f"Basic {token}"}


class CallErrorReply(Exception):
    def __init__(self, code: str, description: str) -> None:
        super().__init__(f"{code}: {description}")
        self.code = code


class TestCharger:
    """Connects as `charger_id`; `answers[action]` answers server calls (payload or (code, text))."""

    __test__ = False  # not a pytest test class

    def __init__(self, url: str, charger_id: str, password: str | None = SITE_PASSWORD,
                 subprotocols: list[str] | None = None) -> None:
        self.url = f"{url.rstrip('/')}/{charger_id}"
        self.charger_id = charger_id
        self.password = password
        self.subprotocols = ["ocpp1.6"] if subprotocols is None else subprotocols
        self.ws: ClientConnection | None = None
        self.answers: dict[str, Answer] = {}
        self.received: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        self.unrecorded: set[str] = set()  # actions answered but kept out of `received`
        self._ids = itertools.count(1)
        self._pending: dict[str, asyncio.Future[Any]] = {}
        self._reader: asyncio.Task[None] | None = None

    async def connect(self) -> TestCharger:
        headers = basic_auth(self.charger_id, self.password) if self.password is not None else {}
        self.ws = await websockets.connect(self.url, subprotocols=self.subprotocols or None,
                                           additional_headers=headers, compression=None)
        self._reader = asyncio.create_task(self._read())
        return self

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)

    async def __aenter__(self) -> TestCharger:
        return await self.connect()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _read(self) -> None:
        assert self.ws is not None
        try:
            async for text in self.ws:
                msg = json.loads(text)
                if msg[0] == 2:
                    await self._answer(msg[1], msg[2], msg[3])
                else:
                    fut = self._pending.pop(msg[1], None)
                    if fut is not None and not fut.done():
                        fut.set_result(msg)
        except websockets.ConnectionClosed:
            pass
        finally:
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(ConnectionError("closed"))

    async def _answer(self, uid: str, action: str, payload: dict[str, Any]) -> None:
        if action not in self.unrecorded:
            await self.received.put((action, payload))
        answer = self.answers.get(action)
        if answer is None:
            frame = [4, uid, "NotImplemented", f"{action} not supported", {}]
        else:
            result = answer(payload)
            if result is None:  # never answer (timeout tests)
                return
            frame = [4, uid, result[0], result[1], {}] if isinstance(result, tuple) else [3, uid, result]
        assert self.ws is not None
        await self.ws.send(json.dumps(frame))

    async def send_raw(self, text: str, uid: str | None = None) -> list[Any]:
        """Send any text; wait for the answer carrying `uid` (when given)."""
        assert self.ws is not None
        fut: asyncio.Future[Any] | None = None
        if uid is not None:
            fut = self._pending[uid] = asyncio.get_running_loop().create_future()
        await self.ws.send(text)
        return await asyncio.wait_for(fut, 10) if fut else []

    async def call(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        uid = str(next(self._ids))
        reply = await self.send_raw(json.dumps([2, uid, action, payload]), uid)
        if reply[0] == 4:
            raise CallErrorReply(reply[2], reply[3])
        return reply[2]

    async def boot(self, **extra: Any) -> dict[str, Any]:
        payload = {"chargePointVendor": "TestVendor", "chargePointModel": "TM-1", **extra}
        return await self.call("BootNotification", payload)

    async def status(self, connector_id: int, status: str, error_code: str = "NoError",
                     **extra: Any) -> dict[str, Any]:
        return await self.call("StatusNotification", {"connectorId": connector_id, "status": status,
                                                      "errorCode": error_code, **extra})
