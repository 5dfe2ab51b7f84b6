"""Operator actions: one async function per central-system-initiated OCPP 1.6 call.

The CLI (through the admin API), the admin API itself and the BMS points all call these, so an
action means the same thing wherever it comes from. Each function:

- refuses at once with `ChargerUnavailable` when the charger is offline, not accepted, or lacks
  the feature profile (its `SupportedFeatureProfiles` key, when read; unknown means allowed);
- raises `ValueError` for a request the OCPP schema refuses (our bug or the operator's input),
  before anything is sent;
- sends through `Session.call`, which logs the request and confirmation in the general log and
  turns a timeout or CALLERROR into `ChargerTimeout` / `ChargerCallError`;
- returns a small JSON-ready dict: `action`, `charger_id`, `status` (the answer's status when it
  has one), `answer` (the charger's payload) and anything derived.

None of them runs inside a session handler: they wait on the charger's answer, which the
session's read loop delivers independently.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from gateway import configuration, protocol
from gateway.charging_control import capabilities_of
from gateway.errors import (
    ChargerCallError,
    ChargerTimeout,
    ChargerUnavailable,
    OcppError,
    OperationError,
)
from gateway.station import ConfigKey, Station
from gateway.summaries import shown_value
from gateway.timestamps import iso_z, parse_timestamp

if TYPE_CHECKING:
    from gateway.app import Gateway
    from gateway.session import Session

# OCPP 1.6 section 3.2 / 5: the feature profile each central-system call belongs to.
FEATURE_PROFILE = {
    "ChangeAvailability": "Core", "ChangeConfiguration": "Core", "ClearCache": "Core",
    "DataTransfer": "Core", "GetConfiguration": "Core", "RemoteStartTransaction": "Core",
    "RemoteStopTransaction": "Core", "Reset": "Core", "UnlockConnector": "Core",
    "GetDiagnostics": "FirmwareManagement", "UpdateFirmware": "FirmwareManagement",
    "GetLocalListVersion": "LocalAuthListManagement", "SendLocalList": "LocalAuthListManagement",
    "CancelReservation": "Reservation", "ReserveNow": "Reservation",
    "ClearChargingProfile": "SmartCharging", "GetCompositeSchedule": "SmartCharging",
    "SetChargingProfile": "SmartCharging",
    "TriggerMessage": "RemoteTrigger",
}
PROFILES = ("Core", "FirmwareManagement", "LocalAuthListManagement", "Reservation",
            "SmartCharging", "RemoteTrigger")
# Spellings seen in the field for a profile name: the AC wallbox manual (seeds/001, key
# SupportedFeatureProfiles) lists "LocalAuthicationListManagement".
_PROFILE_ALIASES = {
    "localauthicationlistmanagement": "LocalAuthListManagement",
    "localauthenticationlistmanagement": "LocalAuthListManagement",
    "localauthlistmanagement": "LocalAuthListManagement",
}


def supported_profiles(station: Station) -> set[str] | None:
    """The profiles a charger declares, or None while its configuration is not known."""
    raw = station.config_value("SupportedFeatureProfiles")
    if raw is None:
        return None
    known = {p.lower(): p for p in PROFILES} | _PROFILE_ALIASES
    # EVlink 8.1 writes "Firmware Management" with a space: compare without spaces.
    names = (item.strip() for item in raw.split(",") if item.strip())
    return {known.get(name.replace(" ", "").lower(), name) for name in names}


def _check_profile(station: Station, action: str) -> None:
    """Refuse an action the charger's manual (quirk) or its SupportedFeatureProfiles rules out."""
    caps = capabilities_of(station)
    if action in caps.unsupported_actions:
        raise ChargerUnavailable(
            f"{station.charger_id} does not support {action}: its manual says so "
            f"(quirk {caps.quirk_name})")
    profile = FEATURE_PROFILE[action]
    profiles = supported_profiles(station)
    if profiles is not None:
        profiles |= set(caps.feature_profiles or ())  # includes the quirk's unlisted profiles
    # Core is mandatory (spec 3.2); a charger that forgets to list it still does it.
    if profile != "Core" and profiles is not None and profile not in profiles:
        raise ChargerUnavailable(
            f"{station.charger_id} does not support {action}: feature profile {profile} is not in "
            f"its SupportedFeatureProfiles ({station.config_value('SupportedFeatureProfiles')})")


