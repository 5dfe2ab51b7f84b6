"""One simulated charger for the load generator: a websocket, a reader task, one CALL in flight.

OCPP-J 1.6 section 4.1.1 allows one outstanding CALL per side, so a MeterValues scheduled
while the previous call is unanswered waits in `backlog`, as on a real charger; its latency
still counts from its scheduled time.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time
import traceback
from collections import deque
from typing import TYPE_CHECKING, Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bench import frames

if TYPE_CHECKING:
    from bench.loadgen import LoadGen

SUBPROTOCOL = "ocpp1.6"
MAX_SIZE = 256 * 1024
ENERGY_STEP_WH = 31  # 11 kW for 10 s, so stored meter readings keep rising like a real session

_uids = itertools.count(1)


class Charger:
    """One simulated charger: a websocket, a reader task and at most one CALL in flight."""

    def __init__(self, gen: LoadGen, charger_id: str, id_tag: str) -> None:
        self.gen = gen
        self.charger_id = charger_id
        self.id_tag = id_tag
        self.ws: ClientConnection | None = None
        self.alive = False
        self.transaction_id: int | None = None
        self.energy_wh = 0
        self.meter_template = ""
        # The call in flight: its uniqueId, and either a future (setup calls) or the
        # scheduled and actual send times (MeterValues).
        self.inflight_uid: str | None = None
        self.waiter: asyncio.Future[list[Any]] | None = None
        self.inflight_sched = 0.0
        self.inflight_sent = 0.0
        self.backlog: deque[float] = deque()
        self.reader: asyncio.Task[None] | None = None

    async def open(self) -> float:
        """Connect; return the handshake time in seconds."""
        t0 = time.perf_counter()
        self.ws = await connect(
            self.gen.url + self.charger_id,
            subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
            compression=None,
            proxy=None,  # else every connect scans os.environ for *_proxy: 0.4 ms each, storm-bound
            max_size=MAX_SIZE,
            open_timeout=self.gen.call_timeout,
            ping_interval=None,  # the server pings; client pings would only add generator load
            close_timeout=2,
        )
        elapsed = time.perf_counter() - t0
        if self.ws.subprotocol != SUBPROTOCOL:
            self.gen.storm_errors["subprotocol_not_ocpp16"] += 1
        self.alive = True
        self.reader = asyncio.create_task(self._read())
        return elapsed

    async def call(self, template: str) -> list[Any] | None:
        """Send one setup CALL and wait for its answer; None on timeout or disconnect."""
        if not self.alive or self.ws is None:
            return None
        uid = str(next(_uids))
        self.waiter = asyncio.get_running_loop().create_future()
        self.inflight_uid = uid
        try:
            await self.ws.send(template % {"uid": uid, "ts": self.gen.clock.now(), "wh": self.energy_wh})
            async with asyncio.timeout(self.gen.call_timeout):  # no extra task, unlike wait_for
                answer = await self.waiter
            return answer or None  # [] means the connection closed while waiting
        except TimeoutError:
            self.gen.storm_errors["timeout"] += 1
            return None
        except ConnectionClosed:
            return None
        finally:
            self.inflight_uid = None
            self.waiter = None

    async def schedule(self, sched: float) -> None:
        """Send a MeterValues now, or queue it behind the call in flight."""
        if not self.alive:
            self.gen.stage_errors["send_on_closed"] += 1
            return
        self.gen.outstanding += 1
        if self.inflight_uid is None:
            await self._send_meter(sched)
        else:
            self.backlog.append(sched)

    async def _send_meter(self, sched: float) -> None:
        assert self.ws is not None
        uid = str(next(_uids))
        self.energy_wh += ENERGY_STEP_WH
        frame = self.meter_template % {"uid": uid, "ts": self.gen.clock.now(), "wh": self.energy_wh}
        self.inflight_uid = uid
        self.inflight_sched = sched
        self.inflight_sent = time.perf_counter()
        try:
            await self.ws.send(frame)
        except ConnectionClosed:
            pass  # the reader sees the close and accounts for the lost calls

    async def finish_meter(self) -> None:
        """Release the slot of the MeterValues in flight and send the next queued one."""
        self.inflight_uid = None
        self.gen.outstanding -= 1
        if self.backlog and self.alive:
            await self._send_meter(self.backlog.popleft())

    def abandon(self) -> int:
        """Forget the call in flight and the queue (stage drain deadline); return how many."""
        lost = len(self.backlog) + (1 if self.inflight_uid is not None and self.waiter is None else 0)
        self.backlog.clear()
        if self.waiter is None:
            self.inflight_uid = None
        return lost

    async def _read(self) -> None:
        assert self.ws is not None
        try:
            async for raw in self.ws:
                await self._on_frame(raw)
        except ConnectionClosed:
            pass
        except Exception:  # the task boundary: a generator bug must show, not stall a charger
            self.gen.reader_errors += 1
            traceback.print_exc(file=sys.stderr)
        finally:
            self.alive = False
            if not self.gen.closing:
                self.gen.disconnects += 1
                if self.gen.stage is not None:
                    self.gen.stage.errors["disconnect"] += 1
                    self.gen.outstanding -= self.abandon()
            if self.waiter is not None and not self.waiter.done():
                self.waiter.set_result([])

    async def _on_frame(self, raw: str | bytes) -> None:
        now = time.perf_counter()
        try:
            msg = json.loads(raw)
            kind = msg[0]
            uid = msg[1]
        except (ValueError, IndexError, KeyError, TypeError):
            self.gen.bad_frames += 1
            return
        if kind == 2:
            await self._answer_server_call(
                uid, msg[2] if len(msg) > 2 else "", msg[3] if len(msg) > 3 else {}
            )
            return
        if uid != self.inflight_uid:
            self.gen.late_answers += 1  # answer to a call we already gave up on
            return
        if self.waiter is not None:
            if not self.waiter.done():
                self.waiter.set_result(msg)
            return
        stage = self.gen.stage
        if stage is not None:
            stage.record(self.inflight_sched, self.inflight_sent, now, kind == 3)
        self.gen.meter_values_answered += kind == 3  # bench.run checks each one is stored
        await self.finish_meter()

    async def _answer_server_call(self, uid: str, action: str, request: Any) -> None:
        """Answer a CALL from the server as a minimal charger would, so it never waits on us."""
        assert self.ws is not None
        self.gen.server_calls[action] += 1
        if action == "GetConfiguration":
            keys = request.get("key") if isinstance(request, dict) else None
            payload: str | None = frames.get_configuration_answer(keys if isinstance(keys, list) else None)
        else:
            payload = frames.SERVER_CALL_ANSWERS.get(action)
        if payload is None:
            answer = json.dumps([4, uid, "NotImplemented", f"load generator does not implement {action}", {}])
        else:
            answer = f"[3,{json.dumps(uid)},{payload}]"
        try:
            await self.ws.send(answer)
        except ConnectionClosed:
            pass
