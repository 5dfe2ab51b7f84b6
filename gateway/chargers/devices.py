"""The device database as the running gateway keeps it: slots, registration answers, tags, keys.

`DeviceBook` caches the device and tag tables of the store and holds the policies that read them:
which registration answer a charger gets (its device row, else the guest answer), how an idTag is
authorized, which passwords a charger may log in with, which quirk file an operator assigned.
The composition root (`gateway.main`) builds it and hands it to the parts that ask.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from gateway.chargers.capabilities import capabilities_of
from gateway.chargers.quirks import bundled_quirks
from gateway.errors import OperationError
from gateway.history.store import HistoryStore
from gateway.model import authorize
from gateway.model.station import BootInfo, Registry, Station
from gateway.settings import Settings

log = logging.getLogger(__name__)
QUIRK_SCOPE = "quirk"  # kv scope: charger id -> quirk name an operator assigned


class DeviceBook:
    """The device database and tag list in memory, and the answers that depend on them."""

    def __init__(self, settings: Settings, registry: Registry, history: HistoryStore,
                 ask_for_new_boot: Callable[[str], None]) -> None:
        self.settings = settings
        self.registry = registry
        self.history = history
        self.devices: dict[str, dict[str, Any]] = {}
        self.tags: dict[str, authorize.TagEntry] = {}
        self._new_auth_keys: dict[str, str] = {}  # charger id -> a key being changed right now
        self.site_password_key: str | None = None  # stored form of ocpp.default_password (gateway.main)
        # A connected charger whose answer changed is asked to boot again (gateway.ocpp.connections).
        self._ask_for_new_boot = ask_for_new_boot

    async def load(self) -> None:
        """At start: devices, assigned quirks and tags from the store into the model."""
        await self.reload_devices()
        await self.reload_quirks()
        await self.reload_tags()

    # --- device database and tags --------------------------------------------------------
    async def reload_devices(self) -> None:
        self.devices = {d["charger_id"]: d for d in await self.history.devices()}
        for station in self.registry.stations.values():
            if station.charger_id not in self.devices and station.slot is not None:
                self.registry.update_station(station, slot=None,
                                             registration=self.settings.registration.guest_response)
        for charger_id, device in self.devices.items():
            station = self.registry.ensure(charger_id)
            boot = station.boot
            if not boot.vendor and device.get("vendor"):
                boot = BootInfo(**{k: device.get(k) or "" for k in BootInfo.__dataclass_fields__})
            self.registry.update_station(station, slot=device["slot"],
                                         registration=device["registration"], boot=boot)

    async def reload_quirks(self) -> None:
        for charger_id, name in (await self.history.kv_get(QUIRK_SCOPE)).items():
            if name:
                self.registry.update_station(self.registry.ensure(charger_id), quirk_name=name)

    async def assign_quirk(self, charger_id: str, name: str | None) -> None:
        """Use the quirk file `name` for this charger (None: match it on the BootNotification).

        For chargers no boot identifies, such as the AC wallbox (manual 001 names no vendor/model).
        """
        if name and bundled_quirks().by_name(name) is None:
            known = ", ".join(sorted(q.name for q in bundled_quirks()))
            raise OperationError(f"no quirk named {name!r}; known: {known}")
        await self.history.kv_put(QUIRK_SCOPE, {charger_id: name or ""})
        self.registry.update_station(self.registry.ensure(charger_id), quirk_name=name or None)
        self.history.log(charger_id, "DeviceChanged", f"quirk: {name or 'matched on the boot'}")

    async def reload_tags(self) -> None:
        tags = {}
        for row in await self.history.tags():
            expiry = None
            if row.get("expiry"):
                with contextlib.suppress(ValueError):
                    expiry = datetime.fromisoformat(row["expiry"].replace("Z", "+00:00"))
                    if expiry.tzinfo is None:  # stored as a date alone before it was checked: UTC
                        expiry = expiry.replace(tzinfo=UTC)
            tags[row["id_tag"]] = authorize.TagEntry(row["id_tag"], row["listed"], expiry,
                                                     row.get("parent_id_tag") or "", row.get("note") or "")
        self.tags = tags

    async def add_device(self, charger_id: str, registration: str = "Accepted",
                         auth_key: str | None = None) -> dict[str, Any]:
        """Add a charger to the device database: it gets the next slot, which never changes."""
        station = self.registry.get(charger_id)
        boot = {k: getattr(station.boot, k) for k in BootInfo.__dataclass_fields__} if station else {}
        device = await self.history.add_device(charger_id, registration, boot)
        if auth_key is not None:
            await self.history.set_auth_key(charger_id, auth_key or None)
        await self.reload_devices()
        self.history.log(charger_id, "DeviceAdded", f"slot {device['slot']}; registration {registration}")
        self._ask_for_new_boot(charger_id)
        return self.devices[charger_id]

    async def update_device(self, charger_id: str, **fields: Any) -> dict[str, Any]:
        quirk = fields.pop("quirk", False)
        if "auth_key" in fields:
            await self.history.set_auth_key(charger_id, fields.pop("auth_key") or None)
        if await self.history.update_device(charger_id, **fields) is None:
            raise OperationError(f"{charger_id} is not in the device database")
        await self.reload_devices()
        if fields:
            self.history.log(charger_id, "DeviceChanged", "; ".join(f"{k}: {v}" for k, v in fields.items()))
        if quirk is not False:
            await self.assign_quirk(charger_id, quirk or None)
        self._ask_for_new_boot(charger_id)
        return self.devices[charger_id]

    async def remove_device(self, charger_id: str) -> bool:
        removed = await self.history.remove_device(charger_id)
        await self.reload_devices()
        if removed:
            self.history.log(charger_id, "DeviceRemoved", "removed from the device database")
            self._ask_for_new_boot(charger_id)  # it is a guest from its next boot (OCPP 1.6 4.2)
        return removed

    def auth_keys(self, charger_id: str) -> tuple[list[str], str | None]:
        """The stored key of a charger (empty: none) and a new key being set right now (or None)."""
        device = self.devices.get(charger_id)
        stored = device.get("auth_key_hash") if device else None
        return ([stored] if stored else []), self._new_auth_keys.get(charger_id)

    def expect_auth_key(self, charger_id: str, key: str) -> None:
        """Let `key` in as well while ChangeConfiguration(AuthorizationKey) is under way (kept in
        memory only for that call, in both its text and whitepaper hex forms)."""
        self._new_auth_keys[charger_id] = key

    async def renew_auth_key(self, charger_id: str, key: str) -> None:
        """Store a key that was just used again, in the current form (scrypt, text and hex)."""
        await self.history.set_auth_key(charger_id, key)
        await self.reload_devices()
        self.history.log(charger_id, "AuthorizationKey", "stored key renewed (scrypt)")

    async def settle_auth_key(self, charger_id: str, key: str | None) -> None:
        """The charger took the new `key` (stored as its password), or None: it did not."""
        try:
            if key is None:
                return
            if charger_id not in self.devices:
                self.history.log(charger_id, "AuthorizationKey",
                                 "new key not stored: the charger is not in the device database", "warning")
                return
            await self.history.set_auth_key(charger_id, key)
            await self.reload_devices()
            self.history.log(charger_id, "AuthorizationKey", "new authorization key stored")
        finally:
            self._new_auth_keys.pop(charger_id, None)

    async def remember_boot(self, station: Station) -> None:
        """Keep what an added charger says it is (and the quirk that matched it) in the device
        database, so its adaptations apply from the first message after a gateway restart, even
        when it reconnects without booting. Written only when it changed."""
        device = self.devices.get(station.charger_id)
        if device is None:
            return
        boot = {k: getattr(station.boot, k) or None for k in BootInfo.__dataclass_fields__}
        boot["quirk_matched"] = capabilities_of(station).quirk_name
        if all(device.get(k) == v for k, v in boot.items()):
            return
        await self.history.save_boot(station.charger_id, boot)
        device.update(boot)

    # --- policies the sessions ask ---------------------------------------------------------
    def boot_response(self, station: Station) -> str:
        """The registration answer a charger gets: its device row's, else the guest answer
        (`registration.guest_response`; Niagara guide section 4, "Discover")."""
        device = self.devices.get(station.charger_id)
        if device is not None:
            return device["registration"]
        return self.settings.registration.guest_response

    def authorize(self, id_tag: str) -> dict[str, str]:
        """The idTagInfo for an Authorize or a transaction (policy in gateway.model.authorize)."""
        return authorize.decide(self.settings.authorize.policy, id_tag, self.tags)
