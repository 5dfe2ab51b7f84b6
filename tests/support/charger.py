"""The one fake charger of the tests: raw OCPP-J calls out, server calls answered from a table.

Raw frames on purpose: tests must be able to send what real chargers send, schema-breaking
frames included, which a validating client library would refuse to send. `ConfigTable` answers
GetConfiguration the ways chargers in the field do (shared notes section 8, pain point 2): all
keys, only `GetConfigurationMaxKeys` of them, never for an unkeyed request (evcc#15869), a
CALLERROR for a multi-key request, or only the first key asked (lbbrhzn#1442).
`accepted_charger` connects one, added and booted, once its configuration read has finished.
(The compatibility suite drives the product's own simulator, `gateway.simulator`, instead.)
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import websockets
from websockets.asyncio.client import ClientConnection

from gateway.chargers.standard_keys import REQUIRED_CORE_KEYS
from tests.support.wait import wait_until

if TYPE_CHECKING:
    from gateway.main import Gateway
    from tests.conftest import GatewayRunner

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


ALL_PROFILES = "Core,FirmwareManagement,LocalAuthListManagement,Reservation,SmartCharging,RemoteTrigger"


def standard_config(**values: str) -> dict[str, str]:
    """Every required Core key with a plausible value, plus `values`."""
    table = {key: "0" for key in REQUIRED_CORE_KEYS}
    table |= {"SupportedFeatureProfiles": ALL_PROFILES, "NumberOfConnectors": "2",
              "HeartbeatInterval": "300", "GetConfigurationMaxKeys": "50",
              "MeterValuesSampledData": "Energy.Active.Import.Register"}
    return table | values


class ConfigTable:
    """A charger's keys; `answer` is a TestCharger answer for GetConfiguration."""

    def __init__(self, values: dict[str, str], readonly: set[str] | None = None,
                 max_keys: int | None = None, unkeyed: str = "all", batch: str = "ok",
                 list_unknown: bool = True) -> None:
        self.values = dict(values)
        self.readonly = readonly or {"GetConfigurationMaxKeys", "SupportedFeatureProfiles",
                                     "NumberOfConnectors"}
        self.max_keys = max_keys
        self.unkeyed = unkeyed  # all | limit | never
        self.batch = batch  # ok | error | first
        self.list_unknown = list_unknown  # False: unknown keys are left out of answers (non-compliant)
        self.requests: list[list[str] | None] = []

    def _item(self, key: str) -> dict[str, Any]:
        return {"key": key, "value": self.values[key], "readonly": key in self.readonly}

    def answer(self, payload: dict[str, Any]) -> dict[str, Any] | tuple[str, str] | None:
        keys = payload.get("key")
        self.requests.append(keys)
        if not keys:
            if self.unkeyed == "never":
                return None
            names = list(self.values)
            if self.unkeyed == "limit" and self.max_keys:
                names = names[:self.max_keys]
            return {"configurationKey": [self._item(k) for k in names]}
        if self.max_keys and len(keys) > self.max_keys:
            return ("PropertyConstraintViolation", f"at most {self.max_keys} keys")
        if len(keys) > 1 and self.batch == "error":
            return ("GenericError", "one key at a time")
        if len(keys) > 1 and self.batch == "first":
            keys = keys[:1]
        answer: dict[str, Any] = {"configurationKey": [self._item(k) for k in keys if k in self.values]}
        if self.list_unknown:
            answer["unknownKey"] = [k for k in keys if k not in self.values]
        return answer

    def change(self, result: str = "Accepted") -> Any:
        """A ChangeConfiguration answer that applies Accepted values to the table."""
        def answer(payload: dict[str, Any]) -> dict[str, Any]:
            if payload["key"] not in self.values:
                return {"status": "NotSupported"}
            if payload["key"] in self.readonly:
                return {"status": "Rejected"}
            if result == "Accepted":
                self.values[payload["key"]] = payload["value"]
            return {"status": result}
        return answer


@contextlib.asynccontextmanager
async def accepted_charger(gw: Gateway, runner: GatewayRunner, charger_id: str = "CP1",
                           table: ConfigTable | None = None,
                           **answers: Any) -> AsyncIterator[TestCharger]:
    """An added charger, connected and booted, whose configuration read has finished."""
    if charger_id not in gw.device_book.devices:
        await gw.device_book.add_device(charger_id)
    async with TestCharger(runner.url, charger_id) as cp:
        if table is not None:
            cp.answers["GetConfiguration"] = table.answer
        cp.answers.update(answers)
        await cp.boot()
        await read_finished(gw, charger_id)
        yield cp


async def read_finished(gw: Gateway, charger_id: str, reads: int = 1) -> list[dict[str, Any]]:
    """Wait until the gateway logged `reads` finished configuration reads; return those lines."""
    async def logged() -> list[dict[str, Any]]:
        return await gw.history.general_log(charger_id, message_type="ConfigurationRead")

    async def finished() -> bool:
        return len(await logged()) >= reads
    await wait_until(finished, 10, what=f"configuration read of {charger_id}")
    return await logged()


async def next_call(cp: TestCharger, action: str) -> dict[str, Any]:
    """The next call of `action` the charger received (others, e.g. reads, are skipped)."""
    while True:
        got, payload = await cp.received.get()
        if got == action:
            return payload


