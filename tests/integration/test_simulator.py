"""The charger simulator against a tiny in-test central system, one story per manual quirk.

Manuals: shared/seeds/000 (Smappee), 001 (AC wallbox), 003 (zappi), 004 (EVlink); OCPP 1.6 for generic.
Loopback only, port 0; synchronisation through awaited answers and conditions, never sleeps.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from ocpp.exceptions import NotImplementedError as OcppNotImplemented
from ocpp.routing import after, on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from gateway.simulator import Simulator, load_profile

NOW = lambda: datetime.now(UTC).isoformat().replace("+00:00", "Z")  # noqa: E731


class FakeCentralSystem(ChargePoint):
    """Server-side ChargePoint that records every call and answers from a script."""

    def __init__(self, id: str, connection: ServerConnection, owner: CentralSystem) -> None:
        super().__init__(id, connection)
        self.owner = owner

    async def route_message(self, raw_msg: str) -> None:
        await super().route_message(raw_msg)
        async with self.owner.changed:
            self.owner.changed.notify_all()

    def _record(self, action: str, payload: dict[str, Any]) -> None:
        self.owner.received.append((self.id, action, payload))

    # An over-long serial must not break the session: the gateway accepts it (design.md, tolerant).
    @on(Action.boot_notification, skip_schema_validation=True)
    def on_boot(self, **payload: Any) -> call_result.BootNotification:
        self._record("BootNotification", payload)
        status, interval = self.owner.boot_answers.pop(0) if self.owner.boot_answers else ("Accepted", 300)
        return call_result.BootNotification(current_time=NOW(), interval=interval, status=status)

    @on(Action.heartbeat)
    def on_heartbeat(self, **payload: Any) -> call_result.Heartbeat:
        self._record("Heartbeat", payload)
        return call_result.Heartbeat(current_time=NOW())

    @on(Action.status_notification)
    def on_status(self, **payload: Any) -> call_result.StatusNotification:
        self._record("StatusNotification", payload)
        return call_result.StatusNotification()

    @on(Action.authorize)
    def on_authorize(self, id_tag: str, **payload: Any) -> call_result.Authorize:
        self._record("Authorize", {"id_tag": id_tag})
        return call_result.Authorize(id_tag_info={"status": "Accepted"})

    @on(Action.start_transaction)
    def on_start(self, **payload: Any) -> call_result.StartTransaction:
        self._record("StartTransaction", payload)
        self.owner.tx_ids_given.append(next(self.owner.tx_ids))
        return call_result.StartTransaction(transaction_id=self.owner.tx_ids_given[-1],
                                            id_tag_info={"status": "Accepted"})

    @after(Action.start_transaction)
    async def after_start(self, **payload: Any) -> None:
        """A TxProfile right behind the answer, in the same burst (`owner.profile_after_start`)."""
        if self.owner.profile_after_start is not None:
            tx_id = next(iter(self.owner.tx_ids_given[-1:]), None)
            profile = {**tx_profile(self.owner.profile_after_start, purpose="TxProfile"), "transactionId": tx_id}
            await self._connection.send(json.dumps(
                [2, "profile-after-start", "SetChargingProfile", {"connectorId": 1, "csChargingProfiles": profile}]))

    @on(Action.stop_transaction)
    def on_stop(self, **payload: Any) -> call_result.StopTransaction:
        self._record("StopTransaction", payload)
        return call_result.StopTransaction()

    @on(Action.meter_values)
    def on_meter_values(self, **payload: Any) -> call_result.MeterValues:
        self._record("MeterValues", payload)
        return call_result.MeterValues()

    @on(Action.firmware_status_notification)
    def on_firmware(self, **payload: Any) -> call_result.FirmwareStatusNotification:
        self._record("FirmwareStatusNotification", payload)
        return call_result.FirmwareStatusNotification()

    @on(Action.diagnostics_status_notification)
    def on_diagnostics(self, **payload: Any) -> call_result.DiagnosticsStatusNotification:
        self._record("DiagnosticsStatusNotification", payload)
        return call_result.DiagnosticsStatusNotification()


class CentralSystem:
    """websockets server on 127.0.0.1:0 with one FakeCentralSystem per connected charger."""

    def __init__(self) -> None:
        self.received: list[tuple[str, str, dict[str, Any]]] = []
        self.boot_answers: list[tuple[str, int]] = []
        self.tx_ids = itertools.count(100)
        self.tx_ids_given: list[int] = []
        self.profile_after_start: float | None = None  # send a TxProfile right behind the answer
        self.cps: dict[str, FakeCentralSystem] = {}
        self.connections: dict[str, ServerConnection] = {}
        self.auth: dict[str, str | None] = {}
        self.changed = asyncio.Condition()
        self.url = ""

    async def handler(self, ws: ServerConnection) -> None:
        charger_id = ws.request.path.rstrip("/").rsplit("/", 1)[-1]
        self.auth[charger_id] = ws.request.headers.get("Authorization")
        cp = FakeCentralSystem(charger_id, ws, self)
        self.cps[charger_id] = cp
        self.connections[charger_id] = ws
        try:
            await cp.start()
        except ConnectionClosed:
            pass

    def actions(self, charger_id: str = "CP1") -> list[str]:
        return [a for cid, a, _ in self.received if cid == charger_id]

    def payloads(self, action: str, charger_id: str = "CP1") -> list[dict[str, Any]]:
        return [p for cid, a, p in self.received if cid == charger_id and a == action]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(predicate), timeout)

    async def send(self, payload: Any, charger_id: str = "CP1") -> Any:
        return await self.cps[charger_id].call(payload, suppress=False)


@pytest.fixture
async def cs() -> AsyncIterator[CentralSystem]:
    central = CentralSystem()
    async with serve(central.handler, "127.0.0.1", 0, subprotocols=["ocpp1.6"]) as server:
        port = server.sockets[0].getsockname()[1]
        central.url = f"ws://127.0.0.1:{port}/ocpp"
        yield central


@pytest.fixture
async def make_sim(cs: CentralSystem) -> AsyncIterator[Callable[..., Any]]:
    sims: list[Simulator] = []

    async def make(profile: str, charger_id: str = "CP1", **kwargs: Any) -> Simulator:
        sim = Simulator(profile, charger_id, cs.url, heartbeat=False, **kwargs)
        sims.append(sim)
        await sim.start()
        return sim

    yield make
    for sim in sims:
        await sim.stop()


def tx_profile(limit: float, unit: str = "A", *, profile_id: int = 1, purpose: str = "TxDefaultProfile",
               stack_level: int = 0, **period_extra: Any) -> dict[str, Any]:
    return {
        "chargingProfileId": profile_id, "stackLevel": stack_level, "chargingProfilePurpose": purpose,
        "chargingProfileKind": "Relative",
        "chargingSchedule": {"chargingRateUnit": unit,
                             "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit, **period_extra}]},
    }


def offered(sample: dict[str, Any]) -> float:
    return next(float(v["value"]) for v in sample["sampled_value"] if v["measurand"] == "Current.Offered")


# ----- boot ------------------------------------------------------------------------------------


async def test_every_profile_boots_and_reports_each_connector(cs: CentralSystem, make_sim: Any) -> None:
    """OCPP 1.6 4.2/4.9: after an Accepted boot, StatusNotification for connector 0 and each connector."""
    for name in ("smappee", "acwallbox", "zappi", "evlink", "generic"):
        sim = await make_sim(name, f"CP-{name}")
        n = load_profile(name).connectors
        await cs.wait_for(lambda cid=f"CP-{name}", n=n: len(cs.payloads("StatusNotification", cid)) == n + 1)
        assert sim.registration == "Accepted"
        assert [p["connector_id"] for p in cs.payloads("StatusNotification", f"CP-{name}")] == list(range(n + 1))


async def test_zappi_sends_nothing_but_boot_until_accepted(cs: CentralSystem) -> None:
    """zappi "Boot Notification": after Pending it waits until Accepted before any other message."""
    cs.boot_answers = [("Pending", 2), ("Accepted", 300)]
    sim = Simulator("zappi", "CP1", cs.url, heartbeat=False)
    try:
        assert await sim.start(wait="answer") == "Pending"
        assert (await cs.send(call.TriggerMessage(requested_message="StatusNotification"))).status == "Rejected"
        assert cs.actions() == ["BootNotification"]
        await sim.wait_for(lambda: sim.accepted.is_set())
        await cs.wait_for(lambda: "StatusNotification" in cs.actions())
        assert cs.actions()[:3] == ["BootNotification", "BootNotification", "StatusNotification"]
    finally:
        await sim.stop()


async def test_rejected_charger_boots_again_after_the_interval(cs: CentralSystem) -> None:
    """OCPP 1.6 4.2: Rejected -> no other message, BootNotification again after the interval."""
    cs.boot_answers = [("Rejected", 1), ("Accepted", 300)]
    sim = Simulator("acwallbox", "CP1", cs.url, heartbeat=False)
    try:
        assert await sim.start(wait="answer") == "Rejected"
        await sim.wait_for(lambda: sim.ready.is_set())
        assert cs.actions()[:3] == ["BootNotification", "BootNotification", "StatusNotification"]
    finally:
        await sim.stop()


async def test_pending_charger_boots_again_when_triggered(cs: CentralSystem) -> None:
    """OCPP 1.6 4.2: while Pending the central system may TriggerMessage a new BootNotification."""
    cs.boot_answers = [("Pending", 600), ("Accepted", 300)]
    sim = Simulator("generic", "CP1", cs.url, heartbeat=False)
    try:
        await sim.start(wait="answer")
        status = await cs.send(call.TriggerMessage(requested_message="StatusNotification", connector_id=1))
        assert status.status == "Accepted"
        await cs.wait_for(lambda: "StatusNotification" in cs.actions())
        answer = await cs.send(call.TriggerMessage(requested_message="BootNotification"))
        assert answer.status == "Accepted"
        await sim.wait_for(lambda: sim.accepted.is_set())
        assert cs.actions()[:3] == ["BootNotification", "StatusNotification", "BootNotification"]
    finally:
        await sim.stop()


async def test_evlink_sends_over_long_serial_until_truncation_is_configured(cs: CentralSystem, make_sim: Any) -> None:
    """EVlink 8.1 truncateBootNotificationsSerialNumbers and 6.3.3.2 note 1."""
    sim = await make_sim("evlink")
    assert len(cs.payloads("BootNotification")[0]["charge_point_serial_number"]) > 25
    answer = await cs.send(call.ChangeConfiguration(key="truncateBootNotificationsSerialNumbers", value="true"))
    assert answer.status == "Accepted"
    await cs.send(call.Reset(type="Soft"))
    await cs.wait_for(lambda: len(cs.payloads("BootNotification")) == 2)
    assert len(cs.payloads("BootNotification")[1]["charge_point_serial_number"]) == 25
    await sim.wait_for(lambda: sim.accepted.is_set())


async def test_zappi_sends_basic_auth_with_charge_box_identity(cs: CentralSystem, make_sim: Any) -> None:
    """zappi "Change Configuration / AuthorizationKey"; OCPP security profile 1 (username = identity)."""
    await make_sim("zappi", "91234567", password="s3cret")
    assert cs.auth["91234567"] == "Basic " + base64.b64encode(b"91234567:s3cret").decode()


# ----- configuration ---------------------------------------------------------------------------


async def test_acwallbox_answers_at_most_get_configuration_max_keys(cs: CentralSystem, make_sim: Any) -> None:
    """AC wallbox 3.2.1: GetConfigurationMaxKeys 10."""
    sim = await make_sim("acwallbox")
    keys = list(sim.config.values)[:12]
    answer = await cs.send(call.GetConfiguration(key=keys))
    answered = [k["key"] for k in answer.configuration_key] + (answer.unknown_key or [])
    assert answered == keys[:10]
    everything = await cs.send(call.GetConfiguration())
    assert len(everything.configuration_key) == len(sim.config.values)


@pytest.mark.parametrize(("profile", "key", "value", "status"), [
    ("acwallbox", "GetConfigurationMaxKeys", "20", "Rejected"),  # read-only
    ("acwallbox", "NoSuchKey", "1", "NotSupported"),
    ("acwallbox", "MeterValueSampleInterval", "3", "Rejected"),  # "less than 4 ... will reject"
    ("acwallbox", "MeterValueSampleInterval", "0", "Accepted"),
    ("acwallbox", "MeterValuesSampledData", "Energy.Active.Import.Register,SoC", "Rejected"),
    ("smappee", "HeartbeatInterval", "30", "Rejected"),  # min 60
    ("smappee", "RemoteStopBehaviour", "Available", "Accepted"),
    ("evlink", "HeartbeatInterval", "60", "NotSupported"),  # the key is HeartBeatInterval
    ("evlink", "HeartBeatInterval", "60", "Rejected"),  # read-only
    ("evlink", "MeterValuesSampledData", "Energy.Active.Import.Register,Voltage.L2-N", "Accepted"),
    ("zappi", "OCPPChargeMode", "Turbo", "Rejected"),
    ("generic", "WebSocketPingInterval", "30", "RebootRequired"),
])
async def test_change_configuration_follows_the_key_definitions(
        cs: CentralSystem, make_sim: Any, profile: str, key: str, value: str, status: str) -> None:
    """OCPP 1.6 5.3 answers, ranges and access from each manual's key table."""
    await make_sim(profile)
    assert (await cs.send(call.ChangeConfiguration(key=key, value=value))).status == status


