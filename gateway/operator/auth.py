"""Who may use the admin app: a request from this host's own origin, with the admin token.

Three checks, in this order, for every request (read-only ones too: the CLI always has the
token, and discovery lists, logs and transactions are not for everyone on the network):

1. `Host` must name this gateway: an IP literal, `localhost`, or a name in `admin.allowed_hosts`.
   A page served by an attacker's domain that re-resolves to 127.0.0.1 (DNS rebinding) still
   sends its own name as Host, so it is refused with 421.
2. `Origin`, when a browser sends one, must be this same host (same-origin). A foreign page's
   POST (a "simple" cross-site request that skips the CORS pre-flight) is refused with 403.
3. `request_is_authenticated`: `Authorization: Bearer <admin token>` (scheme case-insensitive,
   RFC 9110 section 11.1), compared in constant time on bytes so odd headers get 401, never 500.
   The web pages extend this one rule (a session cookie) instead of adding a second guard.

Paths in `PUBLIC_PATHS_KEY` (e.g. a login page) skip only check 3.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Awaitable, Callable
from urllib.parse import quote, urlsplit

from aiohttp import web

log = logging.getLogger(__name__)
TOKEN_KEY: web.AppKey[str] = web.AppKey("admin_token", str)
ALLOWED_HOSTS_KEY: web.AppKey[frozenset[str]] = web.AppKey("admin_allowed_hosts", frozenset)
PUBLIC_PATHS_KEY: web.AppKey[set[str]] = web.AppKey("admin_public_paths", set)
# Set by the web pages (gateway/operator/web): does this request carry a logged-in session
# cookie, and where is the login page a browser is sent to without one.
SESSION_CHECK_KEY: web.AppKey[Callable[[web.Request], bool]] = web.AppKey("admin_session_check")
LOGIN_PAGE_KEY: web.AppKey[str] = web.AppKey("admin_login_page", str)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _as_bytes(text: str) -> bytes:
    """Header text as bytes for compare_digest, which refuses non-ASCII str (the old 500)."""
    return text.encode("utf-8", "backslashreplace")


def bearer_token(request: web.Request) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None (any other shape)."""
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def token_matches(app: web.Application, given: str) -> bool:
    """Is `given` the admin token? Constant-time, on bytes (also for a login form's field)."""
    return hmac.compare_digest(_as_bytes(given), _as_bytes(app[TOKEN_KEY]))


def request_is_authenticated(request: web.Request) -> bool:
    """The one rule of the admin app: the request carries the admin token, or the session cookie
    a login with it gave (the cookie's path is the web pages' own, so the API never sees it)."""
    given = bearer_token(request)
    if given is not None and token_matches(request.app, given):
        return True
    has_session = request.app.get(SESSION_CHECK_KEY)
    return has_session is not None and has_session(request)


def _login_redirect(request: web.Request) -> web.HTTPFound | None:
    """A browser opening a web page without a session goes to the login page (not a JSON 401)."""
    login = request.app.get(LOGIN_PAGE_KEY)
    if (login and request.method == "GET" and request.path.startswith(login.rpartition("/")[0] + "/")
            and "text/html" in request.headers.get("Accept", "")):
        return web.HTTPFound(f"{login}?next={quote(request.path_qs, safe='')}")
    return None


def host_name(host_header: str) -> str | None:
    """The name part of a Host header (no port, IPv6 brackets removed, lower case); None if malformed."""
    try:
        parts = urlsplit(f"//{host_header}")
        return (parts.hostname or "").lower() or None
    except ValueError:
        return None


def host_is_allowed(host_header: str, allowed: frozenset[str]) -> bool:
    """IP literals and localhost are not rebinding targets; other names must be configured."""
    name = host_name(host_header)
    if name is None:
        return False
    if name == "localhost" or name in allowed:
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def origin_is_same(origin: str, host_header: str) -> bool:
    """A browser's Origin names this very host (scheme http or https)."""
    try:
        parts = urlsplit(origin)
        return parts.scheme in ("http", "https") and parts.netloc.lower() == host_header.lower()
    except ValueError:
        return False


def _refuse(status: int, message: str, request: web.Request) -> web.Response:
    log.warning("admin API refused %s %s from %s: %s", request.method, request.path,
                request.remote, message)
    return web.json_response({"error": message}, status=status)


@web.middleware
async def admin_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Host, Origin, then the token; see the module docstring."""
    host = request.headers.get("Host", "")
    if not host_is_allowed(host, request.app[ALLOWED_HOSTS_KEY]):
        return _refuse(421, "unexpected Host header (add the name to admin.allowed_hosts)", request)
    origin = request.headers.get("Origin")
    if origin is not None and not origin_is_same(origin, host):
        return _refuse(403, "cross-origin request refused", request)
    if request.path not in request.app[PUBLIC_PATHS_KEY] and not request_is_authenticated(request):
        redirect = _login_redirect(request)
        if redirect is not None:
            raise redirect
        return web.json_response({"error": "admin token required"}, status=401,
                                 headers={"WWW-Authenticate": 'Bearer realm="ocpp-gateway"'})
    return await handler(request)


def install_guard(app: web.Application, token: str, allowed_hosts: list[str]) -> None:
    """Put the guard first in `app` with the token and the configured host names."""
    app[TOKEN_KEY] = token
    app[ALLOWED_HOSTS_KEY] = frozenset(h.lower() for h in allowed_hosts)
    app[PUBLIC_PATHS_KEY] = set()
    app.middlewares.insert(0, admin_guard)
