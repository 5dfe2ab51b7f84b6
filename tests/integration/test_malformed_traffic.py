"""Malformed BMS traffic is logged once per peer and minute (issue 14 item 11).

16,000 malformed datagrams to the BACnet port wrote 7 MB of tracebacks; garbage Modbus frames
got a log line each. The gateway must survive, keep answering, and say it once.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct

from tests.conftest import GatewayRunner
from tests.integration.test_bacnet import free_udp_port

GARBAGE = [b"\x81\x0a\x00\x08\x01\x00\xff\xff", b"\x81\x0b\x00\x05\x01", b"\x01\x02\x03", b"\x81\x0a\x00\x40" + bytes(60),
           b"\x81\x0a\x00\x0c\x01\x04\x02\x05\x01\x0c\x0c\x02"]


async def test_garbage_datagrams_to_the_bacnet_port_are_one_line_per_peer(runner: GatewayRunner, caplog):
    port = free_udp_port()
    gateway = await runner.start(bacnet={"enabled": True, "address": "127.0.0.1/8", "port": port})
    caplog.clear()
    with caplog.at_level(logging.DEBUG), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for i in range(1000):
            sock.sendto(GARBAGE[i % len(GARBAGE)], ("127.0.0.1", port))
            if i % 10 == 0:
                await asyncio.sleep(0)  # let the device's loop read them (the socket buffer is finite)
        loop = asyncio.get_running_loop()
        # a datagram after the garbage, answered: every earlier one was read
        await loop.run_in_executor(None, _read_device_name, port)
    noisy = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(noisy) <= 3, [r.getMessage()[:120] for r in noisy[:5]]
    assert not any(r.exc_info for r in noisy)
    assert gateway.ports["bacnet"] == port


def _read_device_name(port: int) -> None:
    """A ReadProperty of the device's object-name from another port, answered (ComplexACK)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(2)
        for _attempt in range(10):  # UDP: a request behind a full socket buffer is lost, ask again
            sock.sendto(bytes.fromhex("810a0011" "0104" "0005010c" "0c02015b26" "194d"), ("127.0.0.1", port))
            try:
                data, _ = sock.recvfrom(1500)
            except TimeoutError:
                continue
            assert data[6] == 0x30  # complex ACK
            return
        raise AssertionError("the device did not answer after the garbage")


async def test_garbage_modbus_frames_are_one_line_per_peer(runner: GatewayRunner, caplog):
    gateway = await runner.start(modbus={"enabled": True, "port": 0})
    caplog.clear()
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.ports["modbus"])
    try:
        with caplog.at_level(logging.DEBUG):
            for tid in range(200):
                pdu = bytes([0x04, 0x00])  # a read with half its fields
                writer.write(struct.pack(">HHHB", tid, 0, len(pdu) + 1, 1) + pdu)
            await writer.drain()
            for _ in range(200):
                header = await asyncio.wait_for(reader.readexactly(7), 5)
                await reader.readexactly(struct.unpack(">HHHB", header)[2] - 1)
    finally:
        writer.close()
    noisy = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(noisy) == 1 and "could not be decoded" in noisy[0].getMessage()