async def test_evlink_stores_its_fallback_for_out_of_range_values(cs: CentralSystem, make_sim: Any) -> None:
    """EVlink 8.1 ocppConnectTimeOut: "If the value is out of range (2 to 60) the system put automatically 60"."""
    sim = await make_sim("evlink")
    assert (await cs.send(call.ChangeConfiguration(key="ocppConnectTimeOut", value="100"))).status == "Accepted"
    assert sim.config.get("ocppConnectTimeOut") == "60"


@pytest.mark.parametrize(("profile", "payload"), [
    ("smappee", call.ReserveNow(connector_id=1, expiry_date=NOW(), id_tag="T", reservation_id=1)),
    ("smappee", call.GetCompositeSchedule(connector_id=1, duration=60)),
    ("zappi", call.ClearCache()),
    ("evlink", call.SendLocalList(list_version=1, update_type="Full")),
    ("acwallbox", call.ExtendedTriggerMessage(requested_message="Heartbeat")),
    ("generic", call.ExtendedTriggerMessage(requested_message="Heartbeat")),
])
async def test_unsupported_action_is_answered_not_implemented(
        cs: CentralSystem, make_sim: Any, profile: str, payload: Any) -> None:
    """Smappee 6, zappi "message types supported", EVlink 3.1: CALLERROR NotImplemented."""
    await make_sim(profile)
    with pytest.raises(OcppNotImplemented):
        await cs.send(payload)


