"""Operator actions: one async function per central-system-initiated OCPP 1.6 call.

The CLI (through the admin API), the admin API itself and the BMS points all call these, so an
action means the same thing wherever it comes from. Each function:

- refuses at once with `ChargerUnavailable` when the charger is offline, not accepted, or lacks
  the feature profile (its `SupportedFeatureProfiles` key, when read; unknown means allowed);
- raises `ValueError` for a request the OCPP schema refuses (our bug or the operator's input),
  before anything is sent;
- sends through `ChargerSession.call` (via `ChargerRequests`), which logs the request and confirmation in the general log and
  turns a timeout or CALLERROR into `ChargerTimeout` / `ChargerCallError`;
- returns a small JSON-ready dict: `action`, `charger_id`, `status` (the answer's status when it
  has one), `answer` (the charger's payload) and anything derived.

None of them runs inside a session handler: they wait on the charger's answer, which the
session's read loop delivers independently.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from gateway.chargers import configuration, configuration_calls
from gateway.chargers.capabilities import capabilities_of
from gateway.chargers.configuration import ChargerConfiguration
from gateway.chargers.devices import DeviceBook
from gateway.errors import ChargerCallError, OperationError
from gateway.history.store import HistoryStore
from gateway.model.station import Clock, Registry
from gateway.model.timestamps import iso_z
from gateway.ocpp import requests as calls
from gateway.ocpp.requests import ChargerRequests


@dataclass(frozen=True)
class ActionParts:
    """What the operator actions use; built once by the composition root (`gateway.main`)."""

    requests: ChargerRequests
    registry: Registry
    history: HistoryStore
    clock: Clock
    configuration: ChargerConfiguration
    device_book: DeviceBook


async def get_configuration(parts: ActionParts, charger_id: str,
                            keys: list[str] | None = None) -> dict[str, Any]:
    """Read the keys named (all of them without keys) and keep the answer (`gateway.chargers`)."""
    return await configuration_calls.get_configuration(parts.configuration, charger_id, keys)


async def change_configuration(parts: ActionParts, charger_id: str, key: str, value: str,
                               source: str = "api") -> dict[str, Any]:
    """Change one key; the kept value follows only an Accepted answer (`gateway.chargers`)."""
    return await configuration_calls.change_configuration(parts.configuration, charger_id, key, value, source)


# --- Core ----------------------------------------------------------------------------------
async def reset(parts: ActionParts, charger_id: str, type: str = "Soft") -> dict[str, Any]:
    """Soft: end transactions and restart the application; Hard: reboot (Niagara 6)."""
    return await parts.requests.call(charger_id, "Reset", {"type": type})


async def clear_cache(parts: ActionParts, charger_id: str) -> dict[str, Any]:
    """Empty the charger's authorization cache (Niagara 6 "Clear Cache")."""
    return await parts.requests.call(charger_id, "ClearCache", {})


async def unlock_connector(parts: ActionParts, charger_id: str, connector_id: int) -> dict[str, Any]:
    """Help a driver whose cable is stuck (Niagara 6.1); answers Unlocked/UnlockFailed/NotSupported."""
    return await parts.requests.call(charger_id, "UnlockConnector", {"connectorId": int(connector_id)})


async def remote_start_transaction(parts: ActionParts, charger_id: str, id_tag: str,
                                   connector_id: int | None = None,
                                   charging_profile: dict[str, Any] | None = None) -> dict[str, Any]:
    """Start charging for `id_tag`; a profile (OCPP JSON, TxProfile) needs SmartCharging."""
    payload: dict[str, Any] = {"idTag": id_tag}
    if connector_id is not None:
        payload["connectorId"] = int(connector_id)
    if charging_profile is not None:
        if not isinstance(charging_profile, dict):
            raise ValueError("charging_profile must be a JSON object (OCPP chargingProfile)")
        # Spec 5.11: the profile of a remote start SHALL be a TxProfile.
        if charging_profile.get("chargingProfilePurpose") != "TxProfile":
            raise ValueError("the charging profile of a remote start must have purpose TxProfile")
        payload["chargingProfile"] = charging_profile
        calls.validate("RemoteStartTransaction", payload)
        calls.check_profile(parts.requests.station_of(charger_id), "SetChargingProfile")
    return await parts.requests.call(charger_id, "RemoteStartTransaction", payload)


