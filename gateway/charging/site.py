"""The site-limit wishes of one gateway (BMS, manual, configured, safe) and the one in force.

Keeps the wishes, stores them (a BMS limit and its source survive a restart), asks the pure
`limit.decide` which applies, and logs every change of the limit in force to the general log
(a lapsed BMS command as a warning). No profile writes: the controller does those.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gateway.charging.limit import LimitRecord, SiteLimit, decide
from gateway.errors import OperationError

if TYPE_CHECKING:
    from gateway.history.store import HistoryStore
    from gateway.settings import SmartChargingSettings

log = logging.getLogger(__name__)
SITE_SCOPE = "site_limit"


class SiteWishes:
    def __init__(self, cfg: SmartChargingSettings, clock: Callable[[], float], history: HistoryStore,
                 changed: Callable[[], None]) -> None:
        self.cfg, self.clock, self.history = cfg, clock, history
        self.configured = SiteLimit(cfg.site_current_limit_a, kw_to_w(cfg.site_power_limit_kw))
        self.safe = SiteLimit(power_w=kw_to_w(cfg.safe_power_limit_kw)) if cfg.safe_power_limit_kw else None
        self.bms: LimitRecord | None = None
        self.manual: LimitRecord | None = None
        self.in_force = LimitRecord()
        self.unsaved = False
        self.bms_written_mono = 0.0  # loop time of the last BMS write (for coalescing)
        self._changed = changed

    def reconfigure(self) -> None:
        """Read the configured and safe limits again (a live setting changed); decide at the next pass."""
        self.configured = SiteLimit(self.cfg.site_current_limit_a, kw_to_w(self.cfg.site_power_limit_kw))
        self.safe = SiteLimit(power_w=kw_to_w(self.cfg.safe_power_limit_kw)) if self.cfg.safe_power_limit_kw else None

    async def load(self) -> None:
        stored = await self.history.kv_get(SITE_SCOPE)
        for name in ("bms", "manual"):
            try:
                record = LimitRecord.from_json(json.loads(stored[name])) if stored.get(name) else None
            except (ValueError, TypeError):
                log.warning("ignoring unreadable stored %s site limit", name)
                continue
            setattr(self, name, record)
        self.decide()

    async def save(self) -> None:
        self.unsaved = False
        await self.history.kv_put(SITE_SCOPE, {
            name: json.dumps(record.to_json()) if record is not None else ""
            for name, record in (("bms", self.bms), ("manual", self.manual))})

    def write(self, power_kw: float | None, current_a: float | None, source: str,
              priority: int | None) -> LimitRecord:
        """Take a new wish and decide at once (the caller stores it: a BMS one is coalesced)."""
        for value, name in ((power_kw, "power"), (current_a, "current")):
            if value is not None and not 0 <= value <= 100000:
                raise OperationError(f"site {name} limit out of range: {value}")
        if source not in ("bms", "manual"):
            raise OperationError(f"site limit source must be bms or manual, not {source!r}")
        record = LimitRecord(SiteLimit(current_a, kw_to_w(power_kw)), source, self.clock(), priority)
        setattr(self, source, record)
        if source == "bms":
            self.unsaved = True
            self.bms_written_mono = asyncio.get_running_loop().time()
        self.decide()
        return record

    def decide(self) -> bool:
        """Decide which limit applies now; log and tell the listeners when that changed."""
        before = self.in_force
        self.in_force = decide(self.bms, self.manual, self.configured, self.safe, self.clock(),
                               self.cfg.setpoint_timeout_s)
        changed = (self.in_force.limit, self.in_force.source, self.in_force.watchdog_expired) != (
            before.limit, before.source, before.watchdog_expired)
        if changed:
            level = "warning" if self.in_force.watchdog_expired else "info"
            self.history.log("site", "SiteLimitInForce",
                                f"{limit_text(self.in_force.limit)} ({self.in_force.reason})", level)
            if self.in_force.watchdog_expired:
                log.warning("site limit: %s", self.in_force.reason)
            self._changed()
        return changed

    def view(self) -> dict[str, Any]:
        wish = self.bms if self.in_force.source in ("bms", "safe", "last bms") else self.manual
        requested = wish.limit if wish is not None else self.configured
        limit = self.in_force.limit
        return {"requested_power_kw": w_to_kw(requested.power_w), "requested_current_a": requested.current_a,
                "source": self.in_force.source, "in_force_power_kw": w_to_kw(limit.power_w),
                "in_force_current_a": limit.current_a, "reason": self.in_force.reason,
                "watchdog_expired": self.in_force.watchdog_expired}


def limit_text(limit: SiteLimit) -> str:
    if limit.unlimited:
        return "no limit"
    return ", ".join(t for t in (f"{limit.power_w / 1000:g} kW" if limit.power_w is not None else "",
                                 f"{limit.current_a:g} A per phase" if limit.current_a is not None else "") if t)


def kw_to_w(kw: float | None) -> float | None:
    return None if kw is None else kw * 1000.0


def w_to_kw(w: float | None) -> float | None:
    return None if w is None else w / 1000.0
