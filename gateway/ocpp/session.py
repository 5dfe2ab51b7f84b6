"""One connected charger: reads its frames, answers its calls, and carries the calls we send.

Inbound handlers follow the style guide: decode, one call into the model or a policy, answer.
Frames are handled one at a time per charger (OCPP-J allows one outstanding CALL each way), but
answers to our own calls are matched as soon as they arrive, so a pending operator call never
blocks the charger's messages and vice versa.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from websockets.exceptions import ConnectionClosed

from gateway.errors import ChargerCallError, ChargerTimeout, ChargerUnavailable, OcppError
from gateway.model import registration as registration_rule
from gateway.model.station import BootInfo, MeterKey, MeterReading, Station
from gateway.model.timestamps import iso_z, parse_timestamp
from gateway.ocpp import frames, meter_rows, protocol
from gateway.ocpp.summaries import confirmation_summary, request_summary, safe_summary

if TYPE_CHECKING:
    from gateway.ocpp.parts import SessionParts

log = logging.getLogger(__name__)
Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
_ids = itertools.count(1)

# Statuses that say a connector has no transaction (OCPP 1.6 section 7.7). Reported after a reboot
# for a connector we believe busy, the transaction ended without a StopTransaction (AC wallbox,
# manual 001 section 3.1: "Hard reset ... the data of the charging transaction ... will be lost").
_NO_TRANSACTION = frozenset({"Available", "Preparing"})
# Their log lines are part of the transaction record: never dropped by the log budget.
_TRANSACTION_ACTIONS = frozenset({"StartTransaction", "StopTransaction"})


class ChargerSession:
    """The websocket connection of one charger and the handlers for what it sends."""

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
        self.station = station
        self.ws = websocket
        self.authenticated = authenticated  # logged in with valid credentials (security profile 1)
        self.charger_id = station.charger_id
        self.closed = asyncio.Event()
        self._pending: dict[str, tuple[str, asyncio.Future[dict[str, Any]]]] = {}
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
        self.handlers: dict[str, Handler] = {
            "BootNotification": self.on_boot_notification,
            "Heartbeat": self.on_heartbeat,
            "StatusNotification": self.on_status_notification,
            "Authorize": self.on_authorize,
            "StartTransaction": self.on_start_transaction,
            "StopTransaction": self.on_stop_transaction,
            "MeterValues": self.on_meter_values,
            "DataTransfer": self.on_data_transfer,
            "DiagnosticsStatusNotification": self.on_diagnostics_status,
            "FirmwareStatusNotification": self.on_firmware_status,
        }

    # --- the read loop ---------------------------------------------------------------------
    async def serve(self) -> None:
        self._reader = asyncio.current_task()
        try:
            async for message in self.ws:
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
                    fut.set_exception(ChargerUnavailable(f"{self.charger_id} disconnected"))

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
                pending[1].set_exception(ChargerCallError(refusal.code, refusal.description, {}))

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
        self.log(f"{action}Request", safe_summary(request_summary, action, call.payload), "info", essential)
        if warning:
            self.log(f"{action}Request", f"accepted despite schema violation: {warning}", "warning")
            log.warning("%s: %s tolerated (quirk): %s", self.charger_id, action, warning)
        try:
            answer = await handler(call.payload)
        except OcppError as exc:
            return self._refusal(uid, action, exc.code, exc.description, "warning"), "refused"
        except Exception as exc:  # a handler bug must not end the charger's session
            log.exception("%s: handler for %s failed", self.charger_id, action)
            return self._refusal(uid, action, "InternalError", f"central system error: {exc}", "error"), "failed"
        self.log(f"{action}Confirmation", safe_summary(confirmation_summary, action, answer), "info", essential)
        return protocol.dump_result(uid, answer), "answered"

    def _handler_for(self, action: str) -> Handler:
        handler = self.handlers.get(action)
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
            if isinstance(frame, protocol.CallResult):
                future.set_result(frame.payload)
            else:
                future.set_exception(ChargerCallError(frame.code, frame.description, frame.details))

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
            future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
            self._pending[uid] = (action, future)
            self.log(f"{action}Request", request_summary(action, payload))
            await self._send(protocol.dump_call(uid, action, payload))
            try:
                answer = await asyncio.wait_for(future, timeout)
            except TimeoutError:
                self.log(f"{action}Timeout", f"no answer within {timeout:g} s", "warning")
                raise ChargerTimeout(f"{self.charger_id} did not answer {action} within {timeout:g} s") from None
            except ChargerCallError as exc:
                self.log(f"{action}Error", f"{exc.code}: {exc.description}", "warning")
                raise
            finally:
                self._pending.pop(uid, None)  # also when the caller was cancelled
        try:
            warning = frames.check_payload(self.station, action, answer, self.settings.ocpp, response=True)
        except OcppError as exc:
            self.log(f"{action}Confirmation", f"invalid answer: {exc}", "warning")
            raise ChargerCallError(exc.code, f"invalid {action} answer: {exc.description}") from None
        if warning:
            self.log(f"{action}Confirmation", f"tolerated: {warning}", "warning")
        self.log(f"{action}Confirmation", safe_summary(confirmation_summary, action, answer))
        return answer

    # --- inbound handlers ----------------------------------------------------------------
    async def on_boot_notification(self, p: dict[str, Any]) -> dict[str, Any]:
        status = self.policy.boot_response(self.station)
        interval = (self.settings.ocpp.heartbeat_interval_s if status == "Accepted"
                    else self.settings.registration.guest_reconnect_interval_s)
        # Triggered on a charger already Accepted: not a reboot, so no configuration read and no
        # profile rewrite (the charger's state is unchanged).
        reboot = not (self.boot_triggered and status == "Accepted" == self.station.boot_status)
        self.boot_triggered = False
        self.registry.update_station(self.station, boot=BootInfo.from_payload(p),
                                        boot_status=status, last_boot=self.clock(),
                                        heartbeat_interval_s=interval)
        # Kept in the background: the answer must not wait for the device database.
        self.spawn(self.policy.remember_boot(self.station), f"remember boot of {self.charger_id}")
        self.status_seen, self.booted = False, True
        _log_boot(self.charger_id, p, status, self.station.slot)
        if reboot:
            self._reported_since_boot = set()
            self.events.booted(self, status)
        else:
            self.history.log(self.charger_id, "BootNotification", "triggered boot: not a reboot")
        if status == "Accepted":  # some stacks send no StatusNotification after a (triggered) boot
            self.after_answer(lambda: self.events.ask_for_status(self, after_boot=True), "status check")
        return {"status": status, "currentTime": iso_z(self.clock()), "interval": interval}

    async def on_heartbeat(self, p: dict[str, Any]) -> dict[str, Any]:
        now = self.clock()
        self.registry.update_station(self.station, last_heartbeat=now)
        return {"currentTime": iso_z(now)}

    async def on_status_notification(self, p: dict[str, Any]) -> dict[str, Any]:
        ts = parse_timestamp(p.get("timestamp"))
        if ts is not None:
            self.station.clock_skew_s = round(ts - self.clock(), 3)
        connector_id = int(p["connectorId"])
        self.status_seen = True
        forgotten = self._forgotten_transaction(connector_id, p["status"])
        self.registry.update_connector(
            self.station, connector_id, status=p["status"], error_code=p["errorCode"],
            info=p.get("info", ""), vendor_id=p.get("vendorId", ""),
            vendor_error_code=p.get("vendorErrorCode", ""), restored=False)
        if forgotten is not None:
            await self._transaction_lost(connector_id, forgotten, p["status"])
        return {}

    def _forgotten_transaction(self, connector_id: int, status: str) -> int | None:
        """The transaction we hold on a connector whose first status after a boot says it has none."""
        seen = self._reported_since_boot
        if seen is None or connector_id in seen:
            return None
        seen.add(connector_id)
        known = self.station.connectors.get(connector_id)
        return known.transaction_id if known is not None and status in _NO_TRANSACTION else None

    async def _transaction_lost(self, connector_id: int, tx_id: int, status: str) -> None:
        """Stop counting a transaction the charger forgot; a StopTransaction still closes it later."""
        await self.history.mark_lost(self.charger_id, tx_id)
        self.registry.update_connector(self.station, connector_id, transaction_id=None,
                                          session_start=None)
        self.history.log(self.charger_id, "TransactionLost",
                            f"transaction {tx_id}: connector {connector_id} reported {status} after a "
                            "reboot without a StopTransaction; kept as lost unless one arrives", "warning")
        self.events.transaction_changed(self.station, connector_id)

    async def on_authorize(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"idTagInfo": self.policy.authorize(p["idTag"])}

    async def on_start_transaction(self, p: dict[str, Any]) -> dict[str, Any]:
        info = self.policy.authorize(p["idTag"])
        ts = parse_timestamp(p.get("timestamp"))
        start_time = iso_z(ts) if ts is not None else str(p.get("timestamp"))
        tx_id, is_new = await self.history.start_transaction(
            self.charger_id, int(p["connectorId"]), p["idTag"], float(p["meterStart"]),
            start_time, info["status"], p.get("reservationId"))
        if not is_new:
            self.history.log(self.charger_id, "StartTransactionRequest",
                                f"repeated start: answered with the same transaction {tx_id}", "warning")
        self.registry.update_connector(
            self.station, int(p["connectorId"]), transaction_id=tx_id, id_tag=p["idTag"],
            session_start=ts if ts is not None else self.clock(), meter_start_wh=float(p["meterStart"]))
        self.events.transaction_changed(self.station, int(p["connectorId"]))
        log.info("%s: transaction %s started on connector %s by idTag %s (%s)", self.charger_id, tx_id,
                 p["connectorId"], p["idTag"], info["status"])
        return {"transactionId": tx_id, "idTagInfo": info}

    async def on_stop_transaction(self, p: dict[str, Any]) -> dict[str, Any]:
        ts = parse_timestamp(p.get("timestamp"))
        stop_time = iso_z(ts) if ts is not None else str(p.get("timestamp"))
        tx_id = int(p["transactionId"])
        samples = [meter_rows.meter_row(self.charger_id, 0, tx_id, mv) for mv in p.get("transactionData") or []]
        outcome = await self.history.stop_transaction(
            self.charger_id, tx_id, float(p["meterStop"]), stop_time, p.get("reason", "Local"),
            p.get("idTag"), samples)
        log.info("%s: transaction %s stopped (%s), meter %s Wh", self.charger_id, tx_id,
                 p.get("reason", "Local"), p["meterStop"])
        if outcome == "orphan":
            self.history.log(self.charger_id, "StopTransactionRequest",
                                f"unknown transaction {tx_id}: stored as an orphan stop", "warning")
        for connector in self.station.connectors.values():
            if connector.transaction_id == tx_id:
                # meterStop is the energy register at the end (OCPP 1.6 6.49): the newest reading
                # for a charger that sends no MeterValues outside transactions.
                self.registry.record_readings(self.station, connector.connector_id, [(
                    MeterKey(connector.connector_id), MeterReading(
                        float(p["meterStop"]), "Wh", ts if ts is not None else self.clock(),
                        "Transaction.End"))])
                self.registry.update_connector(self.station, connector.connector_id,
                                                  transaction_id=None, session_start=None,
                                                  session_end=ts if ts is not None else self.clock())
                self.events.transaction_changed(self.station, connector.connector_id)
        answer: dict[str, Any] = {}
        if p.get("idTag"):
            answer["idTagInfo"] = self.policy.authorize(p["idTag"])
        return answer

    async def on_meter_values(self, p: dict[str, Any]) -> dict[str, Any]:
        connector_id = int(p["connectorId"])
        tx = p.get("transactionId")
        tx_id = int(tx) if tx is not None else None
        registry, station, history = self.registry, self.station, self.history
        for mv in p["meterValue"]:
            ts = parse_timestamp(mv.get("timestamp")) or self.clock()
            registry.record_readings(station, connector_id, meter_rows.readings(connector_id, mv, ts))
            history.queue_meter_value(meter_rows.meter_row(self.charger_id, connector_id, tx_id, mv))
        return {}

    async def on_data_transfer(self, p: dict[str, Any]) -> dict[str, Any]:
        # No vendor extensions are known; the spec answer for that is UnknownVendorId (6.17).
        return {"status": "UnknownVendorId"}

    async def on_diagnostics_status(self, p: dict[str, Any]) -> dict[str, Any]:
        self.registry.update_station(self.station, diagnostics_status=p["status"])
        return {}

    async def on_firmware_status(self, p: dict[str, Any]) -> dict[str, Any]:
        self.registry.update_station(self.station, firmware_status=p["status"])
        return {}



def _log_boot(charger_id: str, p: dict[str, Any], status: str, slot: int | None) -> None:
    """The one process-log line an operator watches for while commissioning."""
    what = f"{p.get('chargePointVendor', '?')} {p.get('chargePointModel', '?')}"
    if status == "Accepted":
        log.info("%s: booted (%s), accepted in slot %s", charger_id, what, slot)
    elif slot is None:
        log.info("%s: booted (%s), answered %s: a guest; add it with `ocpp-gateway devices add %s`",
                 charger_id, what, status, charger_id)
    else:
        log.info("%s: booted (%s), answered %s (its registration response)", charger_id, what, status)
