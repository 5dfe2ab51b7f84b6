"""The handlers for what a charger sends: decode, one call into the model or a policy, answer.

`ChargerSession` (session.py) checks each frame and its payload, logs it, calls the handler its
action names and sends the answer once what the handler kept is committed; a handler only
decides (OCPP 1.6 sections 4 and 6). A handler's payload has passed the schema already.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from gateway.errors import OcppError
from gateway.history.store import HistoryStore
from gateway.model.station import BootInfo, Clock, MeterKey, Registry, Station
from gateway.model.timestamps import iso_z, parse_timestamp
from gateway.ocpp import meter_rows
from gateway.ocpp.logbudget import MeterBudget, OrphanStops
from gateway.ocpp.parts import RegistrationPolicy, SessionEvents, Spawn
from gateway.ocpp.summaries import request_summary, safe_summary
from gateway.settings import Settings

log = logging.getLogger(__name__)
Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]

# Statuses that say a connector has no transaction (OCPP 1.6 section 7.7). Reported after a reboot
# for a connector we believe busy, the transaction ended without a StopTransaction (AC wallbox,
# manual 001 section 3.1: "Hard reset ... the data of the charging transaction ... will be lost").
_NO_TRANSACTION = frozenset({"Available", "Preparing"})


class InboundHandlers:
    """The per-action handlers of one charger's session; `ChargerSession` sets what they use."""

    settings: Settings
    registry: Registry
    history: HistoryStore
    clock: Clock
    policy: RegistrationPolicy  # registration answer and authorize (the device book)
    events: SessionEvents  # boot follow-ups and transaction changes (gateway.main)
    spawn: Spawn
    station: Station
    charger_id: str
    boot_triggered: bool  # a TriggerMessage(BootNotification) was accepted: the next boot is no reboot
    status_seen: bool  # a StatusNotification arrived since the connection or last boot
    booted: bool  # a BootNotification arrived on this connection
    _reported_since_boot: set[int] | None  # connectors with a status since boot
    after_answer: Callable[[Callable[[], Awaitable[None]], str], None]
    meter_budget: MeterBudget | None  # meter-value bytes per charger an hour
    orphan_stops: OrphanStops | None  # orphan StopTransaction rows per charger an hour
    orphan_not_stored: bool  # the last StopTransaction was an orphan past that budget
    request_in_rows: str | None  # the request line a handler kept with its rows (the session writes none)
    payload_strict: bool  # the payload passed the strict schema, not only a relaxed one
    log: Callable[[str, str, str, bool], bool]  # one general-log line, held to the log budget

    # The action -> handler method the session dispatches on (OCPP 1.6 section 4, charger to CS).
    # Method names, bound at each lookup: a table of bound methods kept on the session would be
    # a reference cycle, which outlives the closed session once the collector is frozen.
    HANDLER_NAMES = {
        "BootNotification": "on_boot_notification",
        "Heartbeat": "on_heartbeat",
        "StatusNotification": "on_status_notification",
        "Authorize": "on_authorize",
        "StartTransaction": "on_start_transaction",
        "StopTransaction": "on_stop_transaction",
        "MeterValues": "on_meter_values",
        "DataTransfer": "on_data_transfer",
        "DiagnosticsStatusNotification": "on_diagnostics_status",
        "FirmwareStatusNotification": "on_firmware_status",
    }

    def handler(self, action: str) -> Handler | None:
        """The handler of a CALL `action`, or None when the central system takes no such call."""
        name = self.HANDLER_NAMES.get(action)
        return getattr(self, name) if name is not None else None

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
        self.events.transaction_started(self, int(p["connectorId"]))
        log.info("%s: transaction %s started on connector %s by idTag %s (%s)", self.charger_id, tx_id,
                 p["connectorId"], p["idTag"], info["status"])
        return {"transactionId": tx_id, "idTagInfo": info}

    async def on_stop_transaction(self, p: dict[str, Any]) -> dict[str, Any]:
        ts = parse_timestamp(p.get("timestamp"))
        stop_time = iso_z(ts) if ts is not None else str(p.get("timestamp"))
        tx_id = int(p["transactionId"])
        samples = self._transaction_data(tx_id, p.get("transactionData") or [])
        orphans = self.orphan_stops
        keep_orphan = orphans is None or orphans.may_store(self.charger_id)
        outcome = await self.history.stop_transaction(
            self.charger_id, tx_id, float(p["meterStop"]), stop_time, p.get("reason", "Local"),
            p.get("idTag"), samples, keep_orphan)
        if outcome == "orphan not stored" and orphans is not None:
            # Answered all the same (a spec answer; the charger may delete it), never a real stop.
            self.orphan_not_stored = True
            note = orphans.not_stored(self.charger_id)
            if note is not None:
                self.log("OrphanStopBudget", note, "warning", True)
                log.warning("%s: %s", self.charger_id, note)
            return {}
        log.info("%s: transaction %s stopped (%s), meter %s Wh", self.charger_id, tx_id,
                 p.get("reason", "Local"), p["meterStop"])
        if outcome == "orphan":
            if orphans is not None:
                orphans.stored(self.charger_id)
            self.log("StopTransactionRequest", f"unknown transaction {tx_id}: stored as an orphan stop",
                     "warning", True)
        for connector in self.station.connectors.values():
            if connector.transaction_id == tx_id:
                # meterStop is the energy register at the end (OCPP 1.6 6.49): the newest reading
                # for a charger that sends no MeterValues outside transactions.
                self.registry.record_readings(
                    self.station, connector.connector_id, ts if ts is not None else self.clock(),
                    [(MeterKey(connector.connector_id), float(p["meterStop"]), "Wh", "Transaction.End")])
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
        registry, station, history, strict = self.registry, self.station, self.history, self.payload_strict
        meter_values = p["meterValue"]
        meter_rows.check_sizes(meter_values, self.settings.ocpp, strict=strict)
        rows = [meter_rows.meter_row(self.charger_id, connector_id, tx_id, mv, strict) for mv in meter_values]
        if self._over_meter_budget(meter_rows.rows_size(rows)):  # not kept, so not shown either: it may come again
            raise OcppError("GenericError", "over this charger's meter-value budget of "
                            f"{self.settings.ocpp.meter_budget_bytes_per_hour} bytes an hour: not stored")
        # The exchange's general-log line goes with the first row, not in a general_log row of its
        # own (the log shows it from there, gateway.history.queries): half the rows a message and no
        # per-charger index entry in the general log (docs/benchmarks.md).
        line = safe_summary(request_summary, "MeterValues", p)
        logged: str | None = line
        for mv, row in zip(meter_values, rows, strict=True):
            ts = parse_timestamp(mv.get("timestamp")) or self.clock()
            registry.record_readings(station, connector_id, ts, meter_rows.readings(connector_id, mv))
            history.queue_meter_value(row, logged)
            logged = None
        self.request_in_rows = line
        return {}

    def _over_meter_budget(self, size: int) -> bool:
        return self.meter_budget is not None and not self.meter_budget.admit(self.charger_id, size)

    def _transaction_data(self, tx_id: int, data: list[dict[str, Any]]) -> list[tuple]:
        """A StopTransaction's transactionData as rows; left out (with a warning line) when it is
        over the bounds or the charger's budget: the stop itself is always kept (it closes the bill)."""
        try:
            meter_rows.check_sizes(data, self.settings.ocpp, "transactionData", self.payload_strict)
        except OcppError as exc:
            why = exc.description
        else:
            rows = [meter_rows.meter_row(self.charger_id, 0, tx_id, mv, self.payload_strict) for mv in data]
            if not self._over_meter_budget(meter_rows.rows_size(rows)):
                return rows
            why = f"over this charger's meter-value budget of {self.settings.ocpp.meter_budget_bytes_per_hour} bytes an hour"
        self.log("StopTransactionRequest", f"transaction {tx_id}: transactionData not kept: {why}", "warning", True)
        return []

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
