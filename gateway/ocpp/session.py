"""One connected charger: reads its frames, answers its calls, and carries the calls we send.

The per-action handlers live in `handlers.py` (decode, one call into the model or a policy,
answer); this module checks each frame before a handler reads it, commits, answers and sends.
Frames are handled one at a time per charger (OCPP-J allows one outstanding CALL each way), but
answers to our own calls are matched as soon as they arrive, so a pending operator call never
blocks the charger's messages and vice versa.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.exceptions import ConnectionClosed

from gateway.errors import ChargerCallError, ChargerTimeout, ChargerUnavailable, OcppError
from gateway.model import registration as registration_rule
from gateway.model.station import Station
from gateway.ocpp import frames, protocol
from gateway.ocpp.handlers import Handler, InboundHandlers
from gateway.ocpp.parts import SessionParts
from gateway.ocpp.summaries import confirmation_summary, request_summary, safe_summary

log = logging.getLogger(__name__)
_ids = itertools.count(1)
# What a charger answers to one of our calls.
Answer = protocol.CallResult | protocol.CallError

# Their log lines are part of the transaction record: never dropped by the log budget.
_TRANSACTION_ACTIONS = frozenset({"StartTransaction", "StopTransaction"})
# Actions whose request line is written after the handler ran (see `_answer`).
_LINE_AFTER_HANDLER = frozenset({"StopTransaction", "MeterValues"})


class ChargerSession(InboundHandlers):
    """The websocket connection of one charger; the handlers for what it sends are inherited."""

    def __init__(self, parts: SessionParts, station: Station, websocket: Any,
                 authenticated: bool = False) -> None:
        self.settings = parts.settings
        self.registry = parts.registry
        self.history = parts.history
        self.clock = parts.clock
        self.policy = parts.policy  # registration answer and authorize (the device book)
        self.events = parts.events  # boot follow-ups and transaction changes (gateway.main)
        self.spawn = parts.spawn
        self.log_budget = parts.log_budget  # general-log lines per charger a minute
        self.meter_budget = parts.meter_budget  # meter-value bytes per charger an hour
        self.orphan_stops = parts.orphan_stops  # orphan StopTransaction rows per charger an hour
        self.orphan_not_stored = False
        self.request_in_rows: str | None = None  # the request line the handler kept with its rows
        self.payload_strict = False  # the payload of the call being handled passed the strict schema
        self.frame_sizes = parts.frame_sizes
        self.station = station
        self.ws = websocket
        self.authenticated = authenticated  # logged in with valid credentials (security profile 1)
        self.charger_id = station.charger_id
        self.closed = asyncio.Event()
        # Outgoing calls by message id: the future gets the answer's frame, or None when the
        # connection closed (never an exception, see `_handle_answer`).
        self._pending: dict[str, tuple[str, asyncio.Future[Answer | None]]] = {}
        self._call_lock = asyncio.Lock()
        self._after: list[tuple[Callable[[], Awaitable[None]], str]] = []
        self._reported_since_boot: set[int] | None = None  # connectors with a status since boot
        self.status_seen = False  # a StatusNotification arrived since the connection or last boot
        self.booted = False  # a BootNotification arrived on this connection
        self._recent = frames.RecentAnswers()
        # Set while no answer is owed: our calls wait for it, so that a call decided on what a
        # message changed (a remote stop of the transaction just started) never reaches the
        # charger before the answer that tells it (the answer waits for its commit).
        self._answered = asyncio.Event()
        self._answered.set()
        self._reader: asyncio.Task[Any] | None = None
        # A TriggerMessage(BootNotification) was accepted: the next boot is not a reboot (real
        # firmware keeps its state, transactions and profiles; shared notes on real firmware).
        self.boot_triggered = False
        self.triggered = registration_rule.TriggeredMessages()  # what we asked for with TriggerMessage

    # --- the read loop ---------------------------------------------------------------------
    async def serve(self) -> None:
        self._reader = asyncio.current_task()
        try:
            async for message in self.ws:
                if self.frame_sizes is not None:
                    self.frame_sizes.received(len(message))
                try:
                    await self.handle_frame(message)
                except Exception:  # never a 1011 close: a bug here must not end the session
                    log.exception("%s: frame not handled: %s", self.charger_id,
                                  frames.excerpt(message, 200))
                await self.history.room()  # backpressure: read no more while the writer is behind
        except ConnectionClosed:
            pass
        finally:
            self.closed.set()
            for _action, fut in self._pending.values():
                if not fut.done():
                    fut.set_result(None)  # `call` raises ChargerUnavailable
            self._pending.clear()

    async def handle_frame(self, message: str | bytes) -> None:
        """Check, then handle one message. Nothing reads a payload before `frames` and the schema."""
        self.registry.touch(self.station)
        frame = frames.read_frame(message, self.settings.ocpp.max_nesting_depth)
        if isinstance(frame, frames.Refusal):
            await self._refuse_frame(frame, message)
        elif isinstance(frame, protocol.Call):
            await self._handle_call(frame, message)
        else:
            self._handle_answer(frame)

    async def _refuse_frame(self, refusal: frames.Refusal, message: str | bytes) -> None:
        reply = refusal.reply()
        excerpt = frames.excerpt(message, self.settings.ocpp.log_line_max_chars)
        if self.log("FormationViolation", f"{refusal.description}: {excerpt}"
                    + ("" if reply else "; not answered (not a call)"), "warning"):
            log.warning("%s: malformed frame %s: %s", self.charger_id,
                        "answered with CALLERROR" if reply else "ignored", refusal.description)
        if reply is not None:
            await self._send(reply)
        else:  # a broken answer to our own call fails that call now instead of at its timeout
            pending = self._pending.pop(refusal.unique_id, None)
            if pending is not None and not pending[1].done():
                pending[1].set_result(protocol.CallError(refusal.unique_id, refusal.code, refusal.description, {}))

    async def _replay(self, uid: str, message: str | bytes) -> bool:
        """Answer a re-sent frame as the first time (see `frames.RecentAnswers`); note a reused id."""
        seen, answer = self._recent.lookup(uid, message)
        if seen == "resent" and answer is not None:
            self.log("RepeatedMessage", f"message id {uid} sent again: answered as the first time", "warning")
            await self._send(answer)
            return True
        if seen == "reused":
            self.log("RepeatedMessage", f"message id {uid} reused for a different message: handled as new",
                     "warning")
        return False

    async def _handle_call(self, call: protocol.Call, message: str | bytes) -> None:
        """Answer one CALL once everything it made the gateway keep is committed; a re-sent frame
        gets its first answer again (not a second effect)."""
        if await self._replay(call.unique_id, message):
            return
        history = self.history
        text = message if isinstance(message, str) else message.decode("utf-8", "replace")
        self._answered.clear()
        try:
            with history.exchange(self.charger_id, call.action, text) as exchange:
                reply, outcome = await self._answer(call, message)
                try:
                    await exchange.commit()
                except OcppError as exc:  # refused by the database: kept aside, not acknowledged
                    if self.request_in_rows is not None:  # set aside with the rows: written here
                        self.log(f"{call.action}Request", self.request_in_rows)
                        self.request_in_rows = None
                    reply = self._refusal(call.unique_id, call.action, exc.code, exc.description, "error")
                    outcome = "refused"
            await self._send(reply)
        finally:
            self._answered.set()
        if outcome != "failed":  # after an InternalError, a re-send is tried again
            self._recent.remember(call.unique_id, message, reply)
        while outcome == "answered" and self._after:
            work, what = self._after.pop(0)
            self.spawn(work(), f"{what} for {self.charger_id}")
        self._after.clear()

    async def _answer(self, call: protocol.Call, message: str | bytes) -> tuple[str, str]:
        """The frame answering `call` and how it went: "answered", "refused" or "failed".

        Checks come first, then the log, then the handler: nothing reads an unchecked payload.
        """
        action, uid = call.action, call.unique_id
        essential = action in _TRANSACTION_ACTIONS
        try:
            handler = self._handler_for(action)
            warning = (None if call.checked  # the strict schema passed on the fast path (fastcheck)
                       else frames.check_payload(self.station, action, call.payload, self.settings.ocpp))
            frames.check_connector(call.payload, self.settings.ocpp.max_connector_id)
        except OcppError as exc:  # one line holds the answer and the frame that earned it
            frame = frames.excerpt(message, self.settings.ocpp.log_line_max_chars)
            return self._refusal(uid, action, exc.code, exc.description, "warning", frame), "refused"
        # A StopTransaction's lines are written after its handler: they are transaction data (always
        # kept) unless it was an orphan past the charger's budget, which only the store can tell.
        # A MeterValues handler keeps its request line with its rows (`request_in_rows`): the
        # session writes it only when the handler refused the message.
        late = action in _LINE_AFTER_HANDLER
        if not late:
            self.log(f"{action}Request", safe_summary(request_summary, action, call.payload), "info", essential)
        if warning:
            self.log(f"{action}Request", f"accepted despite schema violation: {warning}", "warning")
            log.warning("%s: %s tolerated (quirk): %s", self.charger_id, action, warning)
        self.orphan_not_stored = False
        self.request_in_rows = None
        self.payload_strict = warning is None
        try:
            answer = await handler(call.payload)
        except OcppError as exc:
            self._late_request_line(call, late, essential)
            return self._refusal(uid, action, exc.code, exc.description, "warning"), "refused"
        except Exception as exc:  # a handler bug must not end the charger's session
            log.exception("%s: handler for %s failed", self.charger_id, action)
            self._late_request_line(call, late, essential)
            return self._refusal(uid, action, "InternalError", f"central system error: {exc}", "error"), "failed"
        essential = essential and not self.orphan_not_stored
        self._late_request_line(call, late, essential)
        if self.request_in_rows is None:
            self.log(f"{action}Confirmation", safe_summary(confirmation_summary, action, answer), "info", essential)
        return protocol.dump_result(uid, answer), "answered"

    def _late_request_line(self, call: protocol.Call, late: bool, essential: bool) -> None:
        """The request line of an action logged after its handler, unless the handler kept it
        with its rows (then the general log shows the exchange from them)."""
        if late and self.request_in_rows is None:
            essential = essential and not self.orphan_not_stored
            self.log(f"{call.action}Request", safe_summary(request_summary, call.action, call.payload), "info",
                     essential)

    def _handler_for(self, action: str) -> Handler:
        handler = self.handler(action)
        if handler is None:
            code = "NotSupported" if action in protocol.CENTRAL_ACTIONS else "NotImplemented"
            raise OcppError(code, f"{action} is not handled by this central system")
        self._check_may_receive(action)
        return handler

    def registration(self) -> str:
        """The registration status this charger is under now (gateway/model/registration.py)."""
        return registration_rule.registration_now(self.station.boot_status, self.policy.boot_response(self.station))

    def _check_may_receive(self, action: str) -> None:
        """A charger that is not Accepted sends only its boot and what we triggered (OCPP 1.6 4.2)."""
        registration = self.registration()
        triggered = self.triggered.is_expected(action, self.clock())
        if not registration_rule.charger_may_send(registration, action, triggered):
            log.warning("%s: %s refused with SecurityError: registration is %s, not Accepted",
                        self.charger_id, action, registration)
            raise OcppError("SecurityError", f"{action} refused: this charger is {registration}, "
                            "not Accepted by the central system (OCPP 1.6 section 4.2)")

    def check_may_send(self, action: str) -> None:
        """Refuse (ChargerUnavailable) a call this charger's registration does not allow now."""
        registration = self.registration()
        if not registration_rule.central_may_send(registration, action):
            allowed = (", ".join(sorted(registration_rule.CENTRAL_ALLOWED_WHEN_PENDING))
                       if registration == "Pending" else "nothing")
            raise ChargerUnavailable(f"{self.charger_id} is not accepted (registration {registration}): "
                                     f"{action} waits until it is; allowed now: {allowed}")

    def _refusal(self, uid: str, action: str, code: str, description: str, level: str, frame: str = "") -> str:
        """Log a CALLERROR (with the refused frame, when given) and return its text.

        A frame refused before its handler ran is no transaction data: its line is held to the budget.
        """
        self.log(f"{action}Error", f"{code}: {description}" + (f"; frame: {frame}" if frame else ""), level,
                 action in _TRANSACTION_ACTIONS and not frame)
        return protocol.dump_error(uid, code, description if code != "InternalError" else "central system error")

    def log(self, event: str, message: str, level: str = "info", essential: bool = False) -> bool:
        """One general-log line, cut and held to the charger's budget (`LogBudget.write`)."""
        return self.log_budget.write(self.history, self.charger_id, event, message, level, essential)

    def after_answer(self, work: Callable[[], Awaitable[None]], what: str) -> None:
        """Run `work` in a task once the answer to the current CALL has been sent."""
        self._after.append((work, what))

    def _handle_answer(self, frame: protocol.CallResult | protocol.CallError) -> None:
        pending = self._pending.pop(frame.unique_id, None)
        if pending is None:
            kind = "CALLRESULT" if isinstance(frame, protocol.CallResult) else f"CALLERROR {frame.code}"
            self.log("UnknownAnswer", f"{kind} for message id {frame.unique_id}, which no pending call has: "
                     "ignored", "warning")
            log.info("%s: answer to unknown or timed-out call %s", self.charger_id, frame.unique_id)
            return
        _action, future = pending
        if not future.done():
            # The frame, never an exception: a future holding an exception whose traceback
            # holds the frame that awaited the future is a reference cycle, which a frozen
            # collector (gateway.gc_policy) never frees. `call` raises the CALLERROR itself.
            future.set_result(frame)

    def _payload_of(self, action: str, frame: Answer | None) -> dict[str, Any]:
        """The payload of a CALLRESULT; raised here, in the caller's frame, for the rest."""
        if frame is None:
            raise ChargerUnavailable(f"{self.charger_id} disconnected")
        if isinstance(frame, protocol.CallError):
            self.log(f"{action}Error", f"{frame.code}: {frame.description}", "warning")
            raise ChargerCallError(frame.code, frame.description, frame.details)
        return frame.payload

    async def _send(self, text: str) -> None:
        try:
            await self.ws.send(text)
        except ConnectionClosed:
            log.info("%s: connection closed before an answer could be sent", self.charger_id)

    # --- calls the central system sends ----------------------------------------------------
    async def call(self, action: str, payload: dict[str, Any],
                   timeout: float | None = None) -> dict[str, Any]:
        """Send a CALL and wait for its answer; raise a typed error on CALLERROR or timeout.

        One outgoing call at a time per charger (OCPP-J 4.1.1); callers queue on the lock.
        """
        protocol.validate(action, payload)  # strict in what we send: raises on our own bug
        self.check_may_send(action)
        if action == "TriggerMessage":
            self.triggered.expect(payload["requestedMessage"], self.clock())
            if payload.get("requestedMessage") == "BootNotification":
                # Set before sending: the charger may boot before its answer reaches us.
                self.boot_triggered = self.station.boot_status == "Accepted"
        timeout = timeout if timeout is not None else self.settings.ocpp.response_timeout_s
        async with self._call_lock:
            if asyncio.current_task() is not self._reader:  # a handler's own call cannot wait for its answer
                try:
                    async with asyncio.timeout(timeout):
                        await self._answered.wait()
                except TimeoutError:
                    raise ChargerTimeout(f"{self.charger_id}: {action} not sent, an answer to the charger "
                                         f"was still pending after {timeout:g} s") from None
            if self.closed.is_set():
                raise ChargerUnavailable(f"{self.charger_id} is offline")
            uid = f"cs-{next(_ids)}"
            future: asyncio.Future[Answer | None] = asyncio.get_running_loop().create_future()
            self._pending[uid] = (action, future)
            self.log(f"{action}Request", request_summary(action, payload))
            await self._send(protocol.dump_call(uid, action, payload))
            try:
                frame = await asyncio.wait_for(future, timeout)
            except TimeoutError:
                self.log(f"{action}Timeout", f"no answer within {timeout:g} s", "warning")
                raise ChargerTimeout(f"{self.charger_id} did not answer {action} within {timeout:g} s") from None
            finally:
                self._pending.pop(uid, None)  # also when the caller was cancelled
        answer = self._payload_of(action, frame)
        try:
            warning = frames.check_payload(self.station, action, answer, self.settings.ocpp, response=True)
        except OcppError as exc:
            self.log(f"{action}Confirmation", f"invalid answer: {exc}", "warning")
            raise ChargerCallError(exc.code, f"invalid {action} answer: {exc.description}") from None
        if warning:
            self.log(f"{action}Confirmation", f"tolerated: {warning}", "warning")
        self.log(f"{action}Confirmation", safe_summary(confirmation_summary, action, answer))
        return answer
