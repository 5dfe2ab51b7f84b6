"""Security profile 1 at the handshake: who must send a password, which one, and how fast.

A charger with its own key (device database, or a key being rotated in right now) must send it.
A charger without one sends the site password (`ocpp.default_password`, made on first start
when empty) when `ocpp.require_password` is on; with it off, it may connect without any.
Username is the charger id (OCPP 1.6 security whitepaper, profile 1).

Failures are throttled (gateway/model/login_throttle.py): an attempt inside its delay gets 429
before any password is looked at, and costs no database row. scrypt runs on two worker threads,
off the event loop; a password that matched a stored key before is recognised by an in-memory
HMAC instead of another scrypt, so a reconnect storm (all on the site password, or each charger
on its own key again) stays cheap.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from gateway.history.store import HistoryStore
from gateway.model.credentials import KeyCheck, check_password, password_forms
from gateway.model.login_throttle import LoginThrottle
from gateway.settings import OcppSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoginOutcome:
    """`ok` (credentials valid), `anonymous` (none needed, none sent), `refused`, `throttled`."""

    status: str
    reason: str = ""
    retry_after_s: float = 0.0

    @property
    def authenticated(self) -> bool:
        return self.status == "ok"


class KeyStore(Protocol):
    """Where the charger keys are: the device database and the site password (the Gateway)."""

    site_password_key: str | None

    def auth_keys(self, charger_id: str) -> tuple[list[str], str | None]: ...

    async def renew_auth_key(self, charger_id: str, key: str) -> None: ...


class LoginGuard:
    def __init__(self, keys: KeyStore, settings: OcppSettings, clock: Callable[[], float],
                 history: HistoryStore, spawn: Callable[[Coroutine[Any, Any, Any], str], Any],
                 throttle: LoginThrottle | None = None) -> None:
        self.keys, self.settings, self.clock = keys, settings, clock
        self.history, self.spawn = history, spawn
        self.throttle = throttle or LoginThrottle()
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="scrypt")
        self._cache_secret = secrets.token_bytes(32)
        # Stored keys -> HMAC of the password that matched them last; the site password is one
        # entry shared by every charger that uses it, so a reconnect storm costs one scrypt.
        self._good: dict[tuple[str, ...], bytes] = {}
        self._running: dict[tuple[tuple[str, ...], bytes], asyncio.Future[KeyCheck]] = {}

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _fingerprint(self, password: bytes) -> bytes:
        return hmac.new(self._cache_secret, password, hashlib.sha256).digest()

    async def check(self, charger_id: str, address: str,
                    credentials: tuple[str, bytes] | None) -> LoginOutcome:
        """Decide one handshake; the caller answers and logs (see OcppServer._process_request)."""
        own, pending = self.keys.auth_keys(charger_id)
        site_key = self.keys.site_password_key
        stored = own or ([site_key] if site_key else [])
        required = bool(own or pending) or self.settings.require_password
        if credentials is None and not required:
            return LoginOutcome("anonymous")
        if credentials is not None and not (stored or pending):
            return LoginOutcome("anonymous")  # nothing configured to check against
        wait = self.throttle.retry_after(charger_id, address, self.clock())
        if wait > 0:
            return LoginOutcome("throttled", "too many failed attempts", wait)
        result = KeyCheck(False)
        if credentials is not None and credentials[0] == charger_id:
            result = await self._verify(charger_id, credentials[1], tuple(stored), pending)
        if result.ok:
            self.throttle.succeeded(charger_id, address)
            if result.legacy and own:
                self.spawn(self.keys.renew_auth_key(charger_id, credentials[1].decode("utf-8")),
                           f"key renewal for {charger_id}")
            return LoginOutcome("ok")
        reason = ("missing credentials" if credentials is None else
                  "wrong user name" if credentials[0] != charger_id else "wrong credentials")
        locked = self.throttle.failed(charger_id, address, self.clock())
        if locked:
            wait = self.throttle.retry_after(charger_id, address, self.clock())
            what = ", ".join(locked)  # e.g. "id:CP1, addr:192.0.2.7"
            log.warning("%s: %d failed logins (%s): locked out, next try in %.0f s", charger_id,
                        self.throttle.lockout_after, what, wait)
            self.history.log(charger_id, "LoginLockout",
                             f"{self.throttle.lockout_after} failed logins ({what}); attempts now wait "
                             f"up to {self.throttle.max_delay_s:g} s", "warning")
        return LoginOutcome("refused", reason)

    async def _verify(self, charger_id: str, password: bytes, stored: tuple[str, ...],
                      pending: str | None) -> KeyCheck:
        if pending is not None and any(hmac.compare_digest(password, f) for f in password_forms(pending)):
            return KeyCheck(True)
        if not stored:
            return KeyCheck(False)
        fingerprint = self._fingerprint(password)
        cached = self._good.get(stored)
        if cached is not None and hmac.compare_digest(cached, fingerprint):
            return KeyCheck(True)
        # Chargers reconnecting together with the same password wait on one scrypt, not one each.
        job = self._running.get((stored, fingerprint))
        if job is None:
            job = asyncio.ensure_future(self._scrypt_check(password, stored))
            self._running[(stored, fingerprint)] = job
            job.add_done_callback(lambda _: self._running.pop((stored, fingerprint), None))
        result = await asyncio.shield(job)
        if result.ok and not result.legacy:
            self._good[stored] = fingerprint
        return result

    async def _scrypt_check(self, password: bytes, stored: tuple[str, ...]) -> KeyCheck:
        loop = asyncio.get_running_loop()
        for key in stored:
            result = await loop.run_in_executor(self._executor, check_password, password, key)
            if result.ok:
                return result
        return KeyCheck(False)