def _session(gw: Gateway, charger_id: str, action: str) -> Session:
    if gw.registry.get(charger_id) is None:
        raise ChargerUnavailable(f"{charger_id} is unknown: it never connected and is not added")
    session = gw.session_for(charger_id)
    _check_profile(session.station, action)
    return session


def _validate(action: str, payload: dict[str, Any]) -> None:
    try:
        protocol.validate(action, payload)
    except OcppError as exc:
        raise ValueError(f"invalid {action}: {exc.description}") from None


async def _call(gw: Gateway, charger_id: str, action: str, payload: dict[str, Any],
                **derived: Any) -> dict[str, Any]:
    """Validate, check the charger can take it, send, and shape the result."""
    _validate(action, payload)
    session = _session(gw, charger_id, action)
    answer = await session.call(action, payload)
    return result(action, charger_id, answer, **derived)


def result(action: str, charger_id: str, answer: dict[str, Any], **derived: Any) -> dict[str, Any]:
    return {"action": action, "charger_id": charger_id, "status": answer.get("status"),
            "answer": answer, **derived}


def ocpp_time(text: str | None) -> str | None:
    """An operator's date-time (ISO 8601, UTC when no zone is given) in OCPP form."""
    if text is None:
        return None
    ts = parse_timestamp(text)
    if ts is None:
        raise ValueError(f"not a date-time: {text!r} (use ISO 8601, e.g. 2026-11-21T10:00:00Z)")
    return iso_z(ts)


def _station(gw: Gateway, charger_id: str) -> Station:
    station = gw.registry.get(charger_id)
    if station is None:
        raise ChargerUnavailable(f"{charger_id} is unknown: it never connected and is not added")
    return station


# --- Core ----------------------------------------------------------------------------------
async def reset(gw: Gateway, charger_id: str, type: str = "Soft") -> dict[str, Any]:
    """Soft: end transactions and restart the application; Hard: reboot (Niagara 6)."""
    return await _call(gw, charger_id, "Reset", {"type": type})


async def clear_cache(gw: Gateway, charger_id: str) -> dict[str, Any]:
    return await _call(gw, charger_id, "ClearCache", {})


async def unlock_connector(gw: Gateway, charger_id: str, connector_id: int) -> dict[str, Any]:
    """Help a driver whose cable is stuck (Niagara 6.1); answers Unlocked/UnlockFailed/NotSupported."""
    return await _call(gw, charger_id, "UnlockConnector", {"connectorId": int(connector_id)})


async def remote_start_transaction(gw: Gateway, charger_id: str, id_tag: str,
                                   connector_id: int | None = None,
                                   charging_profile: dict[str, Any] | None = None) -> dict[str, Any]:
    """Start charging for `id_tag`; a profile (OCPP JSON, TxProfile) needs SmartCharging."""
    payload: dict[str, Any] = {"idTag": id_tag}
    if connector_id is not None:
        payload["connectorId"] = int(connector_id)
    if charging_profile is not None:
        payload["chargingProfile"] = charging_profile
        _validate("RemoteStartTransaction", payload)
        _check_profile(_station(gw, charger_id), "SetChargingProfile")
    return await _call(gw, charger_id, "RemoteStartTransaction", payload)