# ----- smart charging --------------------------------------------------------------------------


async def test_charging_profile_sets_offered_current_in_next_meter_values(cs: CentralSystem, make_sim: Any) -> None:
    """AC wallbox 3.1 MeterValues include Current.Offered; the active limit drives it and the power."""
    sim = await make_sim("acwallbox")
    await sim.start_session(1, "TAG1")
    assert offered(await sim.send_meter_values(1)) == 32.0
    answer = await cs.send(call.SetChargingProfile(connector_id=1, cs_charging_profiles=tx_profile(10)))
    assert answer.status == "Accepted"
    sample = await sim.send_meter_values(1)
    assert offered(sample) == 10.0
    power = next(v for v in sample["sampled_value"] if v["measurand"] == "Power.Active.Import")
    assert float(power["value"]) == 10 * 230 * 3
    await cs.wait_for(lambda: len(cs.payloads("MeterValues")) == 2)
    last = cs.payloads("MeterValues")[-1]["meter_value"][0]["sampled_value"]
    assert any(v["measurand"] == "Current.Offered" and v["value"] == "10.0" for v in last)


async def test_watt_limit_is_converted_at_230_v_per_phase(cs: CentralSystem, make_sim: Any) -> None:
    """A W profile is turned into amperes at 230 V x phases; composite schedule reports it."""
    sim = await make_sim("generic")
    await sim.start_session(1, "TAG1")
    await cs.send(call.SetChargingProfile(connector_id=1, cs_charging_profiles=tx_profile(6900, "W")))
    assert offered(await sim.send_meter_values(1)) == 10.0
    composite = await cs.send(call.GetCompositeSchedule(connector_id=1, duration=3600, charging_rate_unit="A"))
    assert composite.charging_schedule["charging_schedule_period"][0]["limit"] == 10.0