async def remote_stop_transaction(parts: ActionParts, charger_id: str, transaction_id: int | None = None,
                                  connector_id: int | None = None) -> dict[str, Any]:
    """Stop by transaction id, or by connector: the active transaction is taken from the model."""
    if (transaction_id is None) == (connector_id is None):
        raise ValueError("give either transaction_id or connector_id")
    if transaction_id is None:
        station = parts.requests.station_of(charger_id)
        connector = station.connectors.get(int(connector_id))  # type: ignore[arg-type]
        if connector is None or connector.transaction_id is None:
            raise OperationError(f"{charger_id} has no active transaction on connector {connector_id}")
        transaction_id = connector.transaction_id
    return await parts.requests.call(charger_id, "RemoteStopTransaction",
                            {"transactionId": int(transaction_id)}, transaction_id=int(transaction_id))


async def change_availability(parts: ActionParts, charger_id: str, type: str,
                              connector_id: int = 0) -> dict[str, Any]:
    """Operative/Inoperative for a connector, or the whole charger (connector 0, Niagara 6.2).

    The answer is kept on the connector: Accepted and Scheduled (takes effect after the running
    transaction, spec 5.2) both record the requested availability; Rejected leaves it.
    """
    out = await parts.requests.call(charger_id, "ChangeAvailability",
                           {"connectorId": int(connector_id), "type": type})
    station = parts.requests.station_of(charger_id)
    status = out["status"]
    targets = [int(connector_id)]
    if int(connector_id) == 0:
        targets += [c for c in station.connectors if c != 0]
    for cid in targets:
        changes: dict[str, Any] = {"availability_answer": status}
        if status in ("Accepted", "Scheduled"):
            changes["availability"] = type
        parts.registry.update_connector(station, cid, **changes)
    return out


async def data_transfer(parts: ActionParts, charger_id: str, vendor_id: str, message_id: str | None = None,
                        data: str | None = None) -> dict[str, Any]:
    """A vendor-specific request; the answer's `data` is the vendor's reply."""
    payload: dict[str, Any] = {"vendorId": vendor_id}
    if message_id is not None:
        payload["messageId"] = message_id
    if data is not None:
        payload["data"] = data
    return await parts.requests.call(charger_id, "DataTransfer", payload)


