"""Configuration keys: read after boot (batched when the charger limits keys), changed, kept.

The charger is the authority on what it supports (design rule), so every accepted boot starts a
read of its configuration that fills `Station.config` and is persisted. Chargers bend the read
in two ways (shared/notes/other-central-systems.md section 8, pain point 2): some return only
`GetConfigurationMaxKeys` keys for an unkeyed request, or never answer one (evcc#15869: Entratek,
4 keys), some store only the first key (lbbrhzn#1442). So the read asks for the limit first,
then tries a full read, and when that comes back short it asks for the standard OCPP 1.6 keys
(spec 9.1-9.4, Niagara Appendix 3) plus every key seen so far in batches of at most that limit,
and one key at a time for a batch that fails.

A complete read is kept with the boot identity it was made under (vendor, model, serial numbers,
firmware). A later boot with the same identity reads nothing: the kept keys are the charger's,
since every change the gateway makes is stored when the charger accepts it. A changed identity
(a firmware update may add, drop or reset keys), a change still pending a reboot, an incomplete
or missing read, or an operator's read (`config get --refresh`) reads again (docs/configuration.md).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING, Any, Protocol

from gateway.chargers.capabilities import ChargerCapabilities, capabilities_of
from gateway.chargers.standard_keys import REQUIRED_CORE_KEYS, STANDARD_KEYS, standard_key
from gateway.errors import ChargerCallError, ChargerTimeout, ChargerUnavailable
from gateway.model.station import ConfigKey, Station
from gateway.model.timestamps import iso_z
from gateway.ocpp.summaries import shown_value

if TYPE_CHECKING:
    from gateway.history.store import HistoryStore
    from gateway.model.station import Clock, Registry
    from gateway.ocpp.requests import ChargerRequests
    from gateway.ocpp.session import ChargerSession


class AuthKeys(Protocol):
    """The device database's view of a charger password being changed (`DeviceBook`)."""

    def expect_auth_key(self, charger_id: str, key: str) -> None:
        """Let `key` in as well while the change is under way."""

    async def settle_auth_key(self, charger_id: str, key: str | None) -> None:
        """The charger took `key` (store it), or None: it did not."""

log = logging.getLogger(__name__)

# A charger that answers NotImplemented/NotSupported to GetConfiguration will not answer a
# smaller request either; any other failure may be about the size of the request.
_UNSUPPORTED = frozenset({"NotImplemented", "NotSupported"})
_MAX_SILENT_SINGLES = 2  # consecutive one-key timeouts after which the read stops
_UNKNOWN_BATCH = 10  # keys per batch when no limit is known (the AC wallbox manual's default)


def kv_scope(charger_id: str) -> str:
    return f"configuration:{charger_id}"


IDENTITY_FIELDS = ("vendor", "model", "charge_point_serial", "charge_box_serial", "firmware_version")


def boot_identity(station: Station) -> str:
    """What a configuration read is kept under: a charger that says the same after a reboot has
    the same keys (BootNotification fields, OCPP 1.6 section 6.2)."""
    return json.dumps([getattr(station.boot, f) for f in IDENTITY_FIELDS])


def _entries(answer: dict[str, Any]) -> list[ConfigKey]:
    out = []
    for item in answer.get("configurationKey") or []:
        key = str(item["key"])
        out.append(ConfigKey(key, shown_value(key, item.get("value")), bool(item.get("readonly", False))))
    return out


def batch_size(reported: int | None, caps: ChargerCapabilities) -> int:
    """Keys per GetConfiguration in a batched read: the limit the charger reported in this read,
    else the one its stored keys or its quirk give (AC wallbox 001 3.2.1: 10), else 10 (a batch
    that fails is asked again one key at a time)."""
    if reported:
        return max(1, reported)
    if "GetConfigurationMaxKeys" not in caps.defaults_used:
        return caps.get_configuration_max_keys
    return _UNKNOWN_BATCH


def int_value(value: str | None) -> int | None:
    try:
        return int(str(value).strip()) if value is not None else None
    except ValueError:
        return None