async def test_zappi_rejects_the_27th_profile_write_in_an_hour(cs: CentralSystem, make_sim: Any) -> None:
    """zappi "Set Charging Profile": only 26 slot writes within 60 minutes; unchanged slots are not rewritten."""
    sim = await make_sim("zappi")
    statuses = [(await cs.send(call.SetChargingProfile(connector_id=1, cs_charging_profiles=tx_profile(6 + i))))
                .status for i in range(27)]
    assert statuses == ["Accepted"] * 26 + ["Rejected"]
    same = await cs.send(call.SetChargingProfile(connector_id=1, cs_charging_profiles=tx_profile(6 + 25)))
    assert same.status == "Accepted"  # identical to the stored profile: no write
    sim.advance(3600)
    assert (await cs.send(call.SetChargingProfile(connector_id=1, cs_charging_profiles=tx_profile(8)))).status \
        == "Accepted"


async def test_zappi_limit_below_6_a_suspends_charging(cs: CentralSystem, make_sim: Any) -> None:
    """zappi "Set Charging Profile": any limit below 6A results in the vehicle not charging."""
    sim = await make_sim("zappi")
    await sim.start_session(1, "TAG1")
    await cs.send(call.SetChargingProfile(connector_id=1, cs_charging_profiles=tx_profile(5)))
    await sim.wait_for(lambda: sim.connectors[1].status == "SuspendedEVSE")
    assert sim.connectors[1].power_w == 0


