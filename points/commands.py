"""What a write to a point does: the one adapter between points and gateway actions.

Each writer takes (point, value) already checked by `PointSpec.coerce`, carries out the action
and returns the text the result point shows (None: nothing was done, e.g. a pulse point written
back to idle, and the last result stays), or raises `WriteRefused` so the BMS gets an error
and nothing is stored. Operator actions go through `gateway.operator.actions`, as the CLI's do.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from gateway.errors import ChargerCallError, ChargerTimeout, ChargerUnavailable, OcppError, OperationError
from gateway.operator import actions as operations
from points.catalog import (
    AVAILABILITY_STATES,
    REGISTRATION_STATES,
    RESET_STATES,
    RESULT_TEXT_MAX,
    SC_KIND_STATES,
    SC_PURPOSE_STATES,
    SC_UNIT_STATES,
    WriteRefused,
)
from points.table import Point, Writer

if TYPE_CHECKING:
    from points.service import PointsService

# OCPP 1.6 schema limits (ChangeConfiguration value: CiString500, idTag: CiString20).
MAX_CONFIG_VALUE, MAX_ID_TAG = 500, 20
# Answers that mean the action happened (or will): anything else is a refusal.
DONE = {"Accepted", "Unlocked", "Scheduled", "RebootRequired"}


def writers(service: PointsService) -> dict[str, Writer]:
    """The `on_write` names of the catalog, bound to this gateway (through gateway.operator.actions,
    so a BMS write does exactly what the same CLI or API action does)."""
    gw = service.gateway

    async def run(action: Awaitable[dict[str, Any]]) -> str:
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

    async def change_configuration(point: Point, value: Any) -> str:
        text = str(value)
        if len(text) > MAX_CONFIG_VALUE:
            raise WriteRefused(f"longer than {MAX_CONFIG_VALUE} characters", "invalid-value")
        return await run(operations.change_configuration(gw, point.charger_id, str(point.subject), text,
                                                         source="bms"))

    async def reset(point: Point, value: Any) -> str | None:
        kind = RESET_STATES[int(value) - 1]
        if kind == "Idle":
            return None
        return await run(operations.reset(gw, point.charger_id, kind))

    async def clear_cache(point: Point, value: Any) -> str | None:
        return await run(operations.clear_cache(gw, point.charger_id)) if value else None

    async def unlock(point: Point, value: Any) -> str | None:
        if not value:
            return None
        return await run(operations.unlock_connector(gw, point.charger_id, point.connector_id or 0))

    async def remote_start(point: Point, value: Any) -> str:
        id_tag = str(value).strip()
        if not id_tag or len(id_tag) > MAX_ID_TAG:
            raise WriteRefused(f"an idTag of 1..{MAX_ID_TAG} characters is needed", "invalid-value")
        return await run(operations.remote_start_transaction(gw, point.charger_id, id_tag,
                                                             point.connector_id))

    async def remote_stop(point: Point, value: Any) -> str | None:
        if not value:
            return None
        return await run(operations.remote_stop_transaction(gw, point.charger_id,
                                                            connector_id=point.connector_id))

    async def availability(point: Point, value: Any) -> str:
        kind = AVAILABILITY_STATES[int(value) - 1]
        return await run(operations.change_availability(gw, point.charger_id, kind, point.connector_id or 0))

    async def registration(point: Point, value: Any) -> str:
        answer = REGISTRATION_STATES[int(value) - 1]
        await gw.update_device(point.charger_id, registration=answer)
        return answer

    async def smart_setting(point: Point, value: Any) -> str:
        if gw.charging is None:
            raise WriteRefused("smart charging is not running", "write-access-denied")
        field, states = _SMART_FIELDS[point.spec.key]
        new = states[int(value) - 1] if states else value
        try:
            await gw.charging.configure(point.charger_id, point.connector_id or 0, **{field: new})
        except OperationError as exc:
            raise WriteRefused(str(exc), "invalid-value") from None
        return "Stored"

    async def site_limit(point: Point, value: Any) -> str:
        """The EMS commands a site limit; the controller decides what is in force (and expires
        a BMS value that is not refreshed). The relinquish default of 10000 means "no limit"."""
        site = service.table.state.site
        if point.spec.key == "PowerLimit":
            site.power_limit_kw = float(value)
        else:
            site.current_limit_a = float(value)
        # One line per command that reaches smart charging (a BMS repeating itself is not one).
        gw.history.log("site", "SiteLimitCommand", f"{point.name} {float(value):g} from the BMS")
        if gw.charging is None:
            return "Stored"
        power = site.power_limit_kw if site.power_limit_kw < NO_LIMIT else None
        current = site.current_limit_a if site.current_limit_a < NO_LIMIT else None
        await gw.charging.set_site_limit(power, current, source="bms",
                                         priority=service.table.commanding_priority(point))
        return "Applied"

    return {
        "change_configuration": change_configuration, "reset": reset, "clear_cache": clear_cache,
        "unlock": unlock, "remote_start": remote_start, "remote_stop": remote_stop,
        "availability": availability, "registration": registration,
        "smart_setting": smart_setting, "site_power_limit": site_limit,
        "site_current_limit": site_limit,
    }


NO_LIMIT = 10000.0  # the site points' "no limit" value (their default and maximum)
# Smart-charging point key -> (SmartChargingSettings field, state texts for multi-state points).
_SMART_FIELDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "SC-Enable": ("enabled", ()), "SC-Unit": ("unit", SC_UNIT_STATES),
    "SC-Limit": ("limit", ()), "SC-Kind": ("kind", SC_KIND_STATES),
    "SC-Purpose": ("purpose", SC_PURPOSE_STATES), "SC-ProfileId": ("profile_id", ()),
    "SC-StackLevel": ("stack_level", ()),
}
