"""What a write to a point does: the one adapter between points and gateway actions.

Each writer takes (point, value) already checked by `PointSpec.coerce`, carries out the action
and returns the text the result point shows (None: nothing was done, e.g. a pulse point written
back to idle, and the last result stays), or raises `WriteRefused` so the BMS gets an error
and nothing is stored. Operator actions go straight through `gateway.session_for(id).call(...)`
until `gateway.operations` is merged; then these writers should call it instead (one place).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from gateway.errors import ChargerCallError, ChargerTimeout, ChargerUnavailable, OcppError
from gateway.station import ConfigKey
from points.catalog import (
    AVAILABILITY_STATES,
    REGISTRATION_STATES,
    RESET_STATES,
    SC_KIND_STATES,
    SC_PURPOSE_STATES,
    SC_UNIT_STATES,
    WriteRefused,
)
from points.table import Point, Writer

if TYPE_CHECKING:
    from points.service import PointsService

SMART_SCOPE = "points.smart"
# OCPP 1.6 schema limits (ChangeConfiguration value: CiString500, idTag: CiString20).
MAX_CONFIG_VALUE, MAX_ID_TAG = 500, 20
# Answers that mean the action happened (or will): anything else is a refusal.
DONE = {"Accepted", "Unlocked", "Scheduled", "RebootRequired"}


def writers(service: PointsService) -> dict[str, Writer]:
    """The `on_write` names of the catalog, bound to this gateway."""
    gw = service.gateway

    async def call(point: Point, action: str, payload: dict[str, Any]) -> str:
        """One OCPP call; offline, CALLERROR, timeout and refusals become WriteRefused."""
        try:
            answer = await gw.session_for(point.charger_id).call(action, payload)
        except ChargerUnavailable as exc:
            raise WriteRefused(str(exc), "charger-offline") from None
        except ChargerTimeout as exc:
            raise WriteRefused(str(exc), "rejected") from None
        except ChargerCallError as exc:
            raise WriteRefused(f"CALLERROR {exc.code}", "rejected") from None
        except OcppError as exc:  # our payload broke the schema: a bad value from the BMS
            raise WriteRefused(exc.description, "invalid-value") from None
        status = str(answer.get("status", "Accepted"))
        if status not in DONE:
            raise WriteRefused(f"charger answered {status}", "rejected")
        return status

    def station(point: Point) -> Any:
        found = gw.registry.get(point.charger_id)
        if found is None:
            raise WriteRefused("unknown charger", "charger-offline")
        return found

    async def change_configuration(point: Point, value: Any) -> str:
        key, text = str(point.subject), str(value)
        if len(text) > MAX_CONFIG_VALUE:
            raise WriteRefused(f"longer than {MAX_CONFIG_VALUE} characters", "invalid-value")
        st = station(point)
        old = st.config_value(key)
        try:
            status = await call(point, "ChangeConfiguration", {"key": key, "value": text})
        except WriteRefused as exc:
            await gw.history.record_config_change(point.charger_id, key, old, text, exc.reason, "bms")
            raise
        await gw.history.record_config_change(point.charger_id, key, old, text, status, "bms")
        entry = (ConfigKey(key, text, False) if status == "Accepted"
                 else ConfigKey(key, old, False, pending_value=text))  # RebootRequired
        gw.registry.set_config(st, entry)
        return status

    async def reset(point: Point, value: Any) -> str | None:
        kind = RESET_STATES[int(value) - 1]
        if kind == "Idle":
            return None
        return await call(point, "Reset", {"type": kind})

    async def clear_cache(point: Point, value: Any) -> str | None:
        return await call(point, "ClearCache", {}) if value else None

    async def unlock(point: Point, value: Any) -> str | None:
        return await call(point, "UnlockConnector", {"connectorId": point.connector_id}) if value else None

    async def remote_start(point: Point, value: Any) -> str:
        id_tag = str(value).strip()
        if not id_tag or len(id_tag) > MAX_ID_TAG:
            raise WriteRefused(f"an idTag of 1..{MAX_ID_TAG} characters is needed", "invalid-value")
        return await call(point, "RemoteStartTransaction",
                          {"connectorId": point.connector_id, "idTag": id_tag})

    async def remote_stop(point: Point, value: Any) -> str | None:
        if not value:
            return None
        connector = station(point).connectors.get(point.connector_id)
        if connector is None or connector.transaction_id is None:
            raise WriteRefused("no active transaction on this connector", "rejected")
        return await call(point, "RemoteStopTransaction", {"transactionId": connector.transaction_id})

    async def availability(point: Point, value: Any) -> str:
        kind = AVAILABILITY_STATES[int(value) - 1]
        status = await call(point, "ChangeAvailability", {"connectorId": point.connector_id, "type": kind})
        gw.registry.update_connector(station(point), point.connector_id or 0, availability=kind,
                                     availability_answer=status)
        return status

    async def registration(point: Point, value: Any) -> str:
        answer = REGISTRATION_STATES[int(value) - 1]
        await gw.update_device(point.charger_id, registration=answer)
        return answer

    async def smart_setting(point: Point, value: Any) -> str:
        settings = service.table.state.smart_for(point.charger_id, point.connector_id or 0)
        field, states = _SMART_FIELDS[point.spec.key]
        new = states[int(value) - 1] if states else value
        setattr(settings, field, int(new) if field in ("profile_id", "stack_level") else new)
        await gw.history.kv_put(SMART_SCOPE, {f"{point.charger_id}/{point.connector_id or 0}":
                                              json.dumps(settings.__dict__)})
        for hook in list(service.smart_hooks):
            await hook(point.charger_id, point.connector_id or 0, settings)
        service.table.notify([point])
        return "Stored"

    async def site_limit(point: Point, value: Any) -> str:
        site = service.table.state.site
        if point.spec.key == "PowerLimit":
            site.power_limit_kw = float(value)
        else:
            site.current_limit_a = float(value)
        for hook in list(service.site_hooks):
            await hook(site)
        return "Applied"

    return {
        "change_configuration": change_configuration, "reset": reset, "clear_cache": clear_cache,
        "unlock": unlock, "remote_start": remote_start, "remote_stop": remote_stop,
        "availability": availability, "registration": registration,
        "smart_setting": smart_setting, "site_power_limit": site_limit,
        "site_current_limit": site_limit,
    }


# Smart-charging point key -> (SmartSettings field, state texts for multi-state points).
_SMART_FIELDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "SC-Enable": ("enable", ()), "SC-Unit": ("unit", SC_UNIT_STATES),
    "SC-Limit": ("limit", ()), "SC-Kind": ("kind", SC_KIND_STATES),
    "SC-Purpose": ("purpose", SC_PURPOSE_STATES), "SC-ProfileId": ("profile_id", ()),
    "SC-StackLevel": ("stack_level", ()),
}
