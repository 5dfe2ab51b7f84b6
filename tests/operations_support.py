"""Test helpers for operator actions: a charger's configuration table answering like real ones do.

`ConfigTable` answers GetConfiguration the ways chargers in the field do (shared notes section 8,
pain point 2): all keys, only `GetConfigurationMaxKeys` of them, never for an unkeyed request
(evcc#15869), a CALLERROR for a multi-key request, or only the first key asked (lbbrhzn#1442).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from gateway.chargers.configuration import REQUIRED_CORE_KEYS
from gateway.main import Gateway
from tests.conftest import GatewayRunner
from tests.ocpp_client import TestCharger

ALL_PROFILES = "Core,FirmwareManagement,LocalAuthListManagement,Reservation,SmartCharging,RemoteTrigger"


def standard_config(**values: str) -> dict[str, str]:
    """Every required Core key with a plausible value, plus `values`."""
    table = {key: "0" for key in REQUIRED_CORE_KEYS}
    table |= {"SupportedFeatureProfiles": ALL_PROFILES, "NumberOfConnectors": "2",
              "HeartbeatInterval": "300", "GetConfigurationMaxKeys": "50",
              "MeterValuesSampledData": "Energy.Active.Import.Register"}
    return table | values


class ConfigTable:
    """A charger's keys; `answer` is a TestCharger answer for GetConfiguration."""

    def __init__(self, values: dict[str, str], readonly: set[str] | None = None,
                 max_keys: int | None = None, unkeyed: str = "all", batch: str = "ok",
                 list_unknown: bool = True) -> None:
        self.values = dict(values)
        self.readonly = readonly or {"GetConfigurationMaxKeys", "SupportedFeatureProfiles",
                                     "NumberOfConnectors"}
        self.max_keys = max_keys
        self.unkeyed = unkeyed  # all | limit | never
        self.batch = batch  # ok | error | first
        self.list_unknown = list_unknown  # False: unknown keys are left out of answers (non-compliant)
        self.requests: list[list[str] | None] = []

    def _item(self, key: str) -> dict[str, Any]:
        return {"key": key, "value": self.values[key], "readonly": key in self.readonly}

    def answer(self, payload: dict[str, Any]) -> dict[str, Any] | tuple[str, str] | None:
        keys = payload.get("key")
        self.requests.append(keys)
        if not keys:
            if self.unkeyed == "never":
                return None
            names = list(self.values)
            if self.unkeyed == "limit" and self.max_keys:
                names = names[:self.max_keys]
            return {"configurationKey": [self._item(k) for k in names]}
        if self.max_keys and len(keys) > self.max_keys:
            return ("PropertyConstraintViolation", f"at most {self.max_keys} keys")
        if len(keys) > 1 and self.batch == "error":
            return ("GenericError", "one key at a time")
        if len(keys) > 1 and self.batch == "first":
            keys = keys[:1]
        answer: dict[str, Any] = {"configurationKey": [self._item(k) for k in keys if k in self.values]}
        if self.list_unknown:
            answer["unknownKey"] = [k for k in keys if k not in self.values]
        return answer

    def change(self, result: str = "Accepted") -> Any:
        """A ChangeConfiguration answer that applies Accepted values to the table."""
        def answer(payload: dict[str, Any]) -> dict[str, Any]:
            if payload["key"] not in self.values:
                return {"status": "NotSupported"}
            if payload["key"] in self.readonly:
                return {"status": "Rejected"}
            if result == "Accepted":
                self.values[payload["key"]] = payload["value"]
            return {"status": result}
        return answer


@contextlib.asynccontextmanager
async def accepted_charger(gw: Gateway, runner: GatewayRunner, charger_id: str = "CP1",
                           table: ConfigTable | None = None,
                           **answers: Any) -> AsyncIterator[TestCharger]:
    """An added charger, connected and booted, whose configuration read has finished."""
    if charger_id not in gw.device_book.devices:
        await gw.device_book.add_device(charger_id)
    async with TestCharger(runner.url, charger_id) as cp:
        if table is not None:
            cp.answers["GetConfiguration"] = table.answer
        cp.answers.update(answers)
        await cp.boot()
        await read_finished(gw, charger_id)
        yield cp


async def read_finished(gw: Gateway, charger_id: str, reads: int = 1) -> list[dict[str, Any]]:
    """Wait until the gateway logged `reads` finished configuration reads; return those lines."""
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        rows = await gw.history.general_log(charger_id, message_type="ConfigurationRead")
        if len(rows) >= reads:
            return rows
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"configuration read of {charger_id} did not finish")
        await asyncio.sleep(0.01)


async def next_call(cp: TestCharger, action: str) -> dict[str, Any]:
    """The next call of `action` the charger received (others, e.g. reads, are skipped)."""
    while True:
        got, payload = await cp.received.get()
        if got == action:
            return payload


