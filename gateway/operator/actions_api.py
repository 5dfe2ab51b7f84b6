"""Admin API routes for operator actions (added to the admin app by `gateway.main`).

    POST /api/chargers/{id}/actions/{Action}     JSON body -> the operation -> JSON result
    GET  /api/chargers/{id}/configuration         kept keys (?key=A&key=B to pick)
    GET  /api/chargers/{id}/configuration/changes every ChangeConfiguration attempt

`{Action}` is the OCPP action name (`Reset`, `RemoteStopTransaction`, ...), the body holds the
operation's keyword arguments in snake_case (`{"type": "Hard"}`). Errors: the charger cannot
take the call 409, no answer in time 504, CALLERROR 502 (with `code` and `description`), bad
input 400, unknown charger 404.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from gateway.chargers.configuration_calls import configuration_view
from gateway.errors import ChargerCallError, ChargerTimeout, ChargerUnavailable, OperationError
from gateway.operator import actions as ops
from gateway.operator.api import PARTS_KEY, _json_body

Operation = Callable[..., Awaitable[dict[str, Any]]]

# OCPP action name -> operation; the admin API, the CLI and the points share this table.
ACTIONS: dict[str, Operation] = {
    "Reset": ops.reset,
    "ClearCache": ops.clear_cache,
    "UnlockConnector": ops.unlock_connector,
    "RemoteStartTransaction": ops.remote_start_transaction,
    "RemoteStopTransaction": ops.remote_stop_transaction,
    "ChangeAvailability": ops.change_availability,
    "GetConfiguration": ops.get_configuration,
    "ChangeConfiguration": ops.change_configuration,
    "TriggerMessage": ops.trigger_message,
    "DataTransfer": ops.data_transfer,
    "GetDiagnostics": ops.get_diagnostics,
    "UpdateFirmware": ops.update_firmware,
    "SendLocalList": ops.send_local_list,
    "GetLocalListVersion": ops.get_local_list_version,
    "ReserveNow": ops.reserve_now,
    "CancelReservation": ops.cancel_reservation,
    "GetCompositeSchedule": ops.get_composite_schedule,
    "SetChargingProfile": ops.set_charging_profile,
    "ClearChargingProfile": ops.clear_charging_profile,
}


def arguments(operation: Operation, body: dict[str, Any], source: str) -> dict[str, Any]:
    """Check a JSON body against the operation's keyword arguments (a bad body is a 400)."""
    params = inspect.signature(operation).parameters
    accepted = [name for name in params if name not in ("parts", "charger_id", "source")]
    unknown = sorted(set(body) - set(accepted))
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(unknown)}; accepted: {', '.join(accepted)}")
    missing = [n for n in accepted if params[n].default is inspect.Parameter.empty and n not in body]
    if missing:
        raise ValueError(f"missing field(s) {', '.join(missing)}")
    kwargs = dict(body)
    if "source" in params:
        kwargs["source"] = source
    return kwargs


def _json_error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


async def run_action(request: web.Request) -> web.Response:
    parts = request.app[PARTS_KEY]
    charger_id, action = request.match_info["charger_id"], request.match_info["action"]
    operation = ACTIONS.get(action)
    if operation is None:
        return _json_error(404, f"unknown action {action}; known: {', '.join(ACTIONS)}")
    if parts.registry.get(charger_id) is None:
        return _json_error(404, f"unknown charger {charger_id}")
    body = await _json_body(request)
    source = str(body.pop("source", "api"))
    try:
        return web.json_response(await operation(parts.actions, charger_id, **arguments(operation, body, source)))
    except ChargerCallError as exc:
        return _json_error(502, str(exc), code=exc.code, description=exc.description)
    except ChargerTimeout as exc:
        return _json_error(504, str(exc))
    except (ChargerUnavailable, OperationError) as exc:
        return _json_error(409, str(exc))
    except (ValueError, TypeError) as exc:
        return _json_error(400, f"bad request: {exc}")


async def get_configuration(request: web.Request) -> web.Response:
    parts = request.app[PARTS_KEY]
    station = parts.registry.get(request.match_info["charger_id"])
    if station is None:
        return _json_error(404, "unknown charger")
    keys = request.query.getall("key", [])
    return web.json_response(await configuration_view(parts.actions.configuration, station, keys or None))


async def get_configuration_changes(request: web.Request) -> web.Response:
    parts = request.app[PARTS_KEY]
    return web.json_response(await parts.history.config_changes(request.match_info["charger_id"]))


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/chargers/{charger_id}/actions/{action}", run_action)
    app.router.add_get("/api/chargers/{charger_id}/configuration", get_configuration)
    app.router.add_get("/api/chargers/{charger_id}/configuration/changes", get_configuration_changes)
