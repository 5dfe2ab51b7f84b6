"""Modbus TCP at the frame level (issue 14 item 7), with a raw socket client.

MODBUS Application Protocol 1.1b3 section 6.3/6.4: a read of quantity 0 or more than 125
registers is answered with exception 03; MODBUS Messaging on TCP/IP 1.0b 4.2: a client may send
several requests without waiting (pipelining), each is answered, with its transaction id.
"""

from __future__ import annotations

import asyncio
import struct

import pytest

from tests.conftest import GatewayRunner


async def _gateway(runner: GatewayRunner):
    return await runner.start(modbus={"enabled": True, "port": 0})


def _request(tid: int, function: int, address: int, quantity: int, unit: int = 1) -> bytes:
    pdu = struct.pack(">BHH", function, address, quantity)
    return struct.pack(">HHHB", tid, 0, len(pdu) + 1, unit) + pdu


async def _answers(port: int, data: bytes, count: int) -> list[tuple[int, bytes]]:
    """(transaction id, PDU) of `count` answers to one write of `data`."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        out = []
        for _ in range(count):
            header = await asyncio.wait_for(reader.readexactly(7), 5)
            tid, _proto, length, _unit = struct.unpack(">HHHB", header)
            out.append((tid, await asyncio.wait_for(reader.readexactly(length - 1), 5)))
        return out
    finally:
        writer.close()


async def test_pipelined_requests_are_all_answered_in_order(runner: GatewayRunner):
    gateway = await _gateway(runner)
    burst = b"".join(_request(tid, 4, 0, 9) for tid in range(1, 11))
    answers = await _answers(gateway.ports["modbus"], burst, 10)
    assert [tid for tid, _pdu in answers] == list(range(1, 11))
    assert all(pdu[0] == 4 and pdu[1] == 18 for _tid, pdu in answers)


@pytest.mark.parametrize("function, quantity", [(4, 0), (4, 126), (3, 0), (3, 126)])
async def test_a_read_of_quantity_0_or_over_125_is_exception_03(runner: GatewayRunner, function, quantity):
    gateway = await _gateway(runner)
    [(tid, pdu)] = await _answers(gateway.ports["modbus"], _request(7, function, 0, quantity), 1)
    assert (tid, pdu) == (7, bytes([function | 0x80, 3]))


@pytest.mark.parametrize("quantity", [0, 124])
async def test_a_write_of_quantity_0_or_over_123_is_exception_03(runner: GatewayRunner, quantity):
    gateway = await _gateway(runner)
    pdu = struct.pack(">BHHB", 16, 10, quantity, 2 * quantity) + bytes(2 * quantity)
    frame = struct.pack(">HHHB", 9, 0, len(pdu) + 1, 1) + pdu
    [(tid, answer)] = await _answers(gateway.ports["modbus"], frame, 1)
    assert (tid, answer) == (9, bytes([16 | 0x80, 3]))


async def test_an_unknown_function_code_is_exception_01(runner: GatewayRunner):
    gateway = await _gateway(runner)
    [(tid, answer)] = await _answers(gateway.ports["modbus"], _request(5, 0x41, 0, 1), 1)
    assert (tid, answer) == (5, bytes([0x41 | 0x80, 1]))
