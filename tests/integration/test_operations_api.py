"""The admin API for operator actions: `POST /api/chargers/{id}/actions/{Action}` and the
configuration routes, with the error codes scripts rely on (409, 502, 504, 400, 404)."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.main import Gateway
from gateway.ocpp.requests import FEATURE_PROFILE
from gateway.operator.actions_api import ACTIONS
from tests.conftest import GatewayRunner
from tests.support.charger import ConfigTable, accepted_charger, next_call, standard_config


async def post(runner: GatewayRunner, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    async with aiohttp.ClientSession(headers=runner.admin_headers) as http, \
            http.post(runner.admin_url + path, json=body or {}) as resp:
        return resp.status, await resp.json()


async def get(runner: GatewayRunner, path: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession(headers=runner.admin_headers) as http, \
            http.get(runner.admin_url + path) as resp:
        return resp.status, await resp.json()


async def test_action_route_runs_the_operation_and_returns_the_answer(gateway: Gateway, runner: GatewayRunner):
    async with accepted_charger(gateway, runner, Reset=lambda p: {"status": "Accepted"}) as cp:
        code, body = await post(runner, "/api/chargers/CP1/actions/Reset", {"type": "Hard"})
        assert await next_call(cp, "Reset") == {"type": "Hard"}
    assert code == 200
    assert body == {"action": "Reset", "charger_id": "CP1", "status": "Accepted",
                    "answer": {"status": "Accepted"}}


@pytest.mark.parametrize("path, body, expected", [
    ("/api/chargers/CP1/actions/Reset", {"kind": "Hard"}, "unknown field(s) kind"),
    ("/api/chargers/CP1/actions/Reset", {"type": "Warm"}, "invalid Reset"),
    ("/api/chargers/CP1/actions/UnlockConnector", {}, "missing field(s) connector_id"),
    ("/api/chargers/CP1/actions/RemoteStopTransaction", {}, "either transaction_id or connector_id"),
    ("/api/chargers/CP1/actions/RemoteStartTransaction", {"id_tag": "T", "charging_profile": "fast"},
     "must be a JSON object"),
    ("/api/chargers/CP1/actions/UnlockConnector", {"connector_id": "one"}, "invalid literal"),
    ("/api/chargers/CP1/actions/ReserveNow", {"connector_id": 1, "id_tag": "T", "expiry_date": "soon",
                                              "reservation_id": 1}, "not a date-time"),
])
async def test_bad_input_is_a_400_and_nothing_is_sent(gateway, runner, path, body, expected):
    async with accepted_charger(gateway, runner) as cp:
        code, answer = await post(runner, path, body)
        assert cp.received.qsize() == 1  # only the configuration read
    assert code == 400 and expected in answer["error"]


async def test_errors_map_to_http_codes(runner):
    gw = await runner.start(ocpp={"response_timeout_s": 0.3})
    async with accepted_charger(gw, runner, Reset=lambda p: None):
        code, body = await post(runner, "/api/chargers/CP1/actions/Reset")
        assert (code, body["error"]) == (504, "CP1 did not answer Reset within 0.3 s")
        code, body = await post(runner, "/api/chargers/CP1/actions/ClearCache")
        assert code == 502 and (body["code"], body["description"]) == ("NotImplemented", "ClearCache not supported")
        code, body = await post(runner, "/api/chargers/CP1/actions/RemoteStopTransaction", {"connector_id": 1})
        assert code == 409 and "no active transaction" in body["error"]
    code, body = await post(runner, "/api/chargers/CP1/actions/Reset")
    assert (code, body["error"]) == (409, "CP1 is offline")
    assert (await post(runner, "/api/chargers/NOPE/actions/Reset"))[0] == 404
    code, body = await post(runner, "/api/chargers/CP1/actions/Explode")
    assert code == 404 and "unknown action" in body["error"]


async def test_configuration_routes_show_kept_keys_and_changes(gateway, runner):
    table = ConfigTable(standard_config(HeartbeatInterval="300"))
    async with accepted_charger(gateway, runner, table=table, ChangeConfiguration=table.change("RebootRequired")):
        code, body = await post(runner, "/api/chargers/CP1/actions/ChangeConfiguration",
                                {"key": "HeartbeatInterval", "value": "60"})
        assert (code, body["status"], body["old_value"]) == (200, "RebootRequired", "300")
    code, view = await get(runner, "/api/chargers/CP1/configuration?key=HeartbeatInterval&key=Nope")
    assert code == 200 and view["read_method"] == "full" and view["read_at"]
    assert view["keys"] == [{"key": "HeartbeatInterval", "value": "300", "readonly": False, "pending_value": "60"}]
    assert view["missing"] == ["Nope"]
    code, changes = await get(runner, "/api/chargers/CP1/configuration/changes")
    assert [(c["key"], c["new_value"], c["result"], c["source"]) for c in changes] == [
        ("HeartbeatInterval", "60", "RebootRequired", "api")]


async def test_availability_answer_is_shown_in_the_charger_view(gateway, runner):
    async with accepted_charger(gateway, runner, ChangeAvailability=lambda p: {"status": "Scheduled"}) as cp:
        await cp.status(1, "Charging")
        code, body = await post(runner, "/api/chargers/CP1/actions/ChangeAvailability",
                                {"connector_id": 1, "type": "Inoperative"})
        assert (code, body["status"]) == (200, "Scheduled")
        _, view = await get(runner, "/api/chargers/CP1")
    [c1] = [c for c in view["connectors"] if c["connector_id"] == 1]
    assert (c1["availability"], c1["availability_answer"]) == ("Inoperative", "Scheduled")


def test_every_action_is_documented_with_its_cli_form():
    text = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text()
    assert set(ACTIONS) == set(FEATURE_PROFILE)
    assert [a for a in ACTIONS if f"| {a} | {FEATURE_PROFILE[a]}" not in text] == []
    commands = ["reset", "clear-cache", "unlock", "start", "stop", "availability", "config get",
                "config set", "config changes", "trigger", "data-transfer", "diagnostics", "firmware",
                "local-list send", "local-list version", "reserve", "cancel-reservation",
                "composite-schedule", "charging-profile set", "charging-profile clear"]
    assert [c for c in commands if f"ocpp-gateway {c} " not in text] == []


def test_documented_signatures_match_the_code():
    text = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text()
    for operation in ACTIONS.values():
        name = operation.__name__
        [line] = [ln for ln in text.splitlines() if ln.startswith(f"{name}(")]
        documented = [p.split("=")[0].strip() for p in line[len(name) + 1:-1].split(",")]
        assert documented == list(inspect.signature(operation).parameters), name
