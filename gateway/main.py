"""The composition root: builds every part of the running gateway and wires them by explicit calls.

Nothing imports this module (the layering test checks it); it is the console script
(`ocpp-gateway = gateway.main:main`) and what the tests start. Each part is handed only what it
uses (a registry, a history store, a request function, a clock, a spawn function, settings), so
the wiring is all here, in the order it runs:

    registry, history, tasks                       the live model, the store, background tasks
    DeviceBook                                     device database, tags, registration answer
    Connections (ChargerSession per charger)       the OCPP sessions, told about FollowUps
    ChargerRequests, ChargerConfiguration          operator calls; the configuration read
    ChargingController                             site limit, allocation, profiles
    PointsService (+ BACnet), ModbusPointServer    the point table and the BMS protocols
    OcppServer, AdminServer                        the network edges

Start: store, device book, active transactions, live settings, stored configuration, smart
charging, web pages, OCPP, admin; then, while chargers reconnect, the point table, Modbus and the
BACnet device, whose objects (tens of thousands on a large site) are all built before it answers
(docs/architecture.md, "Start order"). Stop in reverse.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable

from aiohttp import web

from gateway.chargers.configuration import ChargerConfiguration
from gateway.chargers.devices import DeviceBook
from gateway.charging.controller import ChargingController
from gateway.errors import CliError
from gateway.gc_policy import GcPolicy
from gateway.history.restore import restore_active_transactions
from gateway.history.store import HistoryStore
from gateway.lagprobe import LagProbe
from gateway.memtrim import HeapTrim
from gateway.model.credentials import stored_key
from gateway.model.station import Registry, Station
from gateway.ocpp.connections import Connections
from gateway.ocpp.logbudget import LogBudget, MeterBudget, OrphanStops
from gateway.ocpp.login import LoginGuard
from gateway.ocpp.parts import SessionParts
from gateway.ocpp.requests import ChargerRequests
from gateway.ocpp.server import OcppServer
from gateway.ocpp.session import ChargerSession
from gateway.operator import (
    actions_api,
    actions_cli,
    cli,
    exports_api,
    exports_cli,
    init_cli,
    settings_api,
    settings_cli,
)
from gateway.operator import charging as operator_charging
from gateway.operator.actions import ActionParts
from gateway.operator.api import AdminParts, AdminServer, build_app
from gateway.operator.live import LiveSettings
from gateway.operator.token import ensure_admin_token, ensure_charger_password, token_path
from gateway.operator.web import WebUI
from gateway.settings import Settings
from gateway.simulator import cli as simulator_cli
from gateway.tasks import Spawn, TaskSet
from points import cli as points_cli
from points.commands import PointCommands
from points.modbus.server import ModbusPointServer
from points.service import PointsService
from points.table import PointTable

log = logging.getLogger(__name__)


class FollowUps:
    """What follows a charger's boot or a transaction change (the sessions' `SessionEvents`).

    Built before the parts it calls (the sessions need it, and those parts need the sessions);
    `Gateway.__init__` hands it the configuration reader and the controller once they exist.
    """

    def __init__(self, spawn: Spawn) -> None:
        self.spawn = spawn
        self.configuration: ChargerConfiguration | None = None
        self.charging: ChargingController | None = None
        self.connections: Connections | None = None

    def booted(self, session: ChargerSession, status: str) -> None:
        """Read the configuration, then re-apply profiles; both start only once the Boot answer is
        on the wire (lbbrhzn#1503: Wallbox loops when GetConfiguration arrives before it)."""
        configuration, charging = self.configuration, self.charging
        if configuration is not None:
            session.after_answer(lambda: configuration.on_boot(session, status), "boot follow-up")
        if charging is not None:
            session.after_answer(lambda: charging.on_boot(session, status), "boot follow-up")

    async def ask_for_status(self, session: ChargerSession, after_boot: bool) -> None:
        if self.connections is not None:
            await self.connections.ask_for_status(session, after_boot)

    def transaction_changed(self, station: Station, connector_id: int) -> None:
        if self.charging is not None:
            self.spawn(self.charging.on_transaction(station, connector_id),
                       f"transaction hook for {station.charger_id}")

    def transaction_started(self, session: ChargerSession, connector_id: int) -> None:
        """No TxProfile before the charger has our StartTransaction answer: it would not know the
        transaction id yet and reject the profile (real firmware does)."""
        charging = self.charging
        if charging is not None:
            charging.starting(session.charger_id, connector_id)
            session.after_answer(lambda: charging.on_transaction(session.station, connector_id), "transaction hook")


class Gateway:
    """The running gateway: every part, built and wired here; `start` and `stop` run them."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.time) -> None:
        self.settings, self.clock = settings, clock
        self.registry = Registry(clock)
        self.history = HistoryStore(settings.database.path, clock, settings.database.commit_interval_s)
        self.tasks = TaskSet()
        self.ports: dict[str, int] = {}
        self.started = asyncio.Event()
        self.gc_policy = GcPolicy.from_env(settings.ocpp.gc_freeze_interval_s)
        self.heap_trim = HeapTrim.for_this_process(clock)  # memory of large frames back after their burst
        # Registration answers and tags; a changed answer asks the connected charger to boot again.
        self.device_book = DeviceBook(settings, self.registry, self.history,
                                      ask_for_new_boot=lambda charger_id: self.connections.ask_for_new_boot(charger_id))
        follow_ups = FollowUps(self.tasks.spawn)
        log_budget = LogBudget(settings.ocpp.log_budget_bytes_per_minute, clock, settings.ocpp.log_line_max_chars)
        self.connections = Connections(SessionParts(
            settings, self.registry, self.history, clock, policy=self.device_book, events=follow_ups,
            spawn=self.tasks.spawn, log_budget=log_budget,
            meter_budget=MeterBudget(settings.ocpp.meter_budget_bytes_per_hour, clock),
            orphan_stops=OrphanStops(settings.ocpp.orphan_stops_per_hour, clock), frame_sizes=self.heap_trim))
        self.requests = ChargerRequests(self.registry, self.connections)
        self.configuration = ChargerConfiguration(self.registry, self.history, clock, self.requests,
                                                  self.device_book)
        self.charging = ChargingController(
            settings, self.registry, self.history, clock, chargers=self.connections,
            device_of=lambda charger_id: self.device_book.devices.get(charger_id, {}),
            spawn=self.tasks.spawn, changed=lambda charger_id: self._charging_changed(charger_id))
        self.live = LiveSettings(settings, self.history, clock, self.connections, self.charging)  # live edits
        follow_ups.configuration, follow_ups.charging = self.configuration, self.charging
        follow_ups.connections = self.connections
        self.registry.subscribe(self.charging.on_registry_change)
        self.actions = ActionParts(self.requests, self.registry, self.history, clock, self.configuration,
                                   self.device_book)
        table = PointTable(clock=clock)
        self.points = PointsService(settings, self.registry, self.history, table, self.tasks.spawn,
                                    self.charging, PointCommands(self.actions, self.charging, table))
        self.modbus: ModbusPointServer | None = None
        if settings.modbus.enabled:  # registers of the same point table (docs/modbus.md)
            self.modbus = ModbusPointServer(self.registry, table, settings.modbus)
        self.admin_parts = AdminParts(settings, self.actions, self.connections, self.ports, self.charging,
                                      self.live, clock, self.tasks.spawn, table, self.heap_trim)
        self.web = WebUI(self.admin_parts)  # the commissioning web pages, under /ui/ on the admin port
        login = LoginGuard(self.device_book, settings.ocpp, clock, self.history, self.tasks.spawn)
        self.ocpp = OcppServer(settings, self.connections, login, self.history)
        self.admin: AdminServer | None = None  # built at start: its token is made then

    def _admin_app(self, token: str) -> web.Application:
        """The admin app: core routes, then settings, exports, operator actions, smart charging,
        points and the web pages."""
        app = build_app(self.admin_parts, token)
        settings_api.add_routes(app, self.admin_parts)
        exports_api.add_routes(app, self.admin_parts)
        actions_api.add_routes(app)
        operator_charging.add_routes(app, self.charging)
        self.points.add_routes(app)
        self.web.add_routes(app)
        return app

    def _charging_changed(self, charger_id: str | None) -> None:
        """Smart charging changed: its points and the web pages' live view are told."""
        self.points.charging_changed(charger_id)
        self.web.hub.charging_changed(charger_id)

    # --- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        self.gc_policy.prepare()
        await self.history.open()
        site_password = ensure_charger_password(self.settings)
        if site_password:
            self.device_book.site_password_key = await asyncio.to_thread(stored_key, site_password)
        await self.device_book.load()
        await restore_active_transactions(self.history, self.registry)
        await self.live.start()  # stored live settings win over the file, before anything reads them
        await self.configuration.load_stored()
        await self.charging.start()
        await self.web.start()
        self.ports["ocpp"] = await self.ocpp.start()
        if self.settings.admin.enabled:
            self.admin = AdminServer(self.settings.admin, self._admin_app(ensure_admin_token(self.settings)))
            self.ports["admin"] = await self.admin.start()
        # The BMS side follows while chargers reconnect (issue 17): each protocol starts with
        # every point known before the restart, and the values fill in as chargers report.
        await self.points.start()
        if self.modbus is not None:
            self.ports["modbus"] = await self.modbus.start()
        await self.points.start_bacnet()
        if self.points.port is not None:
            self.ports["bacnet"] = self.points.port
        self.gc_policy.start(self.clock())
        self.tasks.spawn(self._housekeeping(), "housekeeping")
        self.started.set()
        log.info("OCPP central system listening on %s:%s (%s)", self.settings.ocpp.host,
                 self.ports["ocpp"], "wss" if self.settings.ocpp.ssl_enabled else "ws")

    async def stop(self) -> None:
        """Admin, BACnet and Modbus first, then the points' persisting and smart charging's, OCPP,
        tasks, the store."""
        for stop in (self.admin.stop if self.admin else None, self.points.stop,
                     self.modbus.stop if self.modbus else None, self.charging.stop):
            if stop is not None:
                with contextlib.suppress(Exception):
                    await stop()
        await self.ocpp.stop()
        await self.tasks.cancel_all()
        await self.history.close()  # commits what is queued: nothing acknowledged is lost

    async def _housekeeping(self) -> None:
        """Mark silent chargers offline, apply retention (the log is committed with each message)."""
        db = self.settings.database
        last_retention = 0.0
        while True:
            await asyncio.sleep(db.log_flush_interval_s)
            try:
                self.gc_policy.tick(self.clock())
                self.heap_trim.tick(self.clock())
                for station in list(self.registry.stations.values()):
                    self.registry.refresh_liveness(station, self.settings.ocpp.offline_after_heartbeats)
                if self.clock() - last_retention > 3600:
                    last_retention = self.clock()
                    await self.history.apply_retention(db.general_log_retention_days,
                                                       db.general_log_max_rows,
                                                       db.meter_sample_retention_days)
            except Exception:
                log.exception("housekeeping failed; retrying")


def serve(settings: Settings) -> int:
    """`ocpp-gateway run`: build the gateway, start it, run until SIGINT or SIGTERM."""
    logging.basicConfig(level=settings.logging.level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The library's own lines name no charger; the gateway logs connections with the charger id.
    logging.getLogger("websockets").setLevel(logging.WARNING)
    if settings.logging.filter_charger:
        from gateway.history.logfilter import install_charger_filter
        install_charger_filter(settings.logging.filter_charger)

    async def run() -> None:
        gateway = Gateway(settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        probe = LagProbe.from_env()  # the benchmark's loop-lag probe (docs/benchmarks.md)
        if probe is not None:
            probe.start()
        try:
            await gateway.start()
        except OSError as exc:
            await gateway.stop()
            raise CliError(cli.bind_error(settings, exc)) from None
        except BaseException:  # e.g. BACnet refused after the OCPP port opened: close that too
            await gateway.stop()
            raise
        print(started_text(settings, gateway.ports), flush=True)
        await stop.wait()
        await gateway.stop()
        if probe is not None:
            await probe.stop()

    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        runner.run(run())
    return 0


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop where it is installed (Linux, macOS), else asyncio's own.

    Measured in docs/benchmarks.md: the same gateway answers more messages per second of CPU on
    uvloop (websockets' transport and the loop's own work are what it speeds up).
    """
    try:
        import uvloop
    except ImportError:  # not built for this platform (Windows): asyncio's loop works the same
        return None
    return uvloop.new_event_loop


def started_text(settings: Settings, ports: dict[str, int]) -> str:
    """What `run` prints once listening: the endpoints, where the secrets are, the web pages."""
    lines = [f"ocpp-gateway running: OCPP ws{'s' if settings.ocpp.ssl_enabled else ''}://"
             f"{settings.ocpp.host}:{ports['ocpp']}/ocpp/<charger id>; "
             + "; ".join(f"{k} port {v}" for k, v in ports.items() if k != "ocpp")
             + f"; database {settings.database.path}", cli.security_summary(settings)]
    if "admin" in ports:
        host = settings.admin.host if settings.admin.host not in ("0.0.0.0", "::") else "127.0.0.1"
        where = "admin.token" if settings.admin.token else str(token_path(settings))
        lines.append(f"web pages: http://{host}:{ports['admin']}/ui/ (log in with the admin token, {where})")
    return "\n".join(lines)


COMMANDS = (simulator_cli.register, actions_cli.register, operator_charging.register, settings_cli.register,
            exports_cli.register, init_cli.register, points_cli.register)


def main(argv: list[str] | None = None) -> int:
    """The `ocpp-gateway` console script."""
    return cli.main(argv, serve, COMMANDS)


if __name__ == "__main__":
    raise SystemExit(main())
