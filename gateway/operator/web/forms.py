"""The forms (POST): each calls the gateway function the API and the CLI call, then redirects.

The outcome (the charger's answer, or the one-line reason it was refused) is shown once at the
top of the page the form came from. Bad input changes nothing.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from gateway.errors import ChargerCallError, GatewayError
from gateway.history import exports
from gateway.model.timestamps import absolute_time
from gateway.ocpp.server import valid_charger_id
from gateway.operator.web.view import WebView
from gateway.settings import REGISTRATION_STATUSES

if TYPE_CHECKING:
    from gateway.operator.web.auth import WebSession

BY = "admin (web)"
INT_FIELDS = ("connector_id", "transaction_id", "reservation_id", "duration", "retries", "retry_interval",
              "id", "stack_level")


def _back(form: Any) -> str:
    from gateway.operator.web.auth import safe_next as _safe_next
    return _safe_next(str(form.get("back", "")))


def _text(form: Any, name: str) -> str:
    return str(form.get(name, "")).strip()


def _number(form: Any, name: str) -> float | None:
    text = _text(form, name)
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{name.replace('_', ' ')} must be a number, not {text!r}") from None


def _registration(form: Any) -> str:
    value = _text(form, "registration") or "Accepted"
    if value not in REGISTRATION_STATUSES:
        raise ValueError(f"registration must be one of {', '.join(REGISTRATION_STATUSES)}, not {value!r}")
    return value


def action_arguments(action: str, form: Any) -> dict[str, Any]:
    """The operation's keyword arguments from the action form: filled fields, plus JSON extras."""
    extra = _text(form, "json")
    try:
        body: dict[str, Any] = json.loads(extra) if extra else {}
    except ValueError:
        raise ValueError("more arguments must be a JSON object, e.g. {\"type\": \"Hard\"}") from None
    if not isinstance(body, dict):
        raise ValueError("more arguments must be a JSON object")
    for name in ("connector_id", "id_tag", "type", "key", "value", "requested_message"):
        text = _text(form, name)
        if text and name not in body:
            body[name] = int(text) if name in INT_FIELDS and text.lstrip("-").isdigit() else text
    return body


def done(session: WebSession, form: Any, kind: str, text: str) -> web.Response:
    session.flash.append((kind, text))
    raise web.HTTPSeeOther(_back(form))


def handler(work: Any) -> Any:
    """Run `work(form, request)` -> message; a refusal becomes a one-line error on the page."""
    async def run(request: web.Request, session: WebSession) -> web.Response:
        form = await request.post()  # read (and cached) by the CSRF check already
        try:
            message = await work(form, request)
        except ChargerCallError as exc:
            return done(session, form, "error", f"the charger answered CALLERROR {exc.code}: {exc.description}")
        except (GatewayError, ValueError, TypeError, KeyError) as exc:
            return done(session, form, "error", str(exc).strip("'\""))
        return done(session, form, "ok", message)
    return run


