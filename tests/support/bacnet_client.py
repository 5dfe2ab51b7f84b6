"""A BACnet/IP client in its own process, driven by JSON lines on stdin (tests only).

Usage: python tests/support/bacnet_client.py 127.0.0.1/8:<client port>
It must bind another UDP port than the server: bacpypes3 0.0.110 never sends to a 127.x
address on its own port (notes 1.4). Each request line {"id", "op", ...} gets one answer line
{"id", "ok", "value" | "error"}; COV notifications arrive as {"cov": "<object>", "values"}.
Ops: whois(target), read(addr, obj, prop), rpm(addr, obj, props), write(addr, obj, prop, value,
type, priority), subscribe(addr, obj, lifetime).
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any as _Any

from bacpypes3.apdu import (
    ErrorRejectAbortNack,
    ReadRangeRequest,
    SimpleAckPDU,
    WritePropertyMultipleError,
    WritePropertyMultipleRequest,
    WritePropertyRequest,
)
from bacpypes3.app import Application
from bacpypes3.argparse import SimpleArgumentParser
from bacpypes3.basetypes import PropertyValue, WriteAccessSpecification
from bacpypes3.constructeddata import Any
from bacpypes3.pdu import Address
from bacpypes3.primitivedata import CharacterString, Enumerated, Null, ObjectIdentifier, Real, Unsigned

TYPES = {"real": Real, "unsigned": Unsigned, "string": CharacterString, "null": lambda v: Null(())}


def plain(value: _Any) -> _Any:
    """A bacpypes3 value as JSON."""
    if isinstance(value, ErrorRejectAbortNack):
        return {"error": str(value)}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, ObjectIdentifier):
        return [str(value[0]), int(value[1])]
    if getattr(value, "_choice", None):  # a CHOICE such as OptionalUnsigned
        return plain(getattr(value, value._choice))
    if isinstance(value, Enumerated):
        return str(value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return str(value)


def emit(obj: dict[str, _Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def subscribe(app: Application, address: Address, obj: ObjectIdentifier, lifetime: int,
                    ready: asyncio.Future[None]) -> None:
    async with app.change_of_value(address, obj, None, False, lifetime) as scm:
        ready.set_result(None)
        while True:
            prop, value = await scm.get_value()
            emit({"cov": str(obj), "property": str(prop), "value": plain(value)})


def plain_answer(answer: _Any) -> _Any:
    return "ack" if isinstance(answer, SimpleAckPDU) else plain(answer)


async def write_multiple(app: Application, address: Address, writes: list[list[_Any]]) -> _Any:
    """One WritePropertyMultiple of [object, property, value, type, priority] items, grouped
    by object in the given order; the error names the first failed write (clause 15.10)."""
    specs: list[WriteAccessSpecification] = []
    for obj, prop, value, type_, priority in writes:
        item = PropertyValue(propertyIdentifier=prop, value=Any(TYPES[type_](value)), priority=priority)
        if specs and specs[-1].objectIdentifier == ObjectIdentifier(obj):
            specs[-1].listOfProperties.append(item)
        else:
            specs.append(WriteAccessSpecification(objectIdentifier=ObjectIdentifier(obj), listOfProperties=[item]))
    try:
        answer = await app.request(WritePropertyMultipleRequest(listOfWriteAccessSpecs=specs, destination=address))
    except WritePropertyMultipleError as err:
        failed = err.firstFailedWriteAttempt
        return {"error": f"{err.errorType.errorClass}: {err.errorType.errorCode}",
                "first_failed": [plain(failed.objectIdentifier), str(failed.propertyIdentifier)]}
    except ErrorRejectAbortNack as err:
        return {"error": str(err)}
    return plain_answer(answer)


async def handle(app: Application, req: dict[str, _Any], tasks: set[asyncio.Task[None]]) -> _Any:
    op = req["op"]
    if op == "whois":
        i_ams = await app.who_is(req.get("low"), req.get("high"), Address(req["target"]), timeout=2)
        return [int(i.iAmDeviceIdentifier[1]) for i in i_ams]
    address = Address(req["addr"])
    if op == "wpm":
        return await write_multiple(app, address, req["writes"])
    obj = ObjectIdentifier(req["obj"])
    if op == "read":
        return plain(await app.read_property(address, obj, req["prop"], req.get("index")))
    if op == "rpm":
        result = await app.read_property_multiple(address, [obj, req["props"]])
        return {str(prop): plain(value) for _o, prop, _i, value in result}
    if op == "write":
        value = TYPES[req.get("type", "real")](req["value"])
        answer = await app.write_property(address, obj, req["prop"], value, None, req.get("priority"))
        if isinstance(answer, ErrorRejectAbortNack):
            raise RuntimeError(str(answer))
        return "ack"
    if op == "raw_write":  # a WriteProperty of any property with a value of any type
        value = TYPES[req["type"]](req["value"])
        request = WritePropertyRequest(objectIdentifier=obj, propertyIdentifier=req["prop"],
                                       propertyValue=Any(value), destination=address)
        return plain_answer(await app.request(request))
    if op == "raw":  # confirmed service the client library has no call for (ReadRange)
        request = ReadRangeRequest(objectIdentifier=obj, propertyIdentifier=req["prop"], destination=address)
        return plain_answer(await app.request(request))
    if op == "subscribe":
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(subscribe(app, address, obj, req.get("lifetime", 60), ready))
        tasks.add(task)
        await asyncio.wait_for(ready, 5)
        return "subscribed"
    raise ValueError(f"unknown op {op}")


async def main(bind: str) -> None:
    args = SimpleArgumentParser().parse_args(["--address", bind, "--instance", "990001",
                                              "--name", "test-client"])
    app = Application.from_args(args)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    tasks: set[asyncio.Task[None]] = set()
    emit({"ready": True})
    while line := await reader.readline():
        req = json.loads(line)
        try:
            emit({"id": req["id"], "ok": True, "value": await handle(app, req, tasks)})
        except (Exception, ErrorRejectAbortNack) as exc:  # reported to the test, which decides
            emit({"id": req["id"], "ok": False, "error": f"{type(exc).__name__}: {exc}"})
    app.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
