"""Web login: the admin token (the same credential as the API) becomes a session cookie.

The cookie is HttpOnly (no script reads it) and SameSite=Strict (no other site's page sends it);
every form also carries the session's CSRF token, compared in constant time, and a POST whose
Origin names another host is refused. Sessions live in memory: a restart logs everyone out.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

PREFIX = "/ui"  # where the pages live on the admin port
COOKIE = "gw_session"
SESSION_IDLE_S = 12 * 3600
FAILED_LOGIN_WINDOW_S = 60.0
FAILED_LOGINS_ALLOWED = 5


@dataclass
class WebSession:
    csrf: str
    last_used: float
    flash: list[tuple[str, str]] = field(default_factory=list)  # (kind, text) shown once


class Sessions:
    """Logged-in browsers by cookie value, and a brake on guessing the token."""

    def __init__(self, clock: Any = time.monotonic) -> None:
        self.clock = clock
        self.by_id: dict[str, WebSession] = {}
        self.failures: list[float] = []

    def login(self, given: str, secrets_accepted: list[str]) -> str | None:
        """A new session id when `given` is the admin token (or admin.password); None otherwise."""
        now = self.clock()
        self.failures = [t for t in self.failures if now - t < FAILED_LOGIN_WINDOW_S]
        if len(self.failures) >= FAILED_LOGINS_ALLOWED:
            return None
        given_bytes = given.strip().encode("utf-8", "backslashreplace")
        matches = [hmac.compare_digest(given_bytes, s.encode()) for s in secrets_accepted]  # no early exit
        if not any(matches):
            self.failures.append(now)
            return None
        sid = secrets.token_urlsafe(32)
        self.by_id[sid] = WebSession(secrets.token_urlsafe(24), now)
        return sid

    def throttled(self) -> bool:
        now = self.clock()
        return sum(1 for t in self.failures if now - t < FAILED_LOGIN_WINDOW_S) >= FAILED_LOGINS_ALLOWED

    def get(self, request: web.Request) -> WebSession | None:
        sid = request.cookies.get(COOKIE, "")
        session = self.by_id.get(sid)
        if session is None:
            return None
        now = self.clock()
        if now - session.last_used > SESSION_IDLE_S:
            del self.by_id[sid]
            return None
        session.last_used = now
        return session

    def logout(self, request: web.Request) -> None:
        self.by_id.pop(request.cookies.get(COOKIE, ""), None)


def set_cookie(response: web.StreamResponse, sid: str, secure: bool) -> None:
    response.set_cookie(COOKIE, sid, path="/ui", httponly=True, samesite="Strict", secure=secure,
                        max_age=SESSION_IDLE_S)


def same_origin(request: web.Request) -> bool:
    """A browser sends Origin with a POST; one naming another host is a cross-site request."""
    origin = request.headers.get("Origin")
    if not origin or origin == "null":
        return origin is None
    return origin.split("://", 1)[-1] == request.host


def csrf_ok(session: WebSession, form: Any) -> bool:
    return hmac.compare_digest(str(form.get("csrf", "")).encode(), session.csrf.encode())


def safe_next(value: str | None) -> str:
    """Only a path on this site (no //host or scheme): no open redirect after login."""
    if value and value.startswith(f"{PREFIX}/") and not value.startswith("//") and "\\" not in value:
        return value
    return f"{PREFIX}/"
