"""What a write to a point does: the one adapter between points and gateway actions.

`PointCommands.run` takes (point, value) already checked by `PointSpec.coerce`, carries out the
point's `on_write` command (one method per `WriteCommand`) and returns the text the result point
shows (None: nothing was done, e.g. a pulse point written back to idle, and the last result
stays), or raises `WriteRefused` so the BMS gets an error and nothing is stored. Operator actions
go through `gateway.operator.actions`, as the CLI's do. `PointWrites` waits for the answer a
little (`bacnet.write_wait_s`, `modbus.write_wait_s`) and puts a late one in the result point.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from gateway.errors import (
    ChargerCallError,
    ChargerTimeout,
    ChargerUnavailable,
    OcppError,
    OperationError,
    WriteRefused,
)
from gateway.operator import actions as operations
from gateway.operator.actions import ActionParts
from points.spec import (
    AVAILABILITY_STATES,
    REGISTRATION_STATES,
    RESET_STATES,
    RESULT_TEXT_MAX,
    SC_KIND_STATES,
    SC_PURPOSE_STATES,
    SC_UNIT_STATES,
    WriteCommand,
)
from points.table import Point, PointTable

if TYPE_CHECKING:
    from gateway.charging.controller import ChargingController

log = logging.getLogger(__name__)
# OCPP 1.6 schema limits (ChangeConfiguration value: CiString500, idTag: CiString20).
MAX_CONFIG_VALUE, MAX_ID_TAG = 500, 20
# Answers that mean the action happened (or will): anything else is a refusal.
DONE = {"Accepted", "Unlocked", "Scheduled", "RebootRequired"}


class PointCommands:
    """The catalog's write commands, bound to this gateway's operator actions and controller."""

    def __init__(self, parts: ActionParts, charging: ChargingController | None, table: PointTable) -> None:
        self.parts = parts
        self.charging = charging
        self.table = table  # its site limits as a BMS wrote them, and who commands them
        self.site = table.state.site

    async def run(self, point: Point, value: Any) -> str | None:
        """Carry out the point's command (its spec's `on_write`)."""
        match point.spec.on_write:
            case WriteCommand.CHANGE_CONFIGURATION:
                return await self.change_configuration(point, value)
            case WriteCommand.RESET:
                return await self.reset(point, value)
            case WriteCommand.CLEAR_CACHE:
                return await self.clear_cache(point, value)
            case WriteCommand.UNLOCK:
                return await self.unlock(point, value)
            case WriteCommand.REMOTE_START:
                return await self.remote_start(point, value)
            case WriteCommand.REMOTE_STOP:
                return await self.remote_stop(point, value)
            case WriteCommand.AVAILABILITY:
                return await self.availability(point, value)
            case WriteCommand.REGISTRATION:
                return await self.registration(point, value)
            case WriteCommand.SMART_SETTING:
                return await self.smart_setting(point, value)
            case WriteCommand.SITE_POWER_LIMIT | WriteCommand.SITE_CURRENT_LIMIT:
                return await self.site_limit(point, value)
        raise WriteRefused(f"{point.spec.on_write} is not available in this build", "write-access-denied")

    async def change_configuration(self, point: Point, value: Any) -> str:
        text = str(value)
        if len(text) > MAX_CONFIG_VALUE:
            raise WriteRefused(f"longer than {MAX_CONFIG_VALUE} characters", "invalid-value")
        return await _done(operations.change_configuration(self.parts, point.charger_id, str(point.subject),
                                                           text, source="bms"))

    async def reset(self, point: Point, value: Any) -> str | None:
        kind = RESET_STATES[int(value) - 1]
        if kind == "Idle":
            return None
        return await _done(operations.reset(self.parts, point.charger_id, kind))

    async def clear_cache(self, point: Point, value: Any) -> str | None:
        return await _done(operations.clear_cache(self.parts, point.charger_id)) if value else None

    async def unlock(self, point: Point, value: Any) -> str | None:
        if not value:
            return None
        return await _done(operations.unlock_connector(self.parts, point.charger_id, point.connector_id or 0))

    async def remote_start(self, point: Point, value: Any) -> str:
        id_tag = str(value).strip()
        if not id_tag or len(id_tag) > MAX_ID_TAG:
            raise WriteRefused(f"an idTag of 1..{MAX_ID_TAG} characters is needed", "invalid-value")
        return await _done(operations.remote_start_transaction(self.parts, point.charger_id, id_tag,
                                                               point.connector_id))

    async def remote_stop(self, point: Point, value: Any) -> str | None:
        if not value:
            return None
        return await _done(operations.remote_stop_transaction(self.parts, point.charger_id,
                                                              connector_id=point.connector_id))

    async def availability(self, point: Point, value: Any) -> str:
        kind = AVAILABILITY_STATES[int(value) - 1]
        return await _done(operations.change_availability(self.parts, point.charger_id, kind,
                                                          point.connector_id or 0))

    async def registration(self, point: Point, value: Any) -> str:
        answer = REGISTRATION_STATES[int(value) - 1]
        await self.parts.device_book.update_device(point.charger_id, registration=answer)
        return answer

    async def smart_setting(self, point: Point, value: Any) -> str:
        if self.charging is None:
            raise WriteRefused("smart charging is not running", "write-access-denied")
        field, states = _SMART_FIELDS[point.spec.key]
        new = states[int(value) - 1] if states else value
        try:
            await self.charging.configure(point.charger_id, point.connector_id or 0, **{field: new})
        except OperationError as exc:
            raise WriteRefused(str(exc), "invalid-value") from None
        return "Stored"

    async def site_limit(self, point: Point, value: Any) -> str:
        """The EMS commands a site limit; the controller decides what is in force (and expires
        a BMS value that is not refreshed). The relinquish default of 10000 means "no limit"."""
        site = self.site
        if point.spec.key == "PowerLimit":
            site.power_limit_kw = float(value)
        else:
            site.current_limit_a = float(value)
        # One line per command that reaches smart charging (a BMS repeating itself is not one).
        self.parts.history.log("site", "SiteLimitCommand", f"{point.name} {float(value):g} from the BMS")
        if self.charging is None:
            return "Stored"
        power = site.power_limit_kw if site.power_limit_kw < NO_LIMIT else None
        current = site.current_limit_a if site.current_limit_a < NO_LIMIT else None
        await self.charging.set_site_limit(power, current, source="bms",
                                           priority=self.table.commanding_priority(point))
        return "Applied"


async def _done(action: Awaitable[dict[str, Any]]) -> str:
    """One operation; offline, CALLERROR, timeout and refusals become WriteRefused."""
    try:
        answer = await action
    except ChargerUnavailable as exc:
        raise WriteRefused(str(exc), "charger-offline") from None
    except ChargerTimeout as exc:
        raise WriteRefused(str(exc), "rejected", "Timeout") from None
    except ChargerCallError as exc:
        raise WriteRefused(f"CALLERROR {exc.code}", "rejected", "CALLERROR") from None
    except OperationError as exc:
        raise WriteRefused(str(exc), "rejected") from None
    except (OcppError, ValueError) as exc:  # our payload broke the schema: a bad value from the BMS
        raise WriteRefused(str(exc), "invalid-value") from None
    status = str(answer.get("status", "Accepted"))
    if status not in DONE:
        raise WriteRefused(f"charger answered {status}", "rejected", status[:RESULT_TEXT_MAX])
    return status


class PointWrites:
    """Runs a checked write and waits up to `wait_s` for it (the table's `writer`).

    A quick refusal reaches the BMS as an error; a slower answer lands in the result point when
    it arrives."""

    def __init__(self, run: Callable[[Point, Any], Awaitable[str | None]]) -> None:
        self.run = run

    async def write(self, table: PointTable, point: Point, value: Any, wait_s: float) -> str:
        task = asyncio.ensure_future(self.run(point, value))
        try:
            text = await asyncio.wait_for(asyncio.shield(task), wait_s)
        except TimeoutError:
            table.set_result(point, "Pending")
            task.add_done_callback(lambda t: _late_result(table, point, t))
            return "Pending"
        except WriteRefused as exc:
            table.set_result(point, exc.outcome)
            raise
        if text is None:
            return ""
        table.set_result(point, text)
        return text


def _late_result(table: PointTable, point: Point, task: asyncio.Future[str | None]) -> None:
    if task.cancelled():
        table.set_result(point, "Cancelled")
    elif isinstance(task.exception(), WriteRefused):
        table.set_result(point, task.exception().outcome)  # type: ignore[union-attr]
    elif task.exception() is not None:
        log.error("write to %s failed", point.name, exc_info=task.exception())
        table.set_result(point, "Failed")
    elif task.result() is not None:
        table.set_result(point, task.result())


NO_LIMIT = 10000.0  # the site points' "no limit" value (their default and maximum)
# Smart-charging point key -> (NiagaraProfileSettings field, state texts for multi-state points).
_SMART_FIELDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "SC-Enable": ("enabled", ()), "SC-Unit": ("unit", SC_UNIT_STATES),
    "SC-Limit": ("limit", ()), "SC-Kind": ("kind", SC_KIND_STATES),
    "SC-Purpose": ("purpose", SC_PURPOSE_STATES), "SC-ProfileId": ("profile_id", ()),
    "SC-StackLevel": ("stack_level", ()),
}