class Forms:
    """The form handlers of one gateway; each returns the message shown on the page."""

    def __init__(self, ui: WebView) -> None:
        self.parts = ui.parts

    async def change_setting(self, form: Any, request: web.Request) -> str:
        row = await self.parts.live.change(_text(form, "key"), _text(form, "value"), BY)
        return f"{row['key']} is now {row['value']}"

    async def add_device(self, form: Any, request: web.Request) -> str:
        charger_id = _text(form, "charger_id")
        if not valid_charger_id(charger_id):
            raise ValueError(f"{charger_id!r} is not a charger id")
        device = await self.parts.device_book.add_device(charger_id, _registration(form))
        return f"added {charger_id} in slot {device['slot']}"

    async def remove_device(self, form: Any, request: web.Request) -> str:
        charger_id = _text(form, "charger_id")
        if not await self.parts.device_book.remove_device(charger_id):
            raise ValueError(f"{charger_id} is not in the device database")
        return f"removed {charger_id} (its slot stays reserved for it)"

    async def forget_guest(self, form: Any, request: web.Request) -> str:
        charger_id = _text(form, "charger_id")
        if not await self.parts.connections.forget_guest(charger_id, added=charger_id in self.parts.device_book.devices):
            raise ValueError(f"{charger_id} is not a guest any more")
        return f"forgot {charger_id}: it is off the discovery list until it connects again"

    async def set_registration(self, form: Any, request: web.Request) -> str:
        charger_id = request.match_info["charger_id"]
        await self.parts.device_book.update_device(charger_id, registration=_registration(form))
        return f"{charger_id}: registration response {_text(form, 'registration')}"

    async def run_action(self, form: Any, request: web.Request) -> str:
        from gateway.operator.actions_api import ACTIONS, arguments
        charger_id, action = request.match_info["charger_id"], _text(form, "action")
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}")
        operation = ACTIONS[action]
        result = await operation(self.parts.actions, charger_id, **arguments(operation, action_arguments(action, form), "web"))
        answer = json.dumps(result.get("answer"), default=str)
        return f"{action}: {result.get('status') or 'answered'}; the charger answered {answer}"

    async def change_config(self, form: Any, request: web.Request) -> str:
        from gateway.operator import actions as ops
        charger_id = request.match_info["charger_id"]
        result = await ops.change_configuration(self.parts.actions, charger_id, _text(form, "key"), str(form.get("value", "")),
                                                source="web")
        return f"ChangeConfiguration {_text(form, 'key')}: {result.get('status')}"

    async def smart(self, form: Any, request: web.Request) -> str:
        if self.parts.charging is None:
            raise ValueError("smart charging is not installed")
        changes: dict[str, Any] = {"enabled": form.get("enabled") == "on"}
        for name in ("unit", "kind", "purpose"):
            if _text(form, name):
                changes[name] = _text(form, name)
        for name, kind in (("limit", float), ("profile_id", int), ("stack_level", int)):
            value = _number(form, name)
            if value is not None:
                changes[name] = kind(value)
        connector = int(_number(form, "connector_id") or 0)
        await self.parts.charging.configure(request.match_info["charger_id"], connector, **changes)
        return f"smart-charging properties of {'the charge point' if connector == 0 else f'connector {connector}'} saved"

    async def put_tag(self, form: Any, request: web.Request) -> str:
        id_tag, listed = _text(form, "id_tag"), _text(form, "list") or "whitelist"
        if not 0 < len(id_tag) <= 20 or len(_text(form, "parent_id_tag")) > 20:
            raise ValueError("an id tag is 1 to 20 characters (OCPP 1.6 IdToken)")
        if listed not in ("whitelist", "blacklist"):
            raise ValueError("list must be whitelist or blacklist")
        expiry = absolute_time(_text(form, "expiry"), "expiry")
        await self.parts.history.put_tag(id_tag, listed, expiry, _text(form, "parent_id_tag"), _text(form, "note"))
        await self.parts.device_book.reload_tags()
        self.parts.history.log("admin", "TagChanged", f"{id_tag} on the {listed} by {BY}")
        return f"{id_tag} is on the {listed}"

    async def remove_tag(self, form: Any, request: web.Request) -> str:
        if not await self.parts.history.remove_tag(_text(form, "id_tag")):
            raise ValueError(f"unknown tag {_text(form, 'id_tag')}")
        await self.parts.device_book.reload_tags()
        self.parts.history.log("admin", "TagChanged", f"{_text(form, 'id_tag')} removed by {BY}")
        return f"removed {_text(form, 'id_tag')}"

    async def tenant(self, form: Any, request: web.Request) -> str:
        row = await exports.set_tenant(self.parts.history, _text(form, "id_tag"), _text(form, "tenant"),
                                       _text(form, "cost_centre"))
        return f"{row['id_tag']}: {row.get('tenant') or 'no tenant'}"

    async def site_limit(self, form: Any, request: web.Request) -> str:
        if self.parts.charging is None:
            raise ValueError("smart charging is not installed")
        power, current = (None, None) if form.get("clear") else (_number(form, "power_kw"), _number(form, "current_a"))
        await self.parts.charging.set_site_limit(power, current, "manual")
        return "site limit removed" if (power, current) == (None, None) else \
            f"site limit set: {power if power is not None else '-'} kW, {current if current is not None else '-'} A"


def routes(ui: WebView) -> list[tuple[str, Any]]:
    forms = Forms(ui)
    return [(path, handler(work)) for path, work in (
        ("/settings", forms.change_setting), ("/devices/add", forms.add_device), ("/devices/remove", forms.remove_device),
        ("/devices/forget", forms.forget_guest),
        ("/devices/{charger_id}/registration", forms.set_registration), ("/devices/{charger_id}/action", forms.run_action),
        ("/devices/{charger_id}/config", forms.change_config), ("/devices/{charger_id}/smart", forms.smart),
        ("/tags", forms.put_tag), ("/tags/remove", forms.remove_tag), ("/tenants", forms.tenant), ("/site", forms.site_limit))]
