"""The simulated charger: connection, boot, heartbeats, sessions and the offline queue.

Inbound (central-system-initiated) calls are answered in `charge_point.py`; this module owns what
the charger sends and the state both sides share. Tests drive it step by step (`start_session`,
`send_meter_values`, `go_offline`) and synchronise on `accepted`, `wait_for` and the returned
awaitables, never on sleeps.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from ocpp.v16 import call
from websockets.asyncio.client import connect

from .charge_point import SimChargePoint
from .charging import ProfileStore
from .model import ConfigStore, Connector, Meter, iso
from .profile import BOOT_SERIAL_SCHEMA_MAX, ChargerProfile, load_profile
from .sessions import CONNECTION_ERRORS, Queued, Sessions

LOG = logging.getLogger(__name__)


class Simulator(Sessions):
    """One simulated charger, modelled on a profile from `profiles/`."""

    def __init__(
        self,
        profile: str | ChargerProfile = "generic",
        charger_id: str = "CP1",
        url: str = "ws://127.0.0.1:8887/ocpp",
        password: str | None = None,
        *,
        heartbeat: bool = True,
        meter_loop: bool = False,
        reconnect_delay_s: float = 5.0,
        on_event: Callable[[str], None] | None = None,
        boot_on_reconnect: bool = True,
    ) -> None:
        self.profile = profile if isinstance(profile, ChargerProfile) else load_profile(profile)
        self.charger_id = charger_id
        self.url = url.rstrip("/")
        self.heartbeat = heartbeat
        self.meter_loop = meter_loop
        self.reconnect_delay_s = reconnect_delay_s
        self.on_event = on_event
        # Real firmware (real-firmware notes, "Outages and restarts"): after a mere reconnect,
        # many chargers send neither BootNotification nor StatusNotification.
        self.boot_on_reconnect = boot_on_reconnect
        self.time_offset = timedelta(0)
        self.password = password
        self._init_charger(self.profile)
        self._init_connection()

    def _init_charger(self, p: ChargerProfile) -> None:
        """What the charger holds: configuration, profiles, meter, connectors, lists, statuses."""
        self.config = ConfigStore(p.keys)
        if "CSMSUrl" in self.config.values:
            self.config.set_internal("CSMSUrl", self.url)  # Smappee: "Current websocket URL"
        if self.password and p.quirks.authorization_key:
            self.config.set_internal(p.quirks.authorization_key, self.password)
        self.profiles = ProfileStore(p.smart_charging, p.phases, p.voltage_v, p.max_current_a)
        self.meter = Meter(p.phases, p.voltage_v, p.max_current_a, p.smart_charging.min_current_a,
                           p.firmware.ramp_s)
        self.connectors = {i: Connector(i, ev_max_current_a=p.max_current_a) for i in range(p.connectors + 1)}
        self.local_list: dict[str, dict[str, Any]] = {}
        self.local_list_version = 0
        self.auth_cache: dict[str, str] = {}  # id tag -> last status (Authorization Cache, OCPP 1.6 3.5.2)
        self.firmware_status = "Idle"
        self.diagnostics_status = "Idle"
        self.received_calls: list[tuple[str, dict[str, Any]]] = []
        self.sent_calls: list[tuple[str, dict[str, Any], Any]] = []
        self.events: list[str] = []
        self.last_sent: dict[str, Any] = {}  # action -> payload (zappi TriggerMessage relays it)
        self.malformed_transaction_data = False  # see Sessions.malformed_transaction_data

    def _init_connection(self) -> None:
        """The connection's state and what tests and tasks wait on."""
        self.pending: deque[Queued] = deque()
        self.registration: str | None = None
        self.boot_interval_s = 0
        self.boot_count = 0
        self.accepted = asyncio.Event()
        self.ready = asyncio.Event()  # accepted, boot statuses sent and offline queue delivered
        self.connected = asyncio.Event()
        self.disconnected = asyncio.Event()
        self.disconnected.set()
        self._online_wanted = asyncio.Event()
        self._boot_now = asyncio.Event()
        self._changed = asyncio.Condition()
        self._flush_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._run_task: asyncio.Task[None] | None = None
        self._cp: SimChargePoint | None = None
        self._next_delay_s = 0.0
        self._stopping = False
        self._powered = False  # booted since the last power cycle: a reconnect need not boot
        self._meter_task: asyncio.Task[None] | None = None

    # ----- time, events, waiting -------------------------------------------------------------

    def now(self) -> datetime:
        """Wall clock plus `time_offset`: tests move time forward with `advance`."""
        return datetime.now(UTC) + self.time_offset

    def advance(self, seconds: float) -> None:
        self.time_offset += timedelta(seconds=seconds)

    def emit(self, text: str) -> None:
        line = f"{self.charger_id} {text}"
        self.events.append(line)
        LOG.info(line)
        if self.on_event:
            self.on_event(line)
        self.spawn(self._notify())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait until `predicate()` holds; it is re-checked after every message in or out."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(predicate), timeout)

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        """Start a task we keep a reference to and whose failure is logged with the charger id."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() and not isinstance(t.exception(), CONNECTION_ERRORS):
                LOG.error("%s: task failed", self.charger_id, exc_info=t.exception())

        task.add_done_callback(done)
        return task

    # ----- lifecycle -------------------------------------------------------------------------

    async def start(self, wait: str = "accepted", timeout: float = 10.0) -> str | None:
        """Connect and boot. Returns the registration status once Accepted and the boot
        StatusNotifications are sent (`wait="accepted"`), or after the first BootNotification
        answer whatever it is (`wait="answer"`)."""
        self._stopping = False
        self._powered = False
        self._online_wanted.set()
        self._run_task = self.spawn(self._run())
        target = (lambda: self.ready.is_set()) if wait == "accepted" else (lambda: self.boot_count > 0)
        await self.wait_for(target, timeout)
        return self.registration

    async def stop(self) -> None:
        self._stopping = True
        self._online_wanted.clear()
        await self._close()
        if self._run_task:
            self._run_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, *CONNECTION_ERRORS):
                await self._run_task
        for task in list(self._tasks):
            task.cancel()

    async def go_offline(self) -> None:
        """Drop the connection and stay away until `go_online` (network loss)."""
        self._online_wanted.clear()
        await self._close()
        await self.disconnected.wait()
        self.emit("offline")

    async def go_online(self, timeout: float = 10.0) -> None:
        """Reconnect, boot, and return once accepted and the offline queue is delivered."""
        self._next_delay_s = 0.0
        self._online_wanted.set()
        await self.wait_for(lambda: self.ready.is_set(), timeout)

    async def reconnect(self, delay_s: float = 0.0) -> None:
        """Close the connection and come back after `delay_s` (reset, new authorization key)."""
        self._next_delay_s = delay_s
        await self._close()

    async def _close(self) -> None:
        cp = self._cp
        if cp is not None:
            await cp.close()

    def ws_url(self) -> str:
        # Smappee 7: the custom key CSMSUrl changes the websocket endpoint (used at the next connection).
        base = (self.config.get("CSMSUrl") or self.url).rstrip("/")
        return f"{base}/{self.charger_id}"

    def _headers(self) -> dict[str, str]:
        key = self.config.get(self.profile.quirks.authorization_key) if self.profile.quirks.authorization_key \
            else self.password
        key = key or self.password
        if not key:
            return {}
        # OCPP 1.6 security profile 1: HTTP Basic, username = charge point identity.
        secret = key.encode()
        if self.profile.quirks.authorization_key_hex_decoded:
            with contextlib.suppress(ValueError):
                secret = bytes.fromhex(key)  # whitepaper: the configured hex, decoded
        token = base64.b64encode(self.charger_id.encode() + b":" + secret).decode()
        return {"Authorization": f"Basic {token}"}

    def _ping_interval(self) -> float | None:
        # AC wallbox 2.4.3: pings every WebSocketPingInterval seconds, 0 disables.
        interval = self.config.get_int("WebSocketPingInterval", 0)
        return float(interval) if interval > 0 else None

    async def _run(self) -> None:
        while not self._stopping:
            await self._online_wanted.wait()
            try:
                async with connect(self.ws_url(), subprotocols=["ocpp1.6"], additional_headers=self._headers(),
                                   proxy=None, ping_interval=self._ping_interval(), open_timeout=10) as ws:
                    self._cp = SimChargePoint(self.charger_id, ws, self)
                    self.disconnected.clear()
                    self.connected.set()
                    self.emit(f"connected to {self.ws_url()}")
                    reader = self.spawn(self._cp.start())
                    session = self.spawn(self._session())
                    await asyncio.wait({reader, session}, return_when=asyncio.FIRST_COMPLETED)
                    for task in (reader, session):
                        task.cancel()
            except CONNECTION_ERRORS as exc:
                self.emit(f"connection failed: {exc!r}")
                self._next_delay_s = self._next_delay_s or self.reconnect_delay_s
            finally:
                self._cp = None
                self.accepted.clear()
                self.ready.clear()
                self.connected.clear()
                self.disconnected.set()
                self.emit("disconnected")
            if not self._stopping and self._online_wanted.is_set():
                delay, self._next_delay_s = self._next_delay_s, self.reconnect_delay_s
                await asyncio.sleep(delay)  # a real charger's reconnect back-off, not synchronisation

    def power_cycle(self) -> None:
        """The next connection boots (a reset or power loss, not a mere network reconnect)."""
        self._powered = False

    async def _session(self) -> None:
        try:
            if self._powered and not (self.boot_on_reconnect and self.profile.firmware.boot_on_reconnect):
                # Real firmware after a mere reconnect: no BootNotification, no StatusNotification.
                self.accepted.set()
                self.emit("reconnected without a boot")
            else:
                await self._boot()
                self._powered = True
                for connector in self.connectors.values():
                    await self.send_status(connector.id)
            await self.flush()
            self.ready.set()
            self.emit("ready")
            if self.meter_loop and (self._meter_task is None or self._meter_task.done()):
                self._meter_task = self.spawn(self._meter_loop())
            while self.heartbeat:
                interval = max(self.heartbeat_interval_s(), self.profile.quirks.heartbeat_min_effective_s, 1)
                await asyncio.sleep(interval)
                await self.send_heartbeat()
            await asyncio.Future()  # keep the connection
        finally:
            await self._close()

    # ----- boot ------------------------------------------------------------------------------

    def boot_payload(self) -> tuple[dict[str, str], bool]:
        """BootNotification fields and whether they break the schema (over-long serials, EVlink 8.1)."""
        payload = self.profile.boot.payload()
        key = self.profile.quirks.boot_serial_truncate_key
        if key and self.config.get_bool(key):
            for field in ("charge_box_serial_number", "charge_point_serial_number"):
                if field in payload:
                    payload[field] = payload[field][:BOOT_SERIAL_SCHEMA_MAX]
        too_long = any(len(payload.get(f, "")) > BOOT_SERIAL_SCHEMA_MAX
                       for f in ("charge_box_serial_number", "charge_point_serial_number"))
        return payload, too_long

    async def _boot(self) -> None:
        while True:
            payload, too_long = self.boot_payload()
            # The real charger sends the over-long serial anyway: skip our own outgoing validation.
            result = await self.call(call.BootNotification(**payload), skip_validation=too_long)
            self.registration = str(result.status)
            self.boot_interval_s = int(result.interval)
            self.boot_count += 1
            if self.registration == "Accepted":
                if self.boot_interval_s > 0:
                    self.config.set_internal(self.profile.quirks.heartbeat_interval_key, str(self.boot_interval_s))
                self.accepted.set()
                self.emit("boot accepted")
                return
            # Pending / Rejected: boot again after the interval (OCPP 1.6 4.2); zappi sends nothing
            # else meanwhile ("Boot Notification": waits until Accepted). A TriggerMessage(BootNotification)
            # during Pending wakes the loop early.
            self.emit(f"boot {self.registration}, retry in {self.boot_interval_s or 60} s")
            self._boot_now.clear()
            with contextlib.suppress(TimeoutError):  # asyncio.timeout honours a cancel (3.11 wait_for may not)
                async with asyncio.timeout(self.boot_interval_s or 60):
                    await self._boot_now.wait()

    def request_boot(self) -> None:
        """TriggerMessage(BootNotification) while Pending: boot again now."""
        self._boot_now.set()

    def heartbeat_interval_s(self) -> int:
        return self.config.get_int(self.profile.quirks.heartbeat_interval_key, self.boot_interval_s or 300)

    # ----- sending ---------------------------------------------------------------------------

    async def call(self, payload: Any, skip_validation: bool = False) -> Any:
        """Send one call; a CALLERROR or timeout raises (no silent None)."""
        cp = self._cp
        if cp is None:
            raise ConnectionError(f"{self.charger_id} is offline")
        action = type(payload).__name__
        if action != "BootNotification" and not self.accepted.is_set() \
                and self.profile.quirks.boot_pending_waits_for_accepted:
            raise ConnectionError(f"{self.charger_id} waits for an Accepted boot")  # zappi "Boot Notification"
        data = {k: v for k, v in payload.__dict__.items() if v is not None}
        result = await cp.call(payload, suppress=False, skip_schema_validation=skip_validation)
        self.sent_calls.append((action, data, result))
        self.last_sent[action] = payload
        self.emit(f"-> {action} {_brief(data)} <- {_brief(result.__dict__)}")
        return result

    def online(self) -> bool:
        """True when messages other than BootNotification may go out (OCPP 1.6 4.2)."""
        return self._cp is not None and self.accepted.is_set()

    async def send_status(self, connector_id: int) -> None:
        c = self.connectors[connector_id]
        if not self.online():
            return  # statuses are resent after the next boot
        await self.call(call.StatusNotification(
            connector_id=connector_id, error_code=c.error_code, status=c.status,
            timestamp=iso(self.now()), vendor_error_code=c.vendor_error_code))

    async def set_status(self, connector_id: int, status: str) -> None:
        c = self.connectors[connector_id]
        if c.status != status:
            c.status = status
            await self.send_status(connector_id)

    async def send_heartbeat(self) -> None:
        if self.online():
            await self.call(call.Heartbeat())

    async def report_fault(self, connector_id: int, error_code: str = "OtherError",
                           vendor_error_code: str | None = None) -> None:
        """StatusNotification Faulted with a vendor code (Smappee section 9, EVlink 7.1)."""
        c = self.connectors[connector_id]
        c.error_code, c.vendor_error_code = error_code, vendor_error_code
        c.status = "Faulted"
        await self.send_status(connector_id)


def _brief(data: dict[str, Any]) -> str:
    text = ", ".join(f"{k}={v}" for k, v in data.items() if v not in (None, [], {}))
    return text if len(text) < 160 else text[:157] + "..."
