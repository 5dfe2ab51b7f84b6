"""What an operator does with a charger's configuration: look at the kept keys, read them, change one.

The read after boot and the keeping of keys live in `gateway.chargers.configuration`; these are the
operator's calls on top of it (re-exported by `gateway.operator.actions`). Every change attempt,
whatever its outcome, goes to the configuration change history.
"""

from __future__ import annotations

from typing import Any

from gateway.chargers.capabilities import capabilities_of
from gateway.chargers.configuration import (
    ChargerConfiguration,
    answer_entries,
    keep_entries,
    kv_scope,
    save_entries,
)
from gateway.errors import ChargerCallError, ChargerTimeout
from gateway.model.station import ConfigKey, Station
from gateway.ocpp import requests as calls
from gateway.ocpp.summaries import shown_value


async def configuration_view(configuration: ChargerConfiguration, station: Station,
                             keys: list[str] | None = None) -> dict[str, Any]:
    """The kept configuration as the operator sees it (model plus when it was read)."""
    meta = await configuration.history.kv_get(kv_scope(station.charger_id))
    entries = sorted(station.config.values(), key=lambda e: e.key)
    if keys:
        entries = [e for e in entries if e.key in keys]
    return {
        "charger_id": station.charger_id,
        "read_at": meta.get("read_at"), "read_method": meta.get("read_method"),
        "keys": [{"key": e.key, "value": e.value, "readonly": e.readonly,
                  "pending_value": e.pending_value} for e in entries],
        "unknown_keys": [k for k in station.unknown_config_keys if not keys or k in keys],
        "missing": [k for k in keys or [] if k not in station.config
                    and k not in station.unknown_config_keys],
        # What the charger's quirk file recommends setting, with the value it has now (e.g. EVlink
        # 6.3.3.2 note 1: truncateBootNotificationsSerialNumbers=true); an operator sends it.
        "recommended": [{"key": k, "value": v, "current": station.config_value(k)}
                        for k, v in capabilities_of(station).recommended_configuration.items()
                        if not keys or k in keys],
    }


async def get_configuration(configuration: ChargerConfiguration, charger_id: str,
                            keys: list[str] | None = None) -> dict[str, Any]:
    """Ask the charger for the keys named and keep the answer.

    Without keys this is the whole read the gateway does after boot (limit first, batches when
    the charger limits them), so a charger answering 4 keys at a time is still read completely;
    `answer` is then assembled from every call.
    """
    if isinstance(keys, str):
        raise ValueError("keys must be a list of key names")
    if not keys:
        session = configuration.requests.session_for_action(charger_id, "GetConfiguration")
        summary = await configuration.read(session, after_boot=False)
        answer = summary.pop("answer")
        return calls.result("GetConfiguration", charger_id, answer, **summary)
    out = await configuration.requests.call(charger_id, "GetConfiguration", {"key": list(keys)})
    found, unknown = answer_entries(out["answer"])
    await keep_entries(configuration, configuration.requests.station_of(charger_id), found, unknown, None, boot_read=False)
    out["keys"] = len(found)
    out["unknown_keys"] = sorted(unknown)
    return out


async def change_configuration(configuration: ChargerConfiguration, charger_id: str, key: str, value: str,
                               source: str = "api") -> dict[str, Any]:
    """Change a key; the kept value follows only an Accepted answer.

    RebootRequired keeps the new value as `pending_value` until the next read after a reboot.
    Every attempt, whatever its outcome, goes to the configuration change history.
    """
    payload = {"key": key, "value": str(value)}
    calls.validate("ChangeConfiguration", payload)
    station = configuration.requests.station_of(charger_id)
    old = station.config.get(key)
    old_value = old.value if old is not None else None
    new_value = shown_value(key, str(value))  # what is kept and logged: never a password
    is_auth_key = key.lower() == "authorizationkey"
    if is_auth_key:
        # zappi (003 "AuthorizationKey") reconnects with a new key as soon as it accepts it, maybe
        # before its answer is handled here: let the new key in from now on.
        configuration.auth_keys.expect_auth_key(charger_id, str(value))
    status = None
    try:
        out = await configuration.requests.call(charger_id, "ChangeConfiguration", payload)
        status = out["status"]
    except ChargerCallError as exc:
        await configuration.history.record_config_change(charger_id, key, old_value, new_value,
                                              f"CALLERROR {exc.code}", source)
        raise
    except ChargerTimeout:
        await configuration.history.record_config_change(charger_id, key, old_value, new_value, "Timeout", source)
        raise
    finally:
        if is_auth_key:
            taken = status in ("Accepted", "RebootRequired")
            await configuration.auth_keys.settle_auth_key(charger_id, str(value) if taken else None)
    if status in ("Accepted", "RebootRequired"):
        readonly = old.readonly if old is not None else False
        entry = (ConfigKey(key, new_value, readonly) if status == "Accepted"
                 else ConfigKey(key, old_value, readonly, pending_value=new_value))
        configuration.registry.set_config(station, entry)
        await save_entries(configuration, station, [entry])
    await configuration.history.record_config_change(charger_id, key, old_value, new_value, status, source)
    out["old_value"] = old_value
    return out