class ChargerConfiguration:
    """Reads, keeps and persists each charger's configuration keys."""

    def __init__(self, registry: Registry, history: HistoryStore, clock: Clock,
                 requests: ChargerRequests, auth_keys: AuthKeys) -> None:
        self.registry = registry
        self.history = history
        self.clock = clock
        self.requests = requests
        self.auth_keys = auth_keys
        self._reads: dict[str, asyncio.Task[Any]] = {}
        self._kept: dict[str, str] = {}  # charger id -> identity its last complete read was made under

    # --- when it runs ----------------------------------------------------------------------
    async def on_boot(self, session: ChargerSession, status: str) -> None:
        """After an accepted boot, once the Boot answer is sent; a new boot restarts the read."""
        if status != "Accepted":
            return
        current = asyncio.current_task()
        previous = self._reads.get(session.charger_id)
        if previous is not None and previous is not current and not previous.done():
            previous.cancel()  # a charger that rebooted mid-read gets a fresh read
        if current is not None:
            self._reads[session.charger_id] = current
        try:
            if self._unchanged(session.station):
                self.history.log(session.charger_id, "ConfigurationRead",
                                 f"{len(session.station.config)} key(s) kept: not read again "
                                 "(boot identity unchanged, nothing pending)")
                return
            await self.read(session)
        except ChargerUnavailable as exc:
            log.info("%s: configuration read stopped: %s", session.charger_id, exc)
        finally:
            if self._reads.get(session.charger_id) is current:
                del self._reads[session.charger_id]

    def _unchanged(self, station: Station) -> bool:
        """Whether the kept keys are still the charger's: a complete read made under the identity
        it booted with now, and no change of ours waiting for this reboot to apply."""
        kept = self._kept.get(station.charger_id)
        return (kept is not None and kept == boot_identity(station) and bool(station.config)
                and all(e.pending_value is None for e in station.config.values()))

    async def load_stored(self) -> None:
        """At start: put the stored configuration of added chargers back into the model."""
        for station in self.registry.added_stations():
            meta = await self.history.kv_get(kv_scope(station.charger_id))
            if meta.get("identity"):
                self._kept[station.charger_id] = meta["identity"]
            current = set(json.loads(meta["keys"])) if meta.get("keys") else None
            self.registry.set_configs(station, [
                ConfigKey(row["key"], row.get("value"), bool(row.get("readonly")), row.get("pending_value"))
                for row in await self.history.load_config(station.charger_id)
                if current is None or row["key"] in current])
            if meta.get("unknown_keys"):
                station.unknown_config_keys = json.loads(meta["unknown_keys"])

    # --- the read --------------------------------------------------------------------------
    async def read(self, session: ChargerSession, after_boot: bool = True) -> dict[str, Any]:
        """Read every key the charger has; log one `ConfigurationRead` line; return a summary.

        After a boot a charger that cannot be read is logged and left; an operator's read
        (`after_boot=False`) gets the timeout or CALLERROR of the first request instead.
        """
        cid, station = session.charger_id, session.station
        found: dict[str, ConfigKey] = {}
        unknown: set[str] = set()
        try:
            first = await session.call("GetConfiguration", {"key": ["GetConfigurationMaxKeys"]})
        except ChargerCallError as exc:
            if exc.code in _UNSUPPORTED:
                self._give_up(cid, f"GetConfiguration answered {exc.code}")
                if not after_boot:
                    raise
                return {"keys": 0, "method": "none"}
            first = {}
        except ChargerTimeout:
            self._give_up(cid, "no answer to a one-key GetConfiguration")
            if not after_boot:
                raise
            return {"keys": 0, "method": "none"}
        found.update((e.key, e) for e in _entries(first))
        limit = next((e for e in found.values() if standard_key(e.key) == "GetConfigurationMaxKeys"), None)
        max_keys = int_value(limit.value) if limit is not None else None
        full: list[ConfigKey] | None
        try:
            full = _entries(await session.call("GetConfiguration", {}))
        except (ChargerCallError, ChargerTimeout) as exc:
            log.info("%s: unkeyed GetConfiguration failed (%s); reading in batches", cid, exc)
            full = None
        found.update((e.key, e) for e in full or [])
        method, stopped = "full", ""
        if self._looks_short(full, max_keys):
            method = "batched"
            have = {k.lower() for k in found}  # key names are case-insensitive (EVlink: HeartBeatInterval)
            wanted = dict.fromkeys(k for k in (*STANDARD_KEYS, *station.config) if k.lower() not in have)
            stopped = await self._read_in_batches(session, list(wanted), max_keys, found, unknown)
        identity = "" if stopped else boot_identity(station)  # an incomplete read is done again
        await keep_entries(self, station, found, unknown, method, boot_read=after_boot, identity=identity)
        if identity:
            self._kept[cid] = identity
        else:
            self._kept.pop(cid, None)
        text = f"{len(found)} key(s), {len(unknown)} unknown; {method} read"
        if max_keys:
            text += f"; GetConfigurationMaxKeys {max_keys}"
        if stopped:
            text += f"; incomplete: {stopped}"
        self.history.log(cid, "ConfigurationRead", text, "warning" if stopped else "info")
        return {"keys": len(found), "unknown_keys": sorted(unknown), "method": method,
                "max_keys": max_keys, "incomplete": stopped,
                "answer": {"configurationKey": [
                    {"key": e.key, "readonly": e.readonly, **({"value": e.value} if e.value is not None else {})}
                    for e in found.values()], "unknownKey": sorted(unknown)}}

    def _give_up(self, cid: str, why: str) -> None:
        self.history.log(cid, "ConfigurationRead", f"not read: {why}", "warning")

    @staticmethod
    def _looks_short(full: list[ConfigKey] | None, max_keys: int | None) -> bool:
        """A full read is suspect when it failed, hit the key limit, or lacks required keys."""
        if full is None:
            return True
        if max_keys is not None and len(full) == max_keys:
            return True
        keys = {e.key.lower() for e in full}
        return any(k.lower() not in keys for k in REQUIRED_CORE_KEYS)

    async def _read_in_batches(self, session: ChargerSession, wanted: list[str], max_keys: int | None,
                               found: dict[str, ConfigKey], unknown: set[str]) -> str:
        """Fill `found` and `unknown`; return why the read stopped early ("" when it did not)."""
        size = batch_size(max_keys, capabilities_of(session.station))
        failed: list[str] = []
        dropped: list[str] = []
        for i in range(0, len(wanted), size):
            batch = wanted[i:i + size]
            try:
                answer = await session.call("GetConfiguration", {"key": batch})
            except ChargerCallError as exc:
                if exc.code in _UNSUPPORTED:
                    return f"GetConfiguration answered {exc.code}"
                failed += batch
                continue
            except ChargerTimeout:
                failed += batch
                continue
            found.update((e.key, e) for e in _entries(answer))
            unknown.update(answer.get("unknownKey") or [])
            # A key neither answered nor called unknown was dropped (lbbrhzn#1442): ask alone.
            dropped += [k for k in batch if k not in found and k not in unknown]
        return await self._read_singly(session, failed, dropped, found, unknown)

    async def _read_singly(self, session: ChargerSession, failed: list[str], dropped: list[str],
                           found: dict[str, ConfigKey], unknown: set[str]) -> str:
        """One key per call: for keys of failed batches, and for keys a batch left out.

        A charger that leaves unknown keys out of its answers (instead of listing them as
        unknownKey) would otherwise cost a call per standard key in every reconnect storm: when
        the first dropped key asked alone also comes back empty, the other dropped keys are
        taken as absent and not asked.
        """
        silent, probing = 0, bool(dropped)
        for key in failed + dropped:
            if key in dropped and not probing and key not in found:
                continue
            try:
                answer = await session.call("GetConfiguration", {"key": [key]})
            except ChargerCallError:
                continue
            except ChargerTimeout:
                silent += 1
                if silent >= _MAX_SILENT_SINGLES:
                    return "charger stopped answering one-key reads"
                continue
            silent = 0
            entries = _entries(answer)
            found.update((e.key, e) for e in entries)
            unknown.update(answer.get("unknownKey") or [])
            if key in dropped and probing:
                probing = bool(entries)  # the batch really dropped it: keep asking one by one
        return ""


