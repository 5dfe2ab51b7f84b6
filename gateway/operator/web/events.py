"""Server-sent events for the web pages: which parts changed, coalesced, never the data itself.

A page subscribes once (`/ui/events`); each event is a JSON list of topics (`chargers`,
`charger:<id>`, `site`, `log`). The page's own script then fetches the server-rendered fragment
of each part that shows one of those topics, so the browser never renders data itself.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from gateway.model.station import ChangeEvent
    from gateway.operator.api import AdminParts

log = logging.getLogger(__name__)
COALESCE_S = 0.25  # at most four updates a second per page, however busy the chargers are
KEEPALIVE_S = 15.0
LOG_POLL_S = 1.0
MAX_TOPICS = 50


class EventHub:
    """Collects change topics from the live model, smart charging and the general log."""

    def __init__(self, parts: AdminParts) -> None:
        self.parts = parts
        self.clients: set[asyncio.Queue[list[str] | None]] = set()
        self.pending: set[str] = set()
        self.wake = asyncio.Event()
        self.task: asyncio.Task[Any] | None = None
        self.last_log_line: Any = None
        parts.registry.subscribe(self._on_change)

    def _on_change(self, event: ChangeEvent) -> None:
        if self.clients:
            # A meter value or a configuration key changes the device page, not the device list.
            if event.kind not in ("meter", "config"):
                self.pending.add("chargers")
            self.pending.add(f"charger:{event.charger_id}")
            self.wake.set()

    def charging_changed(self, charger_id: str | None) -> None:
        """Smart charging changed (told by the controller, wired in gateway.main)."""
        if self.clients:
            self.pending.update(("site",) if charger_id is None else ("site", f"charger:{charger_id}"))
            self.wake.set()

    def join(self) -> asyncio.Queue[list[str] | None]:
        queue: asyncio.Queue[list[str] | None] = asyncio.Queue(maxsize=100)
        self.clients.add(queue)
        if self.task is None or self.task.done():
            self.task = self.parts.spawn(self._run(), "web page events")
        return queue

    def leave(self, queue: asyncio.Queue[list[str] | None]) -> None:
        self.clients.discard(queue)

    def close(self) -> None:
        for queue in list(self.clients):
            queue.put_nowait(None)
        self.clients.clear()

    async def _run(self) -> None:
        while self.clients:
            try:
                await asyncio.wait_for(self.wake.wait(), LOG_POLL_S)
            except TimeoutError:
                pass
            self.wake.clear()
            await self._poll_log()
            if self.pending:
                topics, self.pending = sorted(self.pending), set()
                if len(topics) > MAX_TOPICS:  # a busy site: "every charger" instead of a long list
                    topics = sorted({t for t in topics if not t.startswith("charger:")} | {"charger:*"})
                for queue in list(self.clients):
                    if queue.full():
                        continue  # a stalled page skips updates; its next one refreshes all
                    queue.put_nowait(topics)
            await asyncio.sleep(COALESCE_S)

    async def _poll_log(self) -> None:
        try:
            last = await self.parts.history.general_log(limit=1)
        except Exception:  # the store closing at shutdown; the next page load shows the log
            return
        # A MeterValues line has no general_log id (gateway.history.queries): the line itself tells.
        newest = tuple(last[-1].values()) if last else None
        if newest != self.last_log_line:
            self.last_log_line = newest
            self.pending.add("log")


async def stream(request: web.Request, hub: EventHub) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                           "X-Accel-Buffering": "no"})
    await response.prepare(request)
    queue = hub.join()
    try:
        await response.write(b"retry: 2000\n\n")
        while True:
            try:
                topics = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
            except TimeoutError:
                await response.write(b": keep-alive\n\n")
                continue
            if topics is None:
                break
            await response.write(f"data: {json.dumps(topics)}\n\n".encode())
    except ConnectionResetError:
        pass
    finally:
        hub.leave(queue)
    return response