async def remote_stop_transaction(gw: Gateway, charger_id: str, transaction_id: int | None = None,
                                  connector_id: int | None = None) -> dict[str, Any]:
    """Stop by transaction id, or by connector: the active transaction is taken from the model."""
    if (transaction_id is None) == (connector_id is None):
        raise ValueError("give either transaction_id or connector_id")
    if transaction_id is None:
        station = _station(gw, charger_id)
        connector = station.connectors.get(int(connector_id))  # type: ignore[arg-type]
        if connector is None or connector.transaction_id is None:
            raise OperationError(f"{charger_id} has no active transaction on connector {connector_id}")
        transaction_id = connector.transaction_id
    return await _call(gw, charger_id, "RemoteStopTransaction",
                       {"transactionId": int(transaction_id)}, transaction_id=int(transaction_id))


async def change_availability(gw: Gateway, charger_id: str, type: str,
                              connector_id: int = 0) -> dict[str, Any]:
    """Operative/Inoperative for a connector, or the whole charger (connector 0, Niagara 6.2).

    The answer is kept on the connector: Accepted and Scheduled (takes effect after the running
    transaction, spec 5.2) both record the requested availability; Rejected leaves it.
    """
    out = await _call(gw, charger_id, "ChangeAvailability",
                      {"connectorId": int(connector_id), "type": type})
    station = _station(gw, charger_id)
    status = out["status"]
    targets = [int(connector_id)]
    if int(connector_id) == 0:
        targets += [c for c in station.connectors if c != 0]
    for cid in targets:
        changes: dict[str, Any] = {"availability_answer": status}
        if status in ("Accepted", "Scheduled"):
            changes["availability"] = type
        gw.registry.update_connector(station, cid, **changes)
    return out


async def get_configuration(gw: Gateway, charger_id: str,
                            keys: list[str] | None = None) -> dict[str, Any]:
    """Ask the charger for keys (all when none are named) and keep what it answers."""
    payload = {"key": list(keys)} if keys else {}
    out = await _call(gw, charger_id, "GetConfiguration", payload)
    found, unknown = configuration.answer_entries(out["answer"])
    await configuration.keep_entries(gw, _station(gw, charger_id), found, unknown, "operator",
                                     boot_read=False)
    out["keys"] = len(found)
    out["unknown_keys"] = sorted(unknown)
    return out


async def change_configuration(gw: Gateway, charger_id: str, key: str, value: str,
                               source: str = "api") -> dict[str, Any]:
    """Change a key; the kept value follows only an Accepted answer.

    RebootRequired keeps the new value as `pending_value` until the next read after a reboot.
    Every attempt, whatever its outcome, goes to the configuration change history.
    """
    payload = {"key": key, "value": str(value)}
    _validate("ChangeConfiguration", payload)
    station = _station(gw, charger_id)
    old = station.config.get(key)
    old_value = old.value if old is not None else None
    new_value = shown_value(key, str(value))  # what is kept and logged: never a password
    is_auth_key = key.lower() == "authorizationkey"
    if is_auth_key:
        # zappi (003 "AuthorizationKey") reconnects with a new key as soon as it accepts it, maybe
        # before its answer is handled here: let the new key in from now on.
        gw.expect_auth_key(charger_id, str(value))
    status = None
    try:
        out = await _call(gw, charger_id, "ChangeConfiguration", payload)
        status = out["status"]
    except ChargerCallError as exc:
        await gw.history.record_config_change(charger_id, key, old_value, new_value,
                                              f"CALLERROR {exc.code}", source)
        raise
    except ChargerTimeout:
        await gw.history.record_config_change(charger_id, key, old_value, new_value, "Timeout", source)
        raise
    finally:
        if is_auth_key:
            taken = status in ("Accepted", "RebootRequired")
            await gw.settle_auth_key(charger_id, str(value) if taken else None)
    if status in ("Accepted", "RebootRequired"):
        readonly = old.readonly if old is not None else False
        entry = (ConfigKey(key, new_value, readonly) if status == "Accepted"
                 else ConfigKey(key, old_value, readonly, pending_value=new_value))
        gw.registry.set_config(station, entry)
        await configuration.save_entries(gw, station, [entry])
    await gw.history.record_config_change(charger_id, key, old_value, new_value, status, source)
    out["old_value"] = old_value
    return out


