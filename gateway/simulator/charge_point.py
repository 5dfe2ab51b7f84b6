"""Central-system-initiated calls as the simulated charger answers them.

Each handler decodes, asks the simulator's model, answers; anything the charger then sends
(StatusNotification, StartTransaction, firmware statuses...) is deferred until the answer is on the
wire, because the library's reader is blocked while a handler runs. An action the profile does not
list is answered CALLERROR NotImplemented in one place (`route_message`).
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ocpp.exceptions import NotImplementedError as OcppNotImplemented
from ocpp.exceptions import OccurenceConstraintViolationError
from ocpp.messages import unpack
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action

from .charging import Profile
from .model import iso

if TYPE_CHECKING:
    from .simulator import Simulator

Deferred = Callable[[], Awaitable[Any]]


class SimChargePoint(ChargePoint):
    """The ocpp-library side of a `Simulator`; holds no state of its own."""

    def __init__(self, id: str, connection: Any, sim: Simulator) -> None:
        super().__init__(id, connection, response_timeout=30)
        self.sim = sim
        self._deferred: list[Deferred] = []

    async def close(self) -> None:
        await self._connection.close()

    async def route_message(self, raw_msg: str) -> None:
        try:
            frame = json.loads(raw_msg)
        except ValueError:
            frame = None
        if isinstance(frame, list) and len(frame) == 4 and frame[0] == 2:
            action, payload = frame[2], frame[3]
            self.sim.received_calls.append((action, payload))
            self.sim.emit(f"<- {action} {payload}")
            if not self.sim.profile.supports(action):
                msg = unpack(raw_msg)
                error = OcppNotImplemented(description=f"{action} is not supported by {self.sim.profile.name}")
                await self._send(msg.create_call_error(error).to_json())
                return
        await super().route_message(raw_msg)
        deferred, self._deferred = self._deferred, []
        for job in deferred:
            self.sim.spawn(job())

    def defer(self, job: Deferred) -> None:
        """Run `job` once the answer to the current call has been sent."""
        self._deferred.append(job)

    # ----- Core ------------------------------------------------------------------------------

    @on(Action.change_availability)
    def on_change_availability(self, connector_id: int, type: str, **_: Any) -> call_result.ChangeAvailability:
        status, notify = self.sim_change_availability(connector_id, type == "Operative")
        self.defer(notify)
        return call_result.ChangeAvailability(status=status)

    def sim_change_availability(self, connector_id: int, operative: bool) -> tuple[str, Deferred]:
        sim = self.sim
        targets = [c for c in sim.connectors.values() if connector_id in (0, c.id)]
        if not targets:
            return "Rejected", _nothing
        # OCPP 1.6 5.2: Scheduled while a transaction runs; zappi also while a vehicle is plugged in
        # ("Change Availability": the change waits for the next unplug).
        waits_for_plug = sim.profile.quirks.availability_waits_for_unplug
        busy = [c for c in targets if c.id and (c.transaction or (waits_for_plug and c.plugged))]
        for c in targets:
            if c in busy:
                c.scheduled_operative = operative
            else:
                c.operative, c.scheduled_operative = operative, None
        if "IsOperative" in sim.config.values:
            sim.config.set_internal("IsOperative", "true" if operative else "false")

        async def notify() -> None:
            for c in targets:
                if c not in busy and c.status not in ("Faulted",):
                    await sim.set_status(c.id, "Available" if operative else "Unavailable")
            if sim.profile.quirks.availability_notifies_connector_zero and connector_id != 0:
                await sim.send_status(0)

        return ("Scheduled" if busy else "Accepted"), notify

    @on(Action.change_configuration)
    def on_change_configuration(self, key: str, value: str, **_: Any) -> call_result.ChangeConfiguration:
        sim = self.sim
        status = sim.config.change(key, value)
        if status == "Accepted" and key == sim.profile.quirks.authorization_key \
                and sim.profile.quirks.reconnect_on_authorization_key_change:
            self.defer(sim.reconnect)  # zappi: reconnects using the updated key
        return call_result.ChangeConfiguration(status=status)

    @on(Action.clear_cache)
    def on_clear_cache(self, **_: Any) -> call_result.ClearCache:
        self.sim.auth_cache.clear()
        return call_result.ClearCache(status="Accepted")

    @on(Action.data_transfer)
    def on_data_transfer(self, vendor_id: str, **_: Any) -> call_result.DataTransfer:
        known = vendor_id == self.sim.profile.quirks.data_transfer_vendor_id
        return call_result.DataTransfer(status="Accepted" if known else "UnknownVendorId")

    @on(Action.get_configuration)
    def on_get_configuration(self, key: list[str] | None = None, **_: Any) -> call_result.GetConfiguration:
        sim = self.sim
        max_keys = sim.config.get_int("GetConfigurationMaxKeys", 0)
        if key and max_keys and len(key) > max_keys:
            if sim.profile.quirks.get_configuration_over_max == "callerror":
                raise OccurenceConstraintViolationError(description=f"at most {max_keys} keys per request")
            key = key[:max_keys]  # AC wallbox 3.2.1 GetConfigurationMaxKeys: only the first ones answered
        known, unknown = sim.config.entries(key)
        if not key and max_keys and sim.profile.quirks.get_configuration_unkeyed == "limit":
            known = known[:max_keys]
        return call_result.GetConfiguration(configuration_key=known, unknown_key=unknown or None)

    @on(Action.remote_start_transaction)
    def on_remote_start_transaction(self, id_tag: str, connector_id: int | None = None,
                                    charging_profile: dict[str, Any] | None = None,
                                    **_: Any) -> call_result.RemoteStartTransaction:
        sim = self.sim
        free = [c for c in sim.connectors.values() if c.id and not c.transaction and c.operative
                and c.remote_start is None and c.status != "Faulted"]
        target = next((c for c in free if connector_id in (None, c.id)), None)
        if target is None:
            return call_result.RemoteStartTransaction(status="Rejected")
        profile = None
        if charging_profile is not None:
            profile = Profile.from_payload(target.id, charging_profile, sim.now())
            # EVlink 4.1: the profile in RemoteStartTransaction has the SetChargingProfile restrictions.
            if profile.purpose != "TxProfile" or not _profile_allowed(sim, profile):
                return call_result.RemoteStartTransaction(status="Rejected")
        authorize = sim.config.get_bool(sim.profile.quirks.authorize_remote_tx_key, False)

        async def start() -> None:
            tx = await sim.remote_start(target.id, id_tag, authorize)
            if profile is not None:
                await sim.wait_for(lambda: (target.transaction is not None
                                            and target.transaction.transaction_id is not None), 3600)
                sim.profiles.set(profile, sim.now(), sim.active_tx(target.id))
                await sim.refresh(target.id)
            return tx

        self.defer(start)
        return call_result.RemoteStartTransaction(status="Accepted")

    @on(Action.remote_stop_transaction)
    def on_remote_stop_transaction(self, transaction_id: int, **_: Any) -> call_result.RemoteStopTransaction:
        sim = self.sim
        for c in sim.connectors.values():
            if c.transaction and c.transaction.transaction_id == transaction_id:
                cid = c.id
                self.defer(lambda cid=cid: sim.stop_session(cid, "Remote"))
                return call_result.RemoteStopTransaction(status="Accepted")
        return call_result.RemoteStopTransaction(status="Rejected")

    @on(Action.reset)
    def on_reset(self, type: str, **_: Any) -> call_result.Reset:
        sim = self.sim

        async def reboot() -> None:
            for c in sim.connectors.values():
                if not c.transaction:
                    continue
                if type == "Hard" and sim.profile.quirks.hard_reset_loses_transaction:
                    c.transaction = None  # AC wallbox 3.1 Reset: hard reset loses the transaction data
                    sim.pending = deque(q for q in sim.pending if q.tx.connector_id != c.id)
                    c.status = "Preparing" if c.plugged else "Available"  # reported after the reboot
                    await sim.refresh(c.id)
                else:
                    await sim.stop_session(c.id, "HardReset" if type == "Hard" else "SoftReset")
            await sim.flush()
            sim.emit(f"reset ({type})")
            sim.power_cycle()
            await sim.reconnect(0.0)

        self.defer(reboot)
        return call_result.Reset(status="Accepted")

    @on(Action.unlock_connector)
    def on_unlock_connector(self, connector_id: int, **_: Any) -> call_result.UnlockConnector:
        sim = self.sim
        c = sim.connectors.get(connector_id)
        if c is None or connector_id == 0:
            return call_result.UnlockConnector(status="NotSupported")
        if c.transaction:
            self.defer(lambda: sim.stop_session(connector_id, "UnlockCommand"))  # OCPP 1.6 5.18
        c.locked = False
        return call_result.UnlockConnector(status="Unlocked")

    # ----- Firmware Management ---------------------------------------------------------------

    @on(Action.get_diagnostics)
    def on_get_diagnostics(self, location: str, **_: Any) -> call_result.GetDiagnostics:
        sim = self.sim
        name = f"{sim.charger_id}-diagnostics.log"

        async def upload() -> None:
            for status in sim.profile.quirks.diagnostics_statuses:
                sim.diagnostics_status = status
                await sim.call(call.DiagnosticsStatusNotification(status=status))

        self.defer(upload)
        return call_result.GetDiagnostics(file_name=name)

    @on(Action.update_firmware)
    def on_update_firmware(self, location: str, retrieve_date: str, **_: Any) -> call_result.UpdateFirmware:
        sim = self.sim

        async def update() -> None:
            for status in sim.profile.quirks.firmware_statuses:
                sim.firmware_status = status
                await sim.call(call.FirmwareStatusNotification(status=status))

        self.defer(update)
        return call_result.UpdateFirmware()

    # ----- Local Auth List Management --------------------------------------------------------

    @on(Action.get_local_list_version)
    def on_get_local_list_version(self, **_: Any) -> call_result.GetLocalListVersion:
        return call_result.GetLocalListVersion(list_version=self.sim.local_list_version)

    @on(Action.send_local_list)
    def on_send_local_list(self, list_version: int, update_type: str,
                           local_authorization_list: list[dict[str, Any]] | None = None,
                           **_: Any) -> call_result.SendLocalList:
        sim = self.sim
        entries = local_authorization_list or []
        per_message = sim.config.get_int("SendLocalListMaxLength", 10**6)
        total = sim.config.get_int("LocalAuthListMaxLength", 10**6)
        max_len = sim.profile.quirks.local_list_tag_max_length
        # AC wallbox 3.1 SendLocalList: 5 tags per message, 20 characters each, 20 tags in all.
        if len(entries) > per_message or any(len(e["id_tag"]) > max_len for e in entries):
            return call_result.SendLocalList(status="Failed")
        new = {} if update_type == "Full" else dict(sim.local_list)
        for e in entries:
            if e.get("id_tag_info") is None:
                new.pop(e["id_tag"], None)
            else:
                new[e["id_tag"]] = e["id_tag_info"]
        if len(new) > total:
            return call_result.SendLocalList(status="Failed")
        sim.local_list, sim.local_list_version = new, list_version
        return call_result.SendLocalList(status="Accepted")

    # ----- Reservation -----------------------------------------------------------------------

    @on(Action.reserve_now)
    def on_reserve_now(self, connector_id: int, expiry_date: str, id_tag: str, reservation_id: int,
                       **_: Any) -> call_result.ReserveNow:
        sim = self.sim
        c = sim.connectors.get(connector_id)
        if c is None or (connector_id == 0 and not sim.config.get_bool("ReserveConnectorZeroSupported")):
            return call_result.ReserveNow(status="Rejected")
        if not c.operative:
            return call_result.ReserveNow(status="Unavailable")
        if c.status == "Faulted":
            return call_result.ReserveNow(status="Faulted")
        if c.transaction or (c.reservation_id not in (None, reservation_id)) or c.plugged:
            return call_result.ReserveNow(status="Occupied")
        c.reservation_id, c.reserved_id_tag = reservation_id, id_tag
        if connector_id:
            self.defer(lambda: sim.set_status(connector_id, "Reserved"))
        return call_result.ReserveNow(status="Accepted")

    @on(Action.cancel_reservation)
    def on_cancel_reservation(self, reservation_id: int, **_: Any) -> call_result.CancelReservation:
        sim = self.sim
        for c in sim.connectors.values():
            if c.reservation_id == reservation_id:
                c.reservation_id = c.reserved_id_tag = None
                if c.id and c.status == "Reserved":
                    cid = c.id
                    self.defer(lambda cid=cid: sim.set_status(cid, "Available"))
                return call_result.CancelReservation(status="Accepted")
        return call_result.CancelReservation(status="Rejected")

    # ----- Smart Charging --------------------------------------------------------------------

    @on(Action.set_charging_profile)
    def on_set_charging_profile(self, connector_id: int, cs_charging_profiles: dict[str, Any],
                                **_: Any) -> call_result.SetChargingProfile:
        sim = self.sim
        if connector_id not in sim.connectors:
            return call_result.SetChargingProfile(status="Rejected")
        profile = Profile.from_payload(connector_id, cs_charging_profiles, sim.now())
        tx = sim.active_tx(connector_id) if connector_id else None
        status = sim.profiles.set(profile, sim.now(), tx)
        if status != "Accepted":
            sim.emit(f"SetChargingProfile rejected: {sim.profiles.last_rejection}")
        self.defer(lambda: _refresh_all(sim))
        return call_result.SetChargingProfile(status=status)

    @on(Action.clear_charging_profile)
    def on_clear_charging_profile(self, id: int | None = None, connector_id: int | None = None,
                                  charging_profile_purpose: str | None = None, stack_level: int | None = None,
                                  **_: Any) -> call_result.ClearChargingProfile:
        status = self.sim.profiles.clear(id, connector_id, charging_profile_purpose, stack_level)
        self.defer(lambda: _refresh_all(self.sim))
        return call_result.ClearChargingProfile(status=status)

    @on(Action.get_composite_schedule)
    def on_get_composite_schedule(self, connector_id: int, duration: int, charging_rate_unit: str | None = None,
                                  **_: Any) -> call_result.GetCompositeSchedule:
        sim = self.sim
        spec = sim.profile.smart_charging
        # EVlink 4.1: GetCompositeSchedule only for connectorId > 0.
        if connector_id not in sim.connectors or (connector_id == 0 and not spec.composite_schedule_connector_zero) \
                or (charging_rate_unit and charging_rate_unit not in spec.rate_units):
            return call_result.GetCompositeSchedule(status="Rejected")
        now = sim.now()
        schedule = sim.profiles.composite(connector_id, duration, charging_rate_unit, now,
                                          sim.active_tx(connector_id) if connector_id else None)
        return call_result.GetCompositeSchedule(status="Accepted", connector_id=connector_id,
                                                schedule_start=iso(now), charging_schedule=schedule)

    # ----- Remote Trigger --------------------------------------------------------------------

    @on(Action.trigger_message)
    def on_trigger_message(self, requested_message: str, connector_id: int | None = None,
                           **_: Any) -> call_result.TriggerMessage:
        sim = self.sim
        quirks = sim.profile.quirks
        if requested_message not in sim.profile.trigger_messages:
            return call_result.TriggerMessage(status="NotImplemented")
        if connector_id is not None and connector_id not in sim.connectors:
            return call_result.TriggerMessage(status="Rejected")
        if not sim.accepted.is_set() and quirks.boot_pending_waits_for_accepted:
            return call_result.TriggerMessage(status="Rejected")  # zappi: nothing until Accepted
        if quirks.trigger_relays_last_message:
            # zappi "Trigger Message": the last message of that type is relayed, else Rejected.
            last = sim.last_sent.get(requested_message)
            if last is None:
                return call_result.TriggerMessage(status="Rejected")
            self.defer(lambda: sim.call(last))
            return call_result.TriggerMessage(status="Accepted")
        if requested_message == "MeterValues" and quirks.trigger_meter_values_only_in_transaction \
                and not any(c.transaction for c in sim.connectors.values()):
            return call_result.TriggerMessage(status="Rejected")  # EVlink 3.1: "only during a load"
        self.defer(lambda: _triggered(sim, requested_message, connector_id))
        return call_result.TriggerMessage(status="Accepted")


async def _nothing() -> None:
    return None


def _profile_allowed(sim: Simulator, profile: Profile) -> bool:
    spec = sim.profile.smart_charging
    sched = profile.schedule
    return (sched.unit in spec.rate_units
            and not (spec.reject_min_charging_rate and sched.min_rate is not None)
            and not (spec.reject_number_phases and any(p.number_phases is not None for p in sched.periods))
            and profile.stack_level <= spec.max_stack_level and len(sched.periods) <= spec.max_periods)


async def _refresh_all(sim: Simulator) -> None:
    for c in sim.connectors.values():
        if c.id:
            await sim.refresh(c.id)


async def _triggered(sim: Simulator, message: str, connector_id: int | None) -> None:
    """Send the requested message; OCPP 1.6 4.2 allows triggered messages while Pending."""
    targets = [connector_id] if connector_id is not None else list(sim.connectors)
    if message == "BootNotification":
        if sim.accepted.is_set():
            # Not a reboot: state, transactions and profiles stay; most stacks send no statuses.
            payload, too_long = sim.boot_payload()
            await sim.call(call.BootNotification(**payload), skip_validation=too_long)
            if sim.profile.firmware.status_after_triggered_boot:
                for connector in list(sim.connectors):
                    await sim.send_status(connector)
        else:
            sim.request_boot()
    elif message == "Heartbeat":
        await sim.call(call.Heartbeat())
    elif message == "StatusNotification":
        for cid in targets:
            c = sim.connectors[cid]
            await sim.call(call.StatusNotification(connector_id=cid, error_code=c.error_code, status=c.status,
                                                   timestamp=iso(sim.now()), vendor_error_code=c.vendor_error_code))
    elif message == "MeterValues":
        for cid in targets:
            if cid:
                await sim.send_meter_values(cid, context="Trigger")
    elif message == "DiagnosticsStatusNotification":
        await sim.call(call.DiagnosticsStatusNotification(status=_idle(sim.diagnostics_status)))
    elif message == "FirmwareStatusNotification":
        await sim.call(call.FirmwareStatusNotification(status=_idle(sim.firmware_status)))


def _idle(status: str) -> str:
    # OCPP 1.6 5.17: a triggered status reports Idle unless an upload/update is in progress.
    return status if status in ("Uploading", "Downloading", "Downloaded", "Installing") else "Idle"