async def test_zappi_refuses_charge_point_max_profile_and_answers_unknown_on_clear(cs: CentralSystem,
                                                                                  make_sim: Any) -> None:
    """zappi: TxProfile/TxDefaultProfile only; ClearChargingProfile "Unknown" when nothing matches."""
    await make_sim("zappi")
    cp_max = tx_profile(16, purpose="ChargePointMaxProfile")
    assert (await cs.send(call.SetChargingProfile(connector_id=0, cs_charging_profiles=cp_max))).status == "Rejected"
    assert (await cs.send(call.ClearChargingProfile(id=42))).status == "Unknown"


@pytest.mark.parametrize("profile", [
    tx_profile(11000, "W"),
    tx_profile(16, numberPhases=1),
])
async def test_evlink_rejects_watts_and_number_phases(cs: CentralSystem, make_sim: Any,
                                                      profile: dict[str, Any]) -> None:
    """EVlink 4.1: limits in amperes only; numberPhases not supported."""
    await make_sim("evlink")
    assert (await cs.send(call.SetChargingProfile(connector_id=1, cs_charging_profiles=profile))).status \
        == "Rejected"


async def test_evlink_composite_schedule_only_for_a_connector(cs: CentralSystem, make_sim: Any) -> None:
    """EVlink 4.1: GetCompositeSchedule supported with restrictions (connectorId > 0)."""
    await make_sim("evlink")
    assert (await cs.send(call.GetCompositeSchedule(connector_id=0, duration=60))).status == "Rejected"
    assert (await cs.send(call.GetCompositeSchedule(connector_id=2, duration=60))).status == "Accepted"


# ----- sessions, availability, triggers --------------------------------------------------------


async def test_remote_start_authorizes_first_and_remote_stop_ends_it(cs: CentralSystem, make_sim: Any) -> None:
    """OCPP 1.6 5.11 AuthorizeRemoteTxRequests true (generic default)."""
    sim = await make_sim("generic")
    await sim.plug_in(1)
    assert (await cs.send(call.RemoteStartTransaction(id_tag="APP1", connector_id=1))).status == "Accepted"
    await cs.wait_for(lambda: "StartTransaction" in cs.actions())
    assert cs.actions().index("Authorize") < cs.actions().index("StartTransaction")
    await sim.wait_for(lambda: sim.connectors[1].transaction is not None
                       and sim.connectors[1].transaction.transaction_id == 100)
    assert (await cs.send(call.RemoteStopTransaction(transaction_id=100))).status == "Accepted"
    await cs.wait_for(lambda: "StopTransaction" in cs.actions())
    assert cs.payloads("StopTransaction")[0]["reason"] == "Remote"


