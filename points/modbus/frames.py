"""Modbus TCP framing the way the standard says, where pymodbus 3.16 does otherwise.

pymodbus hands the request handler one frame per TCP read and keeps a single "last request", so
a client that pipelines requests (MODBUS Messaging on TCP/IP 1.0b, 4.2: several outstanding
transactions) got only the first answered; and a request it cannot decode (a read of quantity 0
or 126) was answered with function code 0x80 and exception 01 instead of the request's function
code and exception 03 (MODBUS Application Protocol 1.1b3, 6.3/6.4). This handler splits the
buffer into every complete MBAP frame, answers them in order from one worker per connection, and
logs malformed traffic once per peer and minute (`points.peer_log`).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

from pymodbus.constants import ExcCodes
from pymodbus.exceptions import ModbusIOException, NoSuchIdException
from pymodbus.pdu import ExceptionResponse, ModbusPDU
from pymodbus.server import ModbusTcpServer
from pymodbus.server.requesthandler import ServerRequestHandler
from pymodbus.transaction import TransactionManager

from points.peer_log import PeerLog

log = logging.getLogger("points.modbus.server")
# pymodbus warns once per undecodable frame ("Unable to decode frame"); this handler says it once
# per peer and minute instead.
logging.getLogger("pymodbus.logging").setLevel(logging.ERROR)
MBAP_SIZE = 7
# MBAP + the largest PDU is 260 bytes; a little more is still read and answered (a write of 124
# registers is 261 bytes: exception 03, not silence); a longer length field is no Modbus frame.
MAX_FRAME = 1024
MAX_BUFFER = 65536
KNOWN_FUNCTIONS = frozenset({1, 2, 3, 4, 5, 6, 8, 11, 12, 15, 16, 17, 20, 21, 22, 23, 24, 43})


class PipelinedHandler(ServerRequestHandler):
    """One client connection: every complete frame is queued and answered in order."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        # pymodbus drops the whole receive buffer past one frame's size (framer.MAX_SIZE): a
        # burst of pipelined requests vanished. Frames are taken out as they complete, so the
        # buffer only holds what a client sent ahead; 64 KiB is 7,000 read requests.
        self.max_buffer_size = MAX_BUFFER
        self._queue: deque[tuple[ModbusPDU, Any]] = deque()
        self._worker: asyncio.Task[None] | None = None

    def callback_data(self, data: bytes, addr: tuple | None = None) -> int:
        used = 0
        while len(data) - used >= MBAP_SIZE:
            frame = data[used:]
            protocol = int.from_bytes(frame[2:4], "big")
            length = int.from_bytes(frame[4:6], "big") + 6
            if protocol != 0 or not MBAP_SIZE + 1 <= length <= MAX_FRAME:
                self.server.malformed.warn(self._peer(), f"Modbus frame with protocol id {protocol} and length {length}: "
                               "connection buffer dropped")
                return len(data)  # no way to find the next frame boundary
            if len(frame) < length:
                break  # the rest arrives later
            self._take(frame[:length], addr)
            used += length
        if self._queue and (self._worker is None or self._worker.done()):
            self._worker = asyncio.get_running_loop().create_task(self._work())
        return used

    def _take(self, frame: bytes, addr: Any) -> None:
        try:
            TransactionManager.callback_data(self, frame, addr)
        except ModbusIOException as exc:
            function = frame[MBAP_SIZE]
            code = ExcCodes.ILLEGAL_VALUE if function in KNOWN_FUNCTIONS else ExcCodes.ILLEGAL_FUNCTION
            self.server.malformed.warn(self._peer(), f"Modbus request (function {function}) could not be decoded: "
                           f"answered with exception {int(code)}")
            self._queue.append((_Refusal(function, code, exc.transaction_id, exc.dev_id), addr))
            return
        if self.last_pdu is not None:
            self._queue.append((self.last_pdu, addr))
            self.last_pdu = None

    async def _work(self) -> None:
        while self._queue:
            pdu, addr = self._queue.popleft()
            self.server_send(await self._answer(pdu), addr)

    async def _answer(self, pdu: ModbusPDU) -> ModbusPDU:
        if isinstance(pdu, _Refusal):
            return pdu.response()
        try:
            response = await pdu.datastore_update(self.server.context, pdu.dev_id)
        except NoSuchIdException:
            response = ExceptionResponse(pdu.function_code, ExcCodes.GATEWAY_NO_RESPONSE)
        except Exception:
            log.exception("Modbus request %s could not be answered", pdu)
            response = ExceptionResponse(pdu.function_code, ExcCodes.DEVICE_FAILURE)
        response.transaction_id = pdu.transaction_id
        response.dev_id = pdu.dev_id
        return response

    def _peer(self) -> str:
        transport = getattr(self, "transport", None)
        peer = transport.get_extra_info("peername") if transport is not None else None
        return f"Modbus client {peer[0]}" if peer else "Modbus client"


class _Refusal:
    """A request that could not be decoded, answered with an exception in its turn."""

    def __init__(self, function: int, code: ExcCodes, transaction_id: int, dev_id: int) -> None:
        self.function, self.code, self.transaction_id, self.dev_id = function, code, transaction_id, dev_id

    def response(self) -> ExceptionResponse:
        return ExceptionResponse(self.function, self.code, device_id=self.dev_id, transaction=self.transaction_id)


class GatewayModbusServer(ModbusTcpServer):
    """pymodbus' TCP server with the pipelining handler above."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.malformed = PeerLog(log)  # per server: one line per client and minute

    def callback_new_connection(self) -> PipelinedHandler:
        return PipelinedHandler(self, self.trace_packet, self.trace_pdu, self.trace_connect)