async def keep_entries(configuration: ChargerConfiguration, station: Station, found: dict[str, ConfigKey],
                       unknown: set[str], method: str | None, boot_read: bool, identity: str = "") -> None:
    """Put read keys into the model and the database.

    After a boot the read is the truth: a RebootRequired value still pending is dropped (and
    logged when the charger did not apply it). An explicit read keeps pending values.
    """
    for key, entry in found.items():
        old = station.config.get(key)
        if old is not None and old.pending_value is not None:
            if not boot_read:
                entry.pending_value = old.pending_value
            elif entry.value != old.pending_value:
                configuration.history.log(station.charger_id, "ConfigurationPending",
                                    f"{key}: pending value {old.pending_value!r} not applied "
                                    f"after reboot (value {entry.value!r})", "warning")
    configuration.registry.set_configs(station, found.values())  # one event for the whole read
    if method is not None:  # a whole read: its unknown keys replace the old list
        station.unknown_config_keys = sorted(unknown)
        # Keys the charger no longer has (a firmware update) leave the model: all keys a
        # complete unkeyed read left out, and keys a batched read was told are unknown.
        configuration.registry.drop_configs(station, [
            k for k in station.config if k not in found and (method == "full" or k in unknown)])
    else:
        station.unknown_config_keys = sorted((set(station.unknown_config_keys) | unknown) - set(found))
    await save_entries(configuration, station, list(found.values()), method, identity)


async def save_entries(configuration: ChargerConfiguration, station: Station, entries: list[ConfigKey],
                       method: str | None = None, identity: str = "") -> None:
    """Persist keys (and the unknown-key list, and when a whole read happened and under which
    boot identity; "" for an incomplete one)."""
    rows = [{"key": e.key, "value": e.value, "readonly": int(e.readonly),
             "pending_value": e.pending_value} for e in entries]
    await configuration.history.save_config(station.charger_id, rows)
    # The key list says which stored rows are current: rows of keys that left are not reloaded.
    meta = {"unknown_keys": json.dumps(station.unknown_config_keys),
            "keys": json.dumps(sorted(station.config))}
    if method is not None:
        meta |= {"read_at": iso_z(configuration.clock()), "read_method": method, "identity": identity}
    await configuration.history.kv_put(kv_scope(station.charger_id), meta)


def answer_entries(answer: dict[str, Any]) -> tuple[dict[str, ConfigKey], set[str]]:
    """A GetConfiguration answer as (keys by name, unknown keys)."""
    return {e.key: e for e in _entries(answer)}, set(answer.get("unknownKey") or [])