async def test_zappi_remote_start_waits_for_the_cable(cs: CentralSystem, make_sim: Any) -> None:
    """zappi "RemoteStartTransaction" before plugging in: Preparing, StartTransaction once plugged in."""
    sim = await make_sim("zappi")
    assert (await cs.send(call.RemoteStartTransaction(id_tag="APP1"))).status == "Accepted"
    await sim.wait_for(lambda: sim.connectors[1].status == "Preparing")
    assert "StartTransaction" not in cs.actions()
    await sim.plug_in(1)
    await cs.wait_for(lambda: "StartTransaction" in cs.actions())
    assert "Authorize" not in cs.actions()  # AuthorizeRemoteTxRequest has no documented default: off
    assert cs.payloads("StartTransaction")[0]["id_tag"] == "APP1"


async def test_offline_session_is_delivered_with_its_own_timestamps(cs: CentralSystem, make_sim: Any) -> None:
    """OCPP 1.6 4.7/4.8 and Smappee 8 "Offline charging": queued messages keep their past timestamps."""
    sim = await make_sim("generic")
    assert await sim.authorize("TAG1") == "Accepted"  # now in the authorization cache
    await sim.go_offline()
    sim.advance(-1200)  # the offline session happened 20 minutes ago
    tx = await sim.start_session(1, "TAG1")
    seen_while_offline = cs.received.copy()
    sim.advance(600)
    await sim.send_meter_values(1)
    sim.advance(600)
    await sim.stop_session(1)
    assert tx is not None and tx.transaction_id is None and len(sim.pending) == 3
    assert cs.received == seen_while_offline
    await sim.go_online()
    await sim.wait_for(lambda: not sim.pending)
    start, stop = cs.payloads("StartTransaction")[0], cs.payloads("StopTransaction")[0]
    assert [a for a in cs.actions() if "Transaction" in a or a == "MeterValues"] == \
        ["StartTransaction", "MeterValues", "StopTransaction"]
    started_at = datetime.fromisoformat(start["timestamp"].replace("Z", "+00:00"))
    stopped_at = datetime.fromisoformat(stop["timestamp"].replace("Z", "+00:00"))
    assert datetime.now(UTC) - started_at >= timedelta(seconds=1199)
    assert timedelta(seconds=1199) <= stopped_at - started_at <= timedelta(seconds=1201)
    assert stop["transaction_id"] == cs.payloads("MeterValues")[0]["transaction_id"] == tx.transaction_id == 100
    assert stop["meter_stop"] > start["meter_start"]
    assert [m["sampled_value"][0]["context"] for m in stop["transaction_data"]][::len(stop["transaction_data"]) - 1] \
        == ["Transaction.Begin", "Transaction.End"]


async def test_acwallbox_refuses_unknown_ids_offline_until_listed(cs: CentralSystem, make_sim: Any) -> None:
    """AC wallbox 3.2.1 AllowOfflineTxForUnknownId: offline only ids of the local list (or cache)."""
    sim = await make_sim("acwallbox")
    await cs.send(call.SendLocalList(1, "Full", [{"idTag": "LISTED", "idTagInfo": {"status": "Accepted"}}]))
    await sim.go_offline()
    assert await sim.start_session(1, "STRANGER") is None
    assert await sim.start_session(1, "LISTED") is not None


async def test_zappi_availability_is_scheduled_while_a_vehicle_is_plugged_in(cs: CentralSystem,
                                                                             make_sim: Any) -> None:
    """zappi "Change Availability"/"IsOperative": waits for unplug, then notifies connectors 1 and 0."""
    sim = await make_sim("zappi")
    await sim.plug_in(1)
    answer = await cs.send(call.ChangeAvailability(connector_id=1, type="Inoperative"))
    assert answer.status == "Scheduled"
    await sim.unplug(1)
    assert sim.connectors[1].status == "Unavailable"
    await cs.wait_for(lambda: [p["connector_id"] for p in cs.payloads("StatusNotification")][-2:] == [1, 0])


async def test_zappi_trigger_relays_the_last_message_or_rejects(cs: CentralSystem, make_sim: Any) -> None:
    """zappi "Trigger Message": relays the last message received; Rejected when none."""
    await make_sim("zappi")
    assert (await cs.send(call.TriggerMessage(requested_message="Heartbeat"))).status == "Rejected"
    await cs.wait_for(lambda: len(cs.payloads("StatusNotification")) == 2)
    assert (await cs.send(call.TriggerMessage(requested_message="StatusNotification"))).status == "Accepted"
    await cs.wait_for(lambda: len(cs.payloads("StatusNotification")) == 3)
    assert cs.payloads("StatusNotification")[2] == cs.payloads("StatusNotification")[1]


