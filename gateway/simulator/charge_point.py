"""Central-system-initiated calls as the simulated charger answers them.

Each handler decodes, asks the simulator's model, answers; anything the charger then sends
(StatusNotification, StartTransaction, firmware statuses...) is deferred until the answer is on the
wire, because the library's reader is blocked while a handler runs. An action the profile does not
list is answered CALLERROR NotImplemented in one place (`route_message`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from ocpp.exceptions import NotImplementedError as OcppNotImplemented
from ocpp.exceptions import OccurenceConstraintViolationError
from ocpp.messages import unpack
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action

from .charging import Profile
from .ocpp_side import SimulatedCharger
from .optional_profiles import OptionalProfiles

Deferred = Callable[[], Awaitable[Any]]


class SimChargePoint(ChargePoint, OptionalProfiles):
    """The ocpp-library side of a `Simulator`; holds no state of its own."""

    def __init__(self, id: str, connection: Any, sim: SimulatedCharger) -> None:
        super().__init__(id, connection, response_timeout=30)
        self.sim = sim
        self._deferred: list[Deferred] = []
        self._answer_routed = False  # the last frame was an answer to one of our calls

    async def close(self) -> None:
        await self._connection.close()

    async def route_message(self, raw_msg: str) -> None:
        try:
            frame = json.loads(raw_msg)
        except ValueError:
            frame = None
        if isinstance(frame, list) and len(frame) == 4 and frame[0] == 2:
            await self._digest_answers()
            action, payload = frame[2], frame[3]
            self.sim.received_calls.append((action, payload))
            self.sim.emit(f"<- {action} {payload}")
            if not self.sim.profile.supports(action):
                msg = unpack(raw_msg)
                error = OcppNotImplemented(description=f"{action} is not supported by {self.sim.profile.name}")
                await self._send(msg.create_call_error(error).to_json())
                return
        self._answer_routed = isinstance(frame, list) and bool(frame) and frame[0] in (3, 4)
        await super().route_message(raw_msg)
        deferred, self._deferred = self._deferred, []
        for job in deferred:
            self.sim.spawn(job())

    async def _digest_answers(self) -> None:
        """Real firmware handles an answer before the next frame (a StartTransaction answer gives
        it the transaction id a TxProfile right behind it names): let our caller take the answer
        and do its bookkeeping before a call that followed it on the wire is handled."""
        if not self._answer_routed:
            return
        self._answer_routed = False
        for _ in range(5):  # the queue hand-over and the caller's wait_for: a few loop turns
            await asyncio.sleep(0)

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
    async def on_remote_stop_transaction(self, transaction_id: int, **_: Any) -> call_result.RemoteStopTransaction:
        sim = self.sim
        # A charger reads its frames in order: a StartTransaction answer that arrived before this
        # call is applied first (the ocpp library resumes the waiting call only after routing
        # the next frame, so without this the sim refused a stop of the transaction just started).
        with contextlib.suppress(TimeoutError):
            await sim.wait_for(lambda: all(c.transaction is None or c.transaction.transaction_id is not None
                                           for c in sim.connectors.values()), 2.0)
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


async def _nothing() -> None:
    return None


def _profile_allowed(sim: SimulatedCharger, profile: Profile) -> bool:
    spec = sim.profile.smart_charging
    sched = profile.schedule
    return (sched.unit in spec.rate_units
            and not (spec.reject_min_charging_rate and sched.min_rate is not None)
            and not (spec.reject_number_phases and any(p.number_phases is not None for p in sched.periods))
            and profile.stack_level <= spec.max_stack_level and len(sched.periods) <= spec.max_periods)
