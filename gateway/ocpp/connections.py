"""The chargers connected now: one `ChargerSession` per charger id, and who may take a call.

The server hands each accepted websocket to `Connections.run`; the rest of the gateway reaches
a charger through `session_for` (refuses an offline or rejected charger) or the `call` request
function built on it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from gateway.errors import ChargerUnavailable, OperationError
from gateway.ocpp.parts import SessionParts
from gateway.ocpp.session import ChargerSession

log = logging.getLogger(__name__)


class Connections:
    """The live sessions by charger id."""

    def __init__(self, parts: SessionParts) -> None:
        self.parts = parts
        self.sessions: dict[str, ChargerSession] = {}

    async def run(self, charger_id: str, websocket: Any, subprotocol: str, peer: str,
                  authenticated: bool = False) -> None:
        """Serve one accepted connection until it closes."""
        registry, history, settings = self.parts.registry, self.parts.history, self.parts.settings
        old = self.sessions.get(charger_id)
        if old is not None:
            # A charger that reconnects has usually lost the old socket without a close; the
            # new connection wins and the old one is closed cleanly (not counted as a fault).
            history.log(charger_id, "Connection", f"replaced by a new connection from {peer}")
            await old.ws.close(1000, "replaced by a new connection")
        station = registry.ensure(charger_id)
        station.registration = self.parts.policy.boot_response(station)
        session = ChargerSession(self.parts, station, websocket, authenticated)
        self.sessions[charger_id] = session
        registry.update_station(station, subprotocol=subprotocol, remote_address=peer)
        registry.set_online(station, True)
        if station.is_guest:
            self._bound_guests()
        history.log(charger_id, "Connected", f"from {peer}; subprotocol {subprotocol or 'none'}")
        log.info("%s: connected from %s", charger_id, peer)
        self.parts.spawn(self.ask_for_status(session, after_boot=False), f"status check for {charger_id}")
        try:
            await session.serve()
        finally:
            if self.sessions.get(charger_id) is session:
                del self.sessions[charger_id]
                code = websocket.close_code
                reason = f"websocket closed (code {code})" if code is not None else "connection lost"
                if registry.get(charger_id) is station:  # not forgotten meanwhile
                    registry.set_online(station, False, reason, settings.ocpp.websocket_lost_connection_fault)
                history.log(charger_id, "Disconnected", reason)
                log.info("%s: disconnected (%s)", charger_id, reason)

    def _bound_guests(self) -> None:
        """Keep the discovery list bounded (registration.max_guests): a flood of made-up ids must
        not grow memory for good."""
        max_guests = self.parts.settings.registration.max_guests
        for charger_id in self.parts.registry.drop_oldest_guests(max_guests):
            log.info("%s: dropped from the discovery list (more than %d guests)", charger_id, max_guests)

    async def forget_guest(self, charger_id: str, added: bool) -> bool:
        """Remove a guest from the discovery list; a connected one is disconnected first."""
        if added:
            raise OperationError(f"{charger_id} is in the device database: remove it there first")
        session = self.sessions.get(charger_id)
        if session is not None:
            await session.ws.close(1000, "removed by the operator")
            await session.closed.wait()
        if not self.parts.registry.forget(charger_id):
            return False
        self.parts.history.log(charger_id, "GuestRemoved", "removed from the discovery list by the operator")
        return True

    def is_connected(self, charger_id: str) -> bool:
        return charger_id in self.sessions

    def session_for(self, charger_id: str) -> ChargerSession:
        """The live session of a charger, or ChargerUnavailable; `ChargerSession.call` refuses what
        its registration does not allow (gateway/model/registration.py)."""
        session = self.sessions.get(charger_id)
        if session is None or session.closed.is_set():
            raise ChargerUnavailable(f"{charger_id} is offline")
        return session

    async def call(self, charger_id: str, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        """The request function: send one call to a charger that may take it; typed errors."""
        return await self.session_for(charger_id).call(action, payload)

    async def ask_for_status(self, session: ChargerSession, after_boot: bool) -> None:
        """Ask a charger that has not reported its connectors for StatusNotification.

        Many chargers send neither BootNotification nor StatusNotification after a mere
        reconnect, and some none after a triggered boot (real-firmware notes); without this the
        connectors would keep the status kept from before a restart, flagged as not confirmed.
        """
        await asyncio.sleep(self.parts.settings.ocpp.status_trigger_after_s)  # the charger's own reports first
        if (session.closed.is_set() or session.status_seen
                or self.parts.policy.boot_response(session.station) != "Accepted"):
            return
        if not after_boot and session.booted:
            return  # the boot's own check asks, counted from the boot
        try:
            answer = await session.call("TriggerMessage", {"requestedMessage": "StatusNotification"})
            self.parts.history.log(session.charger_id, "StatusRequested",
                                   f"no StatusNotification since connecting: TriggerMessage {answer.get('status')}")
        except OperationError as exc:
            log.info("%s: StatusNotification not triggered: %s", session.charger_id, exc)

    def ask_for_new_boot(self, charger_id: str) -> None:
        """A connected charger whose answer changed is asked to boot again now (TriggerMessage,
        allowed while Pending, OCPP 1.6 section 4.2.1) instead of after its retry interval.
        Chargers that refuse (zappi sends nothing until Accepted) boot at their interval."""
        session = self.sessions.get(charger_id)
        if session is None or session.closed.is_set():
            return
        if session.station.boot_status == self.parts.policy.boot_response(session.station):
            return

        async def trigger() -> None:
            try:
                await session.call("TriggerMessage", {"requestedMessage": "BootNotification"})
            except OperationError as exc:
                log.info("%s: no early boot: %s", charger_id, exc)
        self.parts.spawn(trigger(), f"boot trigger for {charger_id}")