async def test_evlink_triggers_meter_values_only_during_a_load(cs: CentralSystem, make_sim: Any) -> None:
    """EVlink 3.1 TriggerMessage: StatusNotification, HeartBeat, MeterValues (only during a load)."""
    sim = await make_sim("evlink")
    assert (await cs.send(call.TriggerMessage(requested_message="MeterValues"))).status == "Rejected"
    assert (await cs.send(call.TriggerMessage(requested_message="BootNotification"))).status == "NotImplemented"
    await sim.start_session(2, "TAG1")
    assert (await cs.send(call.TriggerMessage(requested_message="MeterValues", connector_id=2))).status \
        == "Accepted"
    await cs.wait_for(lambda: len(cs.payloads("MeterValues")) == 1)


async def test_acwallbox_local_list_limits(cs: CentralSystem, make_sim: Any) -> None:
    """AC wallbox 3.1 SendLocalList: 5 tags per message; 20 tags in all."""
    sim = await make_sim("acwallbox")

    def tags(start: int, n: int) -> list[dict[str, Any]]:
        return [{"idTag": f"TAG{i}", "idTagInfo": {"status": "Accepted"}} for i in range(start, start + n)]

    assert (await cs.send(call.SendLocalList(1, "Full", tags(0, 6)))).status == "Failed"
    for version, start in enumerate(range(0, 20, 5), start=1):
        assert (await cs.send(call.SendLocalList(version, "Differential", tags(start, 5)))).status == "Accepted"
    assert (await cs.send(call.SendLocalList(9, "Differential", tags(20, 1)))).status == "Failed"
    assert len(sim.local_list) == 20
    assert (await cs.send(call.GetLocalListVersion())).list_version == 4


async def test_acwallbox_hard_reset_loses_the_running_transaction(cs: CentralSystem, make_sim: Any) -> None:
    """AC wallbox 3.1 Reset: hard reset loses the transaction; soft reset stops it (SoftReset)."""
    sim = await make_sim("acwallbox")
    await sim.start_session(1, "TAG1")
    await cs.send(call.Reset(type="Hard"))
    await cs.wait_for(lambda: len(cs.payloads("BootNotification")) == 2)
    await sim.wait_for(lambda: sim.accepted.is_set())
    assert "StopTransaction" not in cs.actions()
    await sim.start_session(1, "TAG1")
    await cs.send(call.Reset(type="Soft"))
    await cs.wait_for(lambda: "StopTransaction" in cs.actions())
    assert cs.payloads("StopTransaction")[0]["reason"] == "SoftReset"


async def test_smappee_reports_vendor_error_codes(cs: CentralSystem, make_sim: Any) -> None:
    """Smappee 9: SMP_AC_… codes in StatusNotification.vendorErrorCode."""
    sim = await make_sim("smappee")
    await sim.report_fault(1, "OtherError", "SMP_AC_0006")
    await cs.wait_for(lambda: cs.payloads("StatusNotification")[-1].get("vendor_error_code") == "SMP_AC_0006")
    assert "SMP_AC_0006" in sim.profile.quirks.vendor_error_codes


async def test_acwallbox_reports_its_firmware_and_diagnostics_statuses(cs: CentralSystem, make_sim: Any) -> None:
    """AC wallbox 3.1: FirmwareStatusNotification Downloading/Installed; diagnostics Uploading/Uploaded."""
    await make_sim("acwallbox")
    await cs.send(call.UpdateFirmware(location="ftp://fw.example/fw.bin", retrieve_date=NOW()))
    await cs.wait_for(lambda: len(cs.payloads("FirmwareStatusNotification")) == 2)
    assert [p["status"] for p in cs.payloads("FirmwareStatusNotification")] == ["Downloading", "Installed"]
    answer = await cs.send(call.GetDiagnostics(location="ftp://logs.example/"))
    assert answer.file_name
    await cs.wait_for(lambda: len(cs.payloads("DiagnosticsStatusNotification")) == 2)
    assert [p["status"] for p in cs.payloads("DiagnosticsStatusNotification")] == ["Uploading", "Uploaded"]


