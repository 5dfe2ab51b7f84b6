"""The optional OCPP 1.6 feature profiles as the simulated charger answers them (section 3):
Local Auth List Management, Reservation, Smart Charging and Remote Trigger.

`SimChargePoint` (charge_point.py) inherits these handlers next to its Core and Firmware
Management ones; the same rules hold: decode, ask the simulator's model, answer, and defer what
the charger then sends until the answer is on the wire.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from ocpp.routing import on
from ocpp.v16 import call, call_result
from ocpp.v16.enums import Action

from .charging import Profile
from .model import iso
from .ocpp_side import SimulatedCharger


class OptionalProfiles:
    """Handlers of the optional feature profiles; `SimChargePoint` provides `sim` and `defer`."""

    sim: SimulatedCharger
    defer: Callable[[Callable[[], Awaitable[Any]]], None]

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
    async def on_set_charging_profile(self, connector_id: int, cs_charging_profiles: dict[str, Any],
                                      **_: Any) -> call_result.SetChargingProfile:
        """Store the profile and apply it at once (the offer follows before the answer goes out;
        a status change it causes is sent after the answer). With `Firmware.profile_answer_s`
        the answer comes that long after: the charger stores the profile first."""
        sim = self.sim
        if connector_id not in sim.connectors:
            return call_result.SetChargingProfile(status="Rejected")
        profile = Profile.from_payload(connector_id, cs_charging_profiles, sim.now())
        tx = sim.active_tx(connector_id) if connector_id else None
        status = sim.profiles.set(profile, sim.now(), tx)
        if status != "Accepted":
            sim.emit(f"SetChargingProfile rejected: {sim.profiles.last_rejection}")
        sim.apply_limits()
        delay = sim.profile.firmware.profile_answer_s
        if delay > 0:
            sim.emit(f"SetChargingProfile {status}, stored and applied; answered in {delay:g} s")
            await asyncio.sleep(delay)
        self.defer(lambda: _refresh_all(sim))
        return call_result.SetChargingProfile(status=status)

    @on(Action.clear_charging_profile)
    def on_clear_charging_profile(self, id: int | None = None, connector_id: int | None = None,
                                  charging_profile_purpose: str | None = None, stack_level: int | None = None,
                                  **_: Any) -> call_result.ClearChargingProfile:
        status = self.sim.profiles.clear(id, connector_id, charging_profile_purpose, stack_level)
        self.sim.apply_limits()
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


async def _refresh_all(sim: SimulatedCharger) -> None:
    for c in sim.connectors.values():
        if c.id:
            await sim.refresh(c.id)


async def _triggered(sim: SimulatedCharger, message: str, connector_id: int | None) -> None:
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
