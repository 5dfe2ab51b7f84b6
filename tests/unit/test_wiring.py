"""Each part is built from what it uses: plain objects in, no running gateway, no sockets.

The composition root (`gateway/main.py`) hands a session its registry, history store, clock,
registration policy and follow-ups; these tests hand it small fakes instead (style guide,
"Wiring: one composition root, narrow collaborators").
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from typing import Any

from gateway.chargers.devices import DeviceBook
from gateway.model.station import ChangeKind, ConnectorChanged, MeterChanged, MeterKey, Registry, Station
from gateway.ocpp.logbudget import LogBudget
from gateway.ocpp.parts import SessionParts
from gateway.ocpp.session import ChargerSession
from gateway.settings import Settings


class LogOnly:
    """A history store that keeps general-log lines in a list and commits at once."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str, str]] = []

    def log(self, identifier: str, message_type: str, message: str, level: str = "info") -> None:
        self.lines.append((identifier, message_type, message))

    def queue_meter_value(self, row: Any) -> None:
        pass

    @contextlib.contextmanager
    def exchange(self, charger_id: str, action: str, frame: str) -> Iterator[LogOnly]:
        yield self

    async def commit(self) -> None:
        pass

    async def room(self) -> None:
        pass


class Socket:
    """What a session sends, as decoded frames."""

    def __init__(self) -> None:
        self.sent: list[list[Any]] = []

    async def send(self, text: str) -> None:
        self.sent.append(json.loads(text))


class Policy:
    def __init__(self, answer: str) -> None:
        self.answer = answer

    def boot_response(self, station: Station) -> str:
        return self.answer

    def authorize(self, id_tag: str) -> dict[str, str]:
        return {"status": "Accepted"}

    async def remember_boot(self, station: Station) -> None:
        pass


class Events:
    def __init__(self) -> None:
        self.booted_with: list[str] = []

    def booted(self, session: ChargerSession, status: str) -> None:
        self.booted_with.append(status)

    def transaction_changed(self, station: Station, connector_id: int) -> None:
        pass

    def transaction_started(self, session: ChargerSession, connector_id: int) -> None:
        pass

    async def ask_for_status(self, session: ChargerSession, after_boot: bool) -> None:
        pass


def session(answer: str = "Accepted") -> tuple[ChargerSession, Socket, Events, Registry]:
    registry = Registry(clock=lambda: 1000.0)
    events, socket = Events(), Socket()
    parts = SessionParts(Settings(), registry, LogOnly(), lambda: 1000.0, Policy(answer), events,
                         spawn=lambda coro, what: asyncio.ensure_future(coro),
                         log_budget=LogBudget(65536, lambda: 1000.0))
    return ChargerSession(parts, registry.ensure("CP1"), socket), socket, events, registry


async def test_a_session_built_from_plain_parts_answers_a_boot_with_the_policy_answer():
    cs, socket, events, registry = session("Pending")
    await cs.handle_frame(json.dumps([2, "1", "BootNotification",
                                      {"chargePointVendor": "V", "chargePointModel": "M"}]))
    [[kind, uid, answer]] = socket.sent
    assert (kind, uid, answer["status"]) == (3, "1", "Pending")
    assert events.booted_with == ["Pending"]
    assert registry.get("CP1").boot.vendor == "V"


async def test_meter_values_reach_subscribers_as_one_typed_event():
    cs, _, _, registry = session()
    seen: list[Any] = []
    registry.subscribe(seen.append)
    await cs.handle_frame(json.dumps([2, "2", "MeterValues", {"connectorId": 1, "meterValue": [
        {"timestamp": "2026-01-01T00:00:00Z", "sampledValue": [
            {"value": "5", "measurand": "Current.Import", "phase": "L1", "unit": "A"},
            {"value": "1200", "unit": "Wh"}]}]}]))
    [event] = seen
    assert isinstance(event, MeterChanged) and event.kind is ChangeKind.METER
    assert event.key == (MeterKey(1, "Current.Import", "L1"), MeterKey(1))


def test_every_event_kind_has_its_own_type():
    assert ConnectorChanged("CP1", 2).kind == "connector"
    assert {MeterChanged.kind, ConnectorChanged.kind} <= set(ChangeKind)


def test_a_guest_gets_the_guest_answer_and_an_added_charger_its_own():
    settings = Settings()
    settings.registration.guest_response = "Rejected"
    asked: list[str] = []
    book = DeviceBook(settings, Registry(), LogOnly(), ask_for_new_boot=asked.append)  # type: ignore[arg-type]
    assert book.boot_response(Station("GUEST")) == "Rejected"
    book.devices["CP1"] = {"charger_id": "CP1", "registration": "Accepted", "slot": 1}
    assert book.boot_response(Station("CP1")) == "Accepted"


async def test_a_boot_is_followed_by_the_configuration_read_then_the_profiles():
    """Both start after the Boot answer is sent (lbbrhzn#1503), the read first."""
    from gateway.main import FollowUps

    ran: list[str] = []
    queued: list[Any] = []

    class Part:
        def __init__(self, name: str) -> None:
            self.name = name

        async def on_boot(self, session: Any, status: str) -> None:
            ran.append(f"{self.name} {status}")

    class AnsweringSession:
        def after_answer(self, work: Any, what: str) -> None:
            queued.append(work)

    follow_ups = FollowUps(spawn=lambda coro, what: asyncio.ensure_future(coro))
    follow_ups.configuration, follow_ups.charging = Part("read"), Part("profiles")  # type: ignore[assignment]
    follow_ups.booted(AnsweringSession(), "Accepted")  # type: ignore[arg-type]
    assert ran == []  # nothing before the answer is on the wire
    for work in queued:
        await work()
    assert ran == ["read Accepted", "profiles Accepted"]


def test_a_forgotten_guest_is_published_as_removed():
    registry = Registry()
    registry.ensure("GUEST")
    seen: list[Any] = []
    registry.subscribe(seen.append)
    assert registry.forget("GUEST")
    assert [(e.kind, e.charger_id) for e in seen] == [(ChangeKind.REMOVED, "GUEST")]