# --- Remote Trigger ------------------------------------------------------------------------
async def trigger_message(parts: ActionParts, charger_id: str, requested_message: str,
                          connector_id: int | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {"requestedMessage": requested_message}
    if connector_id is not None:
        payload["connectorId"] = int(connector_id)
    return await parts.requests.call(charger_id, "TriggerMessage", payload)


# --- Firmware Management -------------------------------------------------------------------
async def get_diagnostics(parts: ActionParts, charger_id: str, location: str, retries: int | None = None,
                          retry_interval: int | None = None, start_time: str | None = None,
                          stop_time: str | None = None) -> dict[str, Any]:
    """Ask for a diagnostics upload to `location`; the answer names the file (if any)."""
    payload: dict[str, Any] = {"location": location}
    for name, value in (("retries", retries), ("retryInterval", retry_interval)):
        if value is not None:
            payload[name] = int(value)
    for name, value in (("startTime", start_time), ("stopTime", stop_time)):
        if value is not None:
            payload[name] = calls.ocpp_time(value)
    out = await parts.requests.call(charger_id, "GetDiagnostics", payload)
    out["file_name"] = out["answer"].get("fileName")
    return out


async def update_firmware(parts: ActionParts, charger_id: str, location: str, retrieve_date: str,
                          retries: int | None = None, retry_interval: int | None = None) -> dict[str, Any]:
    """The answer has no fields (spec 5.19); progress arrives as FirmwareStatusNotification."""
    payload: dict[str, Any] = {"location": location, "retrieveDate": calls.ocpp_time(retrieve_date)}
    for name, value in (("retries", retries), ("retryInterval", retry_interval)):
        if value is not None:
            payload[name] = int(value)
    out = await parts.requests.call(charger_id, "UpdateFirmware", payload)
    out["status"] = "Sent"
    return out


# --- Local Auth List Management ------------------------------------------------------------
async def get_local_list_version(parts: ActionParts, charger_id: str) -> dict[str, Any]:
    out = await parts.requests.call(charger_id, "GetLocalListVersion", {})
    out["list_version"] = out["answer"]["listVersion"]
    return out


def whitelist_entries(parts: ActionParts) -> list[dict[str, Any]]:
    """The gateway's whitelist as OCPP AuthorizationData, sorted by idTag."""
    now = parts.clock()
    entries = []
    for tag in sorted(parts.device_book.tags.values(), key=lambda t: t.id_tag):
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


async def send_local_list(parts: ActionParts, charger_id: str, differential: bool = False) -> dict[str, Any]:
    """Send the whitelist in chunks of SendLocalListMaxLength, within LocalAuthListMaxLength.

    Full: the first chunk replaces the charger's list, the rest are Differential additions, each
    with the next listVersion (spec 5.15). Tags beyond LocalAuthListMaxLength are not sent and
    are reported in `not_sent`; a chunk answered other than Accepted stops the transfer.
    """
    station = parts.requests.station_of(charger_id)
    session = parts.requests.session_for_action(charger_id, "SendLocalList")
    caps = capabilities_of(station)
    # The charger's key, else its quirk profile (AC wallbox: 5 per message); with neither, one
    # message (capabilities' default of 1 tag per message would mean a call per tag).
    chunk_size = (caps.send_local_list_max_length
                  if "SendLocalListMaxLength" not in caps.defaults_used or caps.quirk_name else None)
    capacity = caps.local_auth_list_max_length
    entries = whitelist_entries(parts)
    not_sent = [e["idTag"] for e in entries[capacity:]] if capacity is not None else []
    entries = entries[:capacity] if capacity is not None else entries
    stored = configuration.int_value((await parts.history.kv_get(configuration.kv_scope(charger_id)))
                                     .get("local_list_version"))
    try:
        version = (await session.call("GetLocalListVersion", {}))["listVersion"]
    except ChargerCallError:
        version = 0  # the version we sent last still orders the new list
    version = max(version, stored or 0, 0)
    chunks: list[dict[str, Any]] = []
    status = "Accepted"
    pending = list(_chunks(entries, chunk_size))
    for index, chunk in enumerate(pending):
        update_type = "Differential" if differential or index > 0 else "Full"
        payload = {"listVersion": version + 1, "updateType": update_type,
                   "localAuthorizationList": chunk}
        calls.validate("SendLocalList", payload)
        status = (await session.call("SendLocalList", payload))["status"]
        chunks.append({"list_version": version + 1, "update_type": update_type,
                       "entries": len(chunk), "status": status})
        if status != "Accepted":
            not_sent = [e["idTag"] for c in pending[index:] for e in c] + not_sent
            break
        version += 1
        await parts.history.kv_put(configuration.kv_scope(charger_id), {"local_list_version": str(version)})
    if not_sent:
        parts.history.log(charger_id, "SendLocalList",
                       f"{len(not_sent)} tag(s) not sent: {', '.join(not_sent[:20])}", "warning")
    answer = {"status": status}
    return calls.result("SendLocalList", charger_id, answer, list_version=version, chunks=chunks,
                        sent=sum(c["entries"] for c in chunks if c["status"] == "Accepted"),
                        not_sent=not_sent, chunk_size=chunk_size, capacity=capacity)


# --- Reservation ---------------------------------------------------------------------------
async def reserve_now(parts: ActionParts, charger_id: str, connector_id: int, id_tag: str, expiry_date: str,
                      reservation_id: int, parent_id_tag: str | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {"connectorId": int(connector_id), "expiryDate": calls.ocpp_time(expiry_date),
                               "idTag": id_tag, "reservationId": int(reservation_id)}
    if parent_id_tag:
        payload["parentIdTag"] = parent_id_tag
    return await parts.requests.call(charger_id, "ReserveNow", payload)


async def cancel_reservation(parts: ActionParts, charger_id: str, reservation_id: int) -> dict[str, Any]:
    return await parts.requests.call(charger_id, "CancelReservation", {"reservationId": int(reservation_id)})


# --- Smart Charging (plain calls; the profile logic lives in gateway.charging.profiles) -----------
async def get_composite_schedule(parts: ActionParts, charger_id: str, connector_id: int, duration: int,
                                 charging_rate_unit: str | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {"connectorId": int(connector_id), "duration": int(duration)}
    if charging_rate_unit is not None:
        payload["chargingRateUnit"] = charging_rate_unit
    return await parts.requests.call(charger_id, "GetCompositeSchedule", payload)


async def set_charging_profile(parts: ActionParts, charger_id: str, connector_id: int,
                               charging_profile: dict[str, Any]) -> dict[str, Any]:
    """Send one profile as given (OCPP JSON `csChargingProfiles`)."""
    return await parts.requests.call(charger_id, "SetChargingProfile",
                            {"connectorId": int(connector_id), "csChargingProfiles": charging_profile})


async def clear_charging_profile(parts: ActionParts, charger_id: str, id: int | None = None,
                                 connector_id: int | None = None,
                                 charging_profile_purpose: str | None = None,
                                 stack_level: int | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {}
    for name, value in (("id", id), ("connectorId", connector_id), ("stackLevel", stack_level)):
        if value is not None:
            payload[name] = int(value)
    if charging_profile_purpose is not None:
        payload["chargingProfilePurpose"] = charging_profile_purpose
    return await parts.requests.call(charger_id, "ClearChargingProfile", payload)
