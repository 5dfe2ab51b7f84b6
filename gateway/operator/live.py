"""Settings an operator changes while the site runs (Niagara edits these property sheets live).

The TOML file (or the defaults) gives the first value; a change from the CLI, the admin API or
the web page is validated like the file, applied at once to the running gateway, kept in the
database (kv scope `setting`, so it survives a restart and wins over the file) and written to
the general log: "setting X changed from A to B by admin". `reset` goes back to the file's value.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from gateway.errors import ConfigError
from gateway.settings import CHOICES, check_value, coerce

if TYPE_CHECKING:
    from gateway.charging.controller import ChargingController
    from gateway.history.store import HistoryStore
    from gateway.model.station import Clock
    from gateway.ocpp.connections import Connections
    from gateway.settings import Settings

log = logging.getLogger(__name__)
SETTING_SCOPE = "setting"

# What each live setting is for, shown on the network page and by `ocpp-gateway settings list`.
LIVE_SETTINGS: dict[str, str] = {
    "authorize.policy": "who may charge (Niagara Authorize Type); tags are the white/black lists",
    "registration.guest_response": "answer to chargers not in the device database",
    "registration.guest_reconnect_interval_s": "interval sent with a guest's answer (s)",
    "ocpp.heartbeat_interval_s": "heartbeat interval given at the next Accepted boot (s)",
    "ocpp.response_timeout_s": "how long a call to a charger waits for its answer (s)",
    "ocpp.offline_after_heartbeats": "silent this many heartbeat intervals: offline",
    "ocpp.websocket_lost_connection_fault": "a closed websocket is a fault at once (Niagara Web Socket Lost Connection Fault)",
    "smart_charging.safe_power_limit_kw": "site limit when the BMS stops refreshing (kW; none: no limit)",
    "smart_charging.setpoint_timeout_s": "how long a BMS-written site limit holds (s)",
    "smart_charging.nominal_voltage_v": "phase voltage for W <-> A",
    "smart_charging.default_phases": "phases assumed until meter values show otherwise",
    "logging.level": "process log level",
    "logging.filter_charger": "only log lines naming this charger (plus warnings); empty: all",
}


class LiveSettings:
    """The live settings of one gateway: read, change, reset; persisted and logged."""

    def __init__(self, settings: Settings, history: HistoryStore, clock: Clock, connections: Connections,
                 charging: ChargingController | None) -> None:
        self.settings = settings
        self.charging = charging  # a new safe limit is decided again at once
        self.history = history
        self.clock = clock
        self.connections = connections  # a guest answer changed: the connected guests boot again
        # The values the file gave, to show what a reset goes back to.
        self.initial = {k: v for k, v in settings.values().items() if k in LIVE_SETTINGS}
        self.stored: dict[str, Any] = {}
        self.started_at: float | None = None

    async def start(self) -> None:
        """Stored changes win over the file (an operator's edit must survive a restart)."""
        self.started_at = self.clock()
        for key, text in (await self.history.kv_get(SETTING_SCOPE)).items():
            if key not in LIVE_SETTINGS or not text:
                continue
            try:
                value = self._validated(key, json.loads(text))
            except (ValueError, ConfigError) as exc:
                log.warning("stored setting %s ignored: %s", key, exc)
                continue
            self.stored[key] = value
            self._set(key, value)

    def view(self) -> list[dict[str, Any]]:
        current = self.settings.values()
        return [{"key": key, "value": current[key], "file_value": self.initial[key],
                 "changed": key in self.stored, "choices": list(CHOICES.get(key, ())),
                 "type": self.settings.field_type(key), "meaning": meaning}
                for key, meaning in LIVE_SETTINGS.items()]

    def _validated(self, key: str, value: Any) -> Any:
        if key not in LIVE_SETTINGS:
            live = ", ".join(LIVE_SETTINGS)
            raise ConfigError(f"{key} is not a setting that changes while running "
                              f"(live: {live}); others are set in the file and need a restart")
        value = coerce(key, self.settings.field_type(key), value)
        problem = check_value(key, value)
        if problem:
            raise ConfigError(f"{key} {problem}")
        return value

    async def change(self, key: str, raw: Any, by: str = "admin") -> dict[str, Any]:
        """Validate, apply at once, persist, log. Nothing changes when the value is refused."""
        value = self._validated(key, raw)
        old = self.settings.values()[key]
        await self.history.kv_put(SETTING_SCOPE, {key: json.dumps(value)})
        self.stored[key] = value
        self._set(key, value)
        if old != value:
            self.history.log("admin", "SettingChanged", f"setting {key} changed from {old} to {value} by {by}")
            log.info("setting %s changed from %s to %s by %s", key, old, value, by)
        return next(row for row in self.view() if row["key"] == key)

    async def reset(self, key: str, by: str = "admin") -> dict[str, Any]:
        """Back to the file's (or default) value."""
        self._validated(key, self.initial.get(key))
        await self.history.kv_put(SETTING_SCOPE, {key: ""})
        self.stored.pop(key, None)
        old = self.settings.values()[key]
        self._set(key, self.initial[key])
        if old != self.initial[key]:
            self.history.log("admin", "SettingChanged",
                                f"setting {key} changed from {old} to {self.initial[key]} by {by} (reset)")
        return next(row for row in self.view() if row["key"] == key)

    def _set(self, key: str, value: Any) -> None:
        section, _, name = key.partition(".")
        setattr(getattr(self.settings, section), name, value)
        self._take_effect(key, value)

    def _take_effect(self, key: str, value: Any) -> None:
        """Most readers look at gw.settings on every use (smart charging's once-a-second pass
        reads its timeouts by itself); these few need a nudge."""
        if key == "logging.filter_charger":
            from gateway.history.logfilter import set_charger_filter
            set_charger_filter(value)
        elif key == "logging.level":
            logging.getLogger().setLevel(str(value).upper())
        elif key == "smart_charging.safe_power_limit_kw" and self.charging is not None:
            self.charging.site.reconfigure()  # the once-a-second pass decides with it
        elif key == "registration.guest_response":
            for charger_id, session in list(self.connections.sessions.items()):
                if session.station.slot is None:
                    session.station.registration = value
                    self.connections.ask_for_new_boot(charger_id)  # a guest now Accepted boots at once

