"""What the OCPP room needs from the rest of the gateway, as small interfaces.

The composition root (`gateway.main`) hands each session these collaborators; a test hands it
plain objects. Nothing here knows which part implements them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from gateway.history.store import HistoryStore
from gateway.model.station import Clock, Registry, Station
from gateway.ocpp.logbudget import LogBudget, MeterBudget, OrphanStops
from gateway.settings import Settings

if TYPE_CHECKING:
    import asyncio


class RegistrationPolicy(Protocol):
    """The device database's answers, and its record of a boot (`gateway.chargers.devices.DeviceBook`)."""

    def boot_response(self, station: Station) -> str:
        """Accepted, Pending or Rejected: what this charger's BootNotification is answered."""

    def authorize(self, id_tag: str) -> dict[str, str]:
        """The idTagInfo for an Authorize, StartTransaction or StopTransaction."""

    async def remember_boot(self, station: Station) -> None:
        """Keep what an added charger says it is (and the quirk that matched it)."""


class BootedSession(Protocol):
    """What a boot's follow-ups need of the charger's session (`gateway.ocpp.session.ChargerSession`)."""

    charger_id: str
    station: Station
    closed: asyncio.Event  # set once the connection has ended
    status_seen: bool  # a StatusNotification arrived since the connection or the last boot
    booted: bool  # a BootNotification arrived on this connection

    def after_answer(self, work: Callable[[], Awaitable[None]], what: str) -> None:
        """Run `work` in a task once the answer to the current CALL has been sent."""

    async def call(self, action: str, payload: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        """Send a CALL to the charger; a typed error on CALLERROR or timeout."""


class SessionEvents(Protocol):
    """What the rest of the gateway does when a charger boots or a transaction changes."""

    def booted(self, session: BootedSession, status: str) -> None:
        """Queue follow-up work with `session.after_answer` (it runs after the Boot answer)."""

    def transaction_changed(self, station: Station, connector_id: int) -> None:
        """A transaction stopped or was lost on this connector."""

    def transaction_started(self, session: BootedSession, connector_id: int) -> None:
        """A transaction started on this connector; the charger learns its id from our answer."""

    async def ask_for_status(self, session: BootedSession, after_boot: bool) -> None:
        """Ask for StatusNotification when the charger has not reported its connectors."""


class FrameSizes(Protocol):
    """Told the size of every frame read (`gateway.memtrim.HeapTrim`: large ones leave memory to
    give back once their burst is over)."""

    def received(self, size: int) -> None:
        """A frame of `size` characters (text) or bytes (binary) arrived."""


REFUSAL_KINDS = ("log_lines", "meter_values", "orphan_stops")

Spawn = Callable[[Coroutine[Any, Any, Any], str], "asyncio.Task[Any]"]


@dataclass(frozen=True)
class SessionParts:
    """The collaborators every session of one gateway shares."""

    settings: Settings
    registry: Registry
    history: HistoryStore
    clock: Clock
    policy: RegistrationPolicy
    events: SessionEvents
    spawn: Spawn
    # One budget per charger id across its connections: reconnecting does not refill it.
    log_budget: LogBudget
    # Meter-value bytes per charger an hour (None: unbounded, for tests that build parts by hand).
    meter_budget: MeterBudget | None = None
    # Orphan StopTransaction rows per charger an hour (None: unbounded).
    orphan_stops: OrphanStops | None = None
    # Told each frame's size (None: nobody listens).
    frame_sizes: FrameSizes | None = None

    def budget_refusals(self) -> dict[str, dict[str, int]]:
        """Per charger, what its budgets refused since start (general-log lines, meter values,
        orphan stops): shown where an operator looks (`/api/status`, `ocpp-gateway status`, the
        device page), not only in the general log."""
        out: dict[str, dict[str, int]] = {}
        for name, budget in (("log_lines", self.log_budget), ("meter_values", self.meter_budget),
                             ("orphan_stops", self.orphan_stops)):
            for charger_id, refused in (budget.refused_by.items() if budget is not None else ()):
                out.setdefault(charger_id, dict.fromkeys(REFUSAL_KINDS, 0))[name] = refused
        return out