async def test_reservation_marks_the_connector_reserved_until_cancelled(cs: CentralSystem, make_sim: Any) -> None:
    """OCPP 1.6 5.13 / 5.1 (EVlink 3.1 Reservation)."""
    sim = await make_sim("evlink")
    reserve = call.ReserveNow(connector_id=2, expiry_date=NOW(), id_tag="TAG9", reservation_id=7)
    assert (await cs.send(reserve)).status == "Accepted"
    await sim.wait_for(lambda: sim.connectors[2].status == "Reserved")
    assert (await cs.send(call.ReserveNow(connector_id=0, expiry_date=NOW(), id_tag="T", reservation_id=8))) \
        .status == "Rejected"  # ReserveConnectorZeroSupported has no value in the manual
    assert (await cs.send(call.CancelReservation(reservation_id=7))).status == "Accepted"
    await sim.wait_for(lambda: sim.connectors[2].status == "Available")
    assert (await cs.send(call.CancelReservation(reservation_id=7))).status == "Rejected"


async def test_availability_change_waits_for_the_running_transaction(cs: CentralSystem, make_sim: Any) -> None:
    """OCPP 1.6 5.2: Scheduled while a transaction runs, applied when it ends."""
    sim = await make_sim("generic")
    await sim.start_session(1, "TAG1")
    assert (await cs.send(call.ChangeAvailability(connector_id=0, type="Inoperative"))).status == "Scheduled"
    assert sim.connectors[1].status == "Charging"
    await sim.stop_session(1)
    await sim.unplug(1)
    assert sim.connectors[1].status == "Unavailable"
    assert (await cs.send(call.RemoteStartTransaction(id_tag="APP1", connector_id=1))).status == "Rejected"


async def test_charger_reconnects_and_boots_after_the_server_drops_it(cs: CentralSystem) -> None:
    """OCPP 1.6 4.2: a BootNotification after every (re)connection (zappi "Boot Notification")."""
    sim = Simulator("zappi", "CP1", cs.url, heartbeat=False, reconnect_delay_s=0)
    try:
        await sim.start()
        await cs.connections["CP1"].close()
        await cs.wait_for(lambda: len(cs.payloads("BootNotification")) == 2)
        await sim.wait_for(lambda: sim.ready.is_set())
    finally:
        await sim.stop()


async def test_heartbeats_follow_the_boot_interval(cs: CentralSystem) -> None:
    """OCPP 1.6 4.6: heartbeat every `interval` from BootNotification.conf."""
    cs.boot_answers = [("Accepted", 1)]
    sim = Simulator("generic", "CP1", cs.url)
    try:
        await sim.start()
        assert sim.config.get("HeartbeatInterval") == "1"
        await cs.wait_for(lambda: "Heartbeat" in cs.actions())
    finally:
        await sim.stop()


async def test_data_transfer_knows_only_its_vendor(cs: CentralSystem, make_sim: Any) -> None:
    """Smappee 6 Data Transfer: unknown vendors get UnknownVendorId (OCPP 1.6 5.6)."""
    await make_sim("smappee")
    assert (await cs.send(call.DataTransfer(vendor_id="Smappee"))).status == "Accepted"
    assert (await cs.send(call.DataTransfer(vendor_id="Other"))).status == "UnknownVendorId"


async def test_a_tx_profile_right_behind_the_start_answer_names_a_known_transaction(cs: CentralSystem,
                                                                                     make_sim: Any) -> None:
    """Real firmware handles the StartTransaction answer (and learns the transaction id) before
    the frame behind it; the simulator rejected such a TxProfile as for an unknown transaction."""
    from gateway.simulator.profile import with_firmware
    cs.profile_after_start = 10.0
    sim = await make_sim(with_firmware(load_profile("generic"), reject_unknown_transaction=True))
    tx = await sim.start_session(1, "TAG1")
    await sim.wait_for(lambda: any("<- SetChargingProfile" in e for e in sim.events))
    await sim.send_heartbeat()  # one more round trip: the profile's answer went out before it
    assert tx.transaction_id == 100
    assert not [e for e in sim.events if "rejected" in e]
    assert sim.limit_a(1) == 10.0
