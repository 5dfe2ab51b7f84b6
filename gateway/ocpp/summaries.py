"""One readable line per OCPP message for the general log (Niagara guide 5.2 "Message")."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

# Configuration keys that hold a password: never shown, logged or stored in clear text. The OCPP
# 1.6 security whitepaper calls AuthorizationKey write-only; zappi (003 "AuthorizationKey") and
# Smappee (000 section 7) use the same name for the Basic-auth password.
SECRET_KEYS = frozenset({"authorizationkey"})
HIDDEN = "(hidden)"


def shown_value(key: str, value: str | None) -> str | None:
    """A configuration value as it may be shown and kept: a password becomes `(hidden)`."""
    return HIDDEN if value and key.lower() in SECRET_KEYS else value


def _scalars(payload: dict[str, Any]) -> str:
    parts = []
    for key, value in payload.items():
        if isinstance(value, dict):
            inner = _scalars(value)
            if inner:
                parts.append(f"{key}: {{{inner}}}")
        elif isinstance(value, list):
            parts.append(f"{key}: {len(value)} item(s)")
        else:
            parts.append(f"{key}: {value}")
    return "; ".join(parts)


def _meter_values(p: dict[str, Any]) -> str:
    count, energy, found = 0, None, False  # one pass, no lists: a line for every MeterValues
    for mv in p.get("meterValue", []):
        for sv in mv.get("sampledValue", []):
            count += 1
            if sv.get("measurand", "Energy.Active.Import.Register") == "Energy.Active.Import.Register":
                energy, found = sv.get("value"), True
    text = f"Connector: {p.get('connectorId')}; {count} value(s)"
    if p.get("transactionId") is not None:
        text += f"; Transaction: {p['transactionId']}"
    if found:
        text += f"; Energy: {energy} Wh"
    return text


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _configuration(p: dict[str, Any]) -> str:
    """GetConfiguration answer: the keys with values, so a read is readable in the log."""
    keys = p.get("configurationKey") or []
    text = f"{len(keys)} key(s)"
    if keys:
        text += ": " + ", ".join(f"{k.get('key')}={shown_value(str(k.get('key')), k.get('value', ''))}"
                                 for k in keys)
    if p.get("unknownKey"):
        text += f"; unknown: {', '.join(p['unknownKey'])}"
    return _short(text)


_REQUESTS = {
    "ChangeConfiguration": lambda p: f"Key: {p.get('key')}; Value: {shown_value(p.get('key', ''), p.get('value'))}",
    "GetConfiguration": lambda p: _short("Keys: " + ", ".join(p["key"])) if p.get("key") else "all keys",
    "SendLocalList": lambda p: (
        f"List Version: {p.get('listVersion')}; Update Type: {p.get('updateType')}; "
        f"{len(p.get('localAuthorizationList') or [])} tag(s)"),
    "StatusNotification": lambda p: (
        f"Connector: {p.get('connectorId')}; Status: {p.get('status')}; Error Code: {p.get('errorCode')}"
        + (f"; Vendor Error: {p['vendorErrorCode']}" if p.get("vendorErrorCode") else "")
        + (f"; Info: {p['info']}" if p.get("info") else "")),
    "MeterValues": _meter_values,
    "StopTransaction": lambda p: (
        f"Transaction: {p.get('transactionId')}; Meter Stop: {p.get('meterStop')} Wh; "
        f"Reason: {p.get('reason', 'Local')}; Time: {p.get('timestamp')}"
        + (f"; {sum(len(m.get('sampledValue', [])) for m in p['transactionData'])} transaction value(s)"
           if p.get("transactionData") else "")),
    "BootNotification": lambda p: (
        f"CP Vendor: {p.get('chargePointVendor')}; CP Model: {p.get('chargePointModel')}; "
        f"CP Serial: {p.get('chargePointSerialNumber', '')}; Firmware: {p.get('firmwareVersion', '')}"),
}


def request_summary(action: str, payload: dict[str, Any]) -> str:
    fn = _REQUESTS.get(action)
    return fn(payload) if fn else _scalars(payload) or "(no fields)"


def confirmation_summary(action: str, payload: dict[str, Any]) -> str:
    if action == "GetConfiguration":
        return _configuration(payload)
    if not payload:
        return "(empty answer)"
    if "status" in payload and len(payload) <= 2:
        return str(payload["status"]) + (f"; {_scalars({k: v for k, v in payload.items() if k != 'status'})}"
                                           if len(payload) == 2 else "")
    if "idTagInfo" in payload:
        info = payload["idTagInfo"]
        text = f"idTag status: {info.get('status')}"
        if "transactionId" in payload:
            text = f"Transaction: {payload['transactionId']}; " + text
        return text
    return _scalars(payload)


def safe_summary(summary: Callable[[str, dict[str, Any]], str], action: str, payload: dict[str, Any]) -> str:
    """A summary that cannot fail: a payload it cannot read is logged as its JSON.

    Validation runs first, so this is a second guard (issue 12: a summary that crashed on an
    object where an array belongs closed the charger's socket).
    """
    try:
        return summary(action, payload)
    except Exception:  # the schema let through a shape the summary did not expect
        return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