async def data_transfer(gw: Gateway, charger_id: str, vendor_id: str, message_id: str | None = None,
                        data: str | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {"vendorId": vendor_id}
    if message_id is not None:
        payload["messageId"] = message_id
    if data is not None:
        payload["data"] = data
    return await _call(gw, charger_id, "DataTransfer", payload)


# --- Remote Trigger ------------------------------------------------------------------------
async def trigger_message(gw: Gateway, charger_id: str, requested_message: str,
                          connector_id: int | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {"requestedMessage": requested_message}
    if connector_id is not None:
        payload["connectorId"] = int(connector_id)
    return await _call(gw, charger_id, "TriggerMessage", payload)


# --- Firmware Management -------------------------------------------------------------------
async def get_diagnostics(gw: Gateway, charger_id: str, location: str, retries: int | None = None,
                          retry_interval: int | None = None, start_time: str | None = None,
                          stop_time: str | None = None) -> dict[str, Any]:
    """Ask for a diagnostics upload to `location`; the answer names the file (if any)."""
    payload: dict[str, Any] = {"location": location}
    for name, value in (("retries", retries), ("retryInterval", retry_interval)):
        if value is not None:
            payload[name] = int(value)
    for name, value in (("startTime", start_time), ("stopTime", stop_time)):
        if value is not None:
            payload[name] = ocpp_time(value)
    out = await _call(gw, charger_id, "GetDiagnostics", payload)
    out["file_name"] = out["answer"].get("fileName")
    return out


async def update_firmware(gw: Gateway, charger_id: str, location: str, retrieve_date: str,
                          retries: int | None = None, retry_interval: int | None = None) -> dict[str, Any]:
    """The answer is empty (spec 6.52); progress arrives as FirmwareStatusNotification."""
    payload: dict[str, Any] = {"location": location, "retrieveDate": ocpp_time(retrieve_date)}
    for name, value in (("retries", retries), ("retryInterval", retry_interval)):
        if value is not None:
            payload[name] = int(value)
    out = await _call(gw, charger_id, "UpdateFirmware", payload)
    out["status"] = "Sent"
    return out


# --- Local Auth List Management ------------------------------------------------------------
async def get_local_list_version(gw: Gateway, charger_id: str) -> dict[str, Any]:
    out = await _call(gw, charger_id, "GetLocalListVersion", {})
    out["list_version"] = out["answer"]["listVersion"]
    return out


def whitelist_entries(gw: Gateway) -> list[dict[str, Any]]:
    """The gateway's whitelist as OCPP AuthorizationData, sorted by idTag."""
    now = gw.clock()
    entries = []
    for tag in sorted(gw.tags.values(), key=lambda t: t.id_tag):
        if tag.listed != "whitelist":
            continue
        info: dict[str, Any] = {"status": "Accepted"}
        if tag.expiry is not None:
            info["expiryDate"] = iso_z(tag.expiry.timestamp())
            if tag.expiry.timestamp() <= now:
                info["status"] = "Expired"
        if tag.parent_id_tag:
            info["parentIdTag"] = tag.parent_id_tag
        entries.append({"idTag": tag.id_tag, "idTagInfo": info})
    return entries


def _chunks(items: list[Any], size: int | None) -> Iterable[list[Any]]:
    if not items or not size:
        yield items
        return
    for i in range(0, len(items), size):
        yield items[i:i + size]


async def send_local_list(gw: Gateway, charger_id: str, differential: bool = False) -> dict[str, Any]:
    """Send the whitelist in chunks of SendLocalListMaxLength, within LocalAuthListMaxLength.

    Full: the first chunk replaces the charger's list, the rest are Differential additions, each
    with the next listVersion (spec 5.15). Tags beyond LocalAuthListMaxLength are not sent and
    are reported in `not_sent`; a chunk answered other than Accepted stops the transfer.
    """
    station = _station(gw, charger_id)
    session = _session(gw, charger_id, "SendLocalList")
    chunk_size = configuration.int_value(station.config_value("SendLocalListMaxLength"))
    capacity = configuration.int_value(station.config_value("LocalAuthListMaxLength"))
    entries = whitelist_entries(gw)
    not_sent = [e["idTag"] for e in entries[capacity:]] if capacity is not None else []
    entries = entries[:capacity] if capacity is not None else entries
    version = (await session.call("GetLocalListVersion", {}))["listVersion"]
    stored = configuration.int_value((await gw.history.kv_get(configuration.kv_scope(charger_id)))
                                     .get("local_list_version"))
    version = max(version, stored or 0, 0)
    chunks: list[dict[str, Any]] = []
    status = "Accepted"
    pending = list(_chunks(entries, chunk_size))
    for index, chunk in enumerate(pending):
        update_type = "Differential" if differential or index > 0 else "Full"
        payload = {"listVersion": version + 1, "updateType": update_type,
                   "localAuthorizationList": chunk}
        _validate("SendLocalList", payload)
        status = (await session.call("SendLocalList", payload))["status"]
        chunks.append({"list_version": version + 1, "update_type": update_type,
                       "entries": len(chunk), "status": status})
        if status != "Accepted":
            not_sent = [e["idTag"] for c in pending[index:] for e in c] + not_sent
            break
        version += 1
        await gw.history.kv_put(configuration.kv_scope(charger_id), {"local_list_version": str(version)})
    if not_sent:
        gw.history.log(charger_id, "SendLocalList",
                       f"{len(not_sent)} tag(s) not sent: {', '.join(not_sent[:20])}", "warning")
    answer = {"status": status}
    return result("SendLocalList", charger_id, answer, list_version=version, chunks=chunks,
                  sent=sum(c["entries"] for c in chunks if c["status"] == "Accepted"),
                  not_sent=not_sent, chunk_size=chunk_size, capacity=capacity)


# --- Reservation ---------------------------------------------------------------------------
async def reserve_now(gw: Gateway, charger_id: str, connector_id: int, id_tag: str, expiry_date: str,
                      reservation_id: int, parent_id_tag: str | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {"connectorId": int(connector_id), "expiryDate": ocpp_time(expiry_date),
                               "idTag": id_tag, "reservationId": int(reservation_id)}
    if parent_id_tag:
        payload["parentIdTag"] = parent_id_tag
    return await _call(gw, charger_id, "ReserveNow", payload)


async def cancel_reservation(gw: Gateway, charger_id: str, reservation_id: int) -> dict[str, Any]:
    return await _call(gw, charger_id, "CancelReservation", {"reservationId": int(reservation_id)})


# --- Smart Charging (plain calls; the profile logic lives in gateway.smart_charging) -----------
async def get_composite_schedule(gw: Gateway, charger_id: str, connector_id: int, duration: int,
                                 charging_rate_unit: str | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {"connectorId": int(connector_id), "duration": int(duration)}
    if charging_rate_unit is not None:
        payload["chargingRateUnit"] = charging_rate_unit
    return await _call(gw, charger_id, "GetCompositeSchedule", payload)


async def set_charging_profile(gw: Gateway, charger_id: str, connector_id: int,
                               charging_profile: dict[str, Any]) -> dict[str, Any]:
    """Send one profile as given (OCPP JSON `csChargingProfiles`)."""
    return await _call(gw, charger_id, "SetChargingProfile",
                       {"connectorId": int(connector_id), "csChargingProfiles": charging_profile})


async def clear_charging_profile(gw: Gateway, charger_id: str, id: int | None = None,
                                 connector_id: int | None = None,
                                 charging_profile_purpose: str | None = None,
                                 stack_level: int | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {}
    for name, value in (("id", id), ("connectorId", connector_id), ("stackLevel", stack_level)):
        if value is not None:
            payload[name] = int(value)
    if charging_profile_purpose is not None:
        payload["chargingProfilePurpose"] = charging_profile_purpose
    return await _call(gw, charger_id, "ClearChargingProfile", payload)
