"""The websocket endpoint chargers connect to: paths, subprotocol, Basic auth, TLS, ping.

Everything that can be refused is refused in `process_request`, before the upgrade and before
any OCPP message: a bad path, a bad identifier, wrong credentials. A plain HTTP request gets a
page saying the central system runs (the Niagara troubleshooting check, guide section 8).
"""

from __future__ import annotations

import base64
import binascii
import http
import logging
import re
import ssl
import weakref
from typing import TYPE_CHECKING
from urllib.parse import unquote

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from gateway.ocpp.login import LoginGuard, LoginOutcome

if TYPE_CHECKING:
    from gateway.history.store import HistoryStore
    from gateway.ocpp.connections import Connections
    from gateway.settings import Settings

log = logging.getLogger(__name__)
SUBPROTOCOL = "ocpp1.6"
# chargeBoxIdentity is CiString48 in OCPP 1.6 (spec 4.1.2 and the SOAP header); we take printable
# ASCII without '/' (a decoded %2F would make ids like "../../etc/passwd"), no space, no control.
_ID_RE = re.compile(r"^[\x21-\x2e\x30-\x7e]{1,48}$")
MAX_ID_LENGTH = 48

PLAIN_PAGE = (
    "OCPP 1.6-J central system (ocpp-bms-gateway) is running.\n"
    "Chargers connect with a websocket upgrade to ws(s)://<host>:{port}/ocpp/<charger id> "
    "or ws(s)://<host>:{port}/<charger id>, subprotocol ocpp1.6.\n"
)


def last_path_segment(path: str) -> str:
    """The last path segment, URL-decoded (query string ignored); '' when there is none."""
    path = path.split("?", 1)[0].rstrip("/")
    segment = unquote(path.rsplit("/", 1)[-1], errors="replace") if path else ""
    return "" if segment.lower() == "ocpp" else segment


def charger_id_problem(charger_id: str) -> str | None:
    """Why `charger_id` cannot be a charger identifier, or None when it can."""
    if len(charger_id) > MAX_ID_LENGTH:
        return f"longer than {MAX_ID_LENGTH} characters"
    if not _ID_RE.match(charger_id) or charger_id in (".", ".."):
        return "only printable ASCII without '/', space or control characters"
    return None


def valid_charger_id(text: str) -> bool:
    """An id a charger could connect with (what the device database accepts)."""
    return charger_id_problem(text) is None and text.lower() != "ocpp"


def charger_id_from_path(path: str) -> str | None:
    """The charger identifier is the last path segment, URL-decoded and validated."""
    segment = last_path_segment(path)
    return segment if segment and charger_id_problem(segment) is None else None


def basic_credentials(headers: Headers) -> tuple[str, bytes] | None:
    """(user, password bytes) of an HTTP Basic header (RFC 7617), or None. The password stays
    bytes: a whitepaper charger sends its hex-decoded AuthorizationKey, which is not text."""
    value = headers.get("Authorization", "")
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "basic" or not token:
        return None
    try:
        user, sep, password = base64.b64decode(token.strip(), validate=True).partition(b":")
        return (user.decode("utf-8"), password) if sep else None
    except (binascii.Error, ValueError):
        return None


def _text(connection: ServerConnection, status: http.HTTPStatus, body: str,
          extra: dict[str, str] | None = None) -> Response:
    response = connection.respond(status, body)
    for k, v in (extra or {}).items():
        response.headers[k] = v
    return response


# A charger that does not answer our close frame is dropped after this long, so that a stop
# (SIGTERM, Ctrl-C) ends within 5 s whatever the chargers do (websockets' default is 10 s).
CLOSE_TIMEOUT_S = 2.0


def drop_tracebacks(exc: BaseException | None) -> None:
    """Clear the traceback of `exc` and of every exception it was raised from or during."""
    seen: set[int] = set()
    stack = [exc]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        e.__traceback__ = None
        stack += [e.__cause__, e.__context__]


class OcppConnection(ServerConnection):
    """websockets' server connection, leaving no reference cycle once its socket has closed.

    Given `select_subprotocol`, websockets 17 (asyncio/server.py, protocol_factory) stores on the
    Sans-I/O protocol a method bound to that protocol, whose closure holds this connection: two
    cycles per connection, refused handshakes included. The collector is frozen every few seconds
    (gateway.gc_policy), so such cycles would stay for good; without them refcounting frees a
    closed connection at once.

    Once the socket is lost, websockets 17's Sans-I/O protocol still holds its parser: a
    generator suspended at its last `yield` (`discard`, or `parse` after an error), whose frame
    holds the protocol: a cycle for every closed connection, normal closes included, with the
    read buffer and the handshake's headers in it. Its finalizer would break it, but only a
    collection runs finalizers, and a frozen one is never collected. The parser is closed here;
    nothing steps it again (the reader is at EOF, so `receive_data` raises before it would).
    A connection closed for invalid UTF-8 (1007), an oversize frame (1009) or a bad handshake
    also keeps the exception that ended it (`connection_exc`, the protocol's `parser_exc` or
    `handshake_exc`, for the cause of the ConnectionClosed it raises); its traceback's frames
    hold the connection or the protocol. Those tracebacks are dropped; the exceptions stay.
    The hostile benchmark closes a hundred connections that way (docs/reliability.md, "RSS
    after the load").
    """

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        protocol = self.protocol
        vars(protocol).pop("select_subprotocol", None)  # the class's own method again
        protocol.parser.close()
        for kept in (self.connection_exc, protocol.parser_exc, protocol.handshake_exc):
            drop_tracebacks(kept)
        # CPython's selector transport keeps a method bound to itself for reading (3.11
        # asyncio/selector_events.py, `_read_ready_cb`), kept after close. The loop has stopped
        # reading this socket before it reports the loss, so the callback is never due again.
        if getattr(self.transport, "_read_ready_cb", None) is not None:
            self.transport._read_ready_cb = None


class OcppServer:
    """Owns the websockets server and hands each accepted connection to `Connections.run`."""

    def __init__(self, settings: Settings, connections: Connections, login: LoginGuard,
                 history: HistoryStore) -> None:
        self.settings = settings
        self.connections = connections
        self.login = login  # security profile 1: who must send which password (gateway.ocpp.login)
        self.history = history
        self.server: Server | None = None
        # Whether each accepted connection logged in with valid credentials (read by _handle).
        self._authenticated: weakref.WeakKeyDictionary[ServerConnection, bool] = weakref.WeakKeyDictionary()

    async def start(self) -> int:
        cfg = self.settings.ocpp
        context = None
        if cfg.ssl_enabled:  # security profile 2: TLS with a server certificate
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.minimum_version = ssl.TLSVersion.TLSv1_2  # whitepaper: TLS 1.2 or later
            context.load_cert_chain(cfg.ssl_certfile, cfg.ssl_keyfile)
            if cfg.ssl_cafile:  # security profile 3: chargers show a certificate from this CA
                context.load_verify_locations(cafile=cfg.ssl_cafile)
                context.verify_mode = (ssl.CERT_REQUIRED if cfg.require_client_certificate
                                       else ssl.CERT_OPTIONAL)
        self.server = await serve(
            self._handle, cfg.host, cfg.port, ssl=context,
            process_request=self._process_request, select_subprotocol=self._select_subprotocol,
            ping_interval=cfg.ping_interval_s, ping_timeout=cfg.ping_timeout_s,
            max_size=cfg.max_message_bytes, max_queue=16, compression=None, backlog=1024,
            close_timeout=CLOSE_TIMEOUT_S, create_connection=OcppConnection,
        )
        sock = next(iter(self.server.sockets))
        return int(sock.getsockname()[1])

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
        self.login.close()

    async def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        upgrade = request.headers.get("Upgrade", "").lower()
        if upgrade != "websocket":
            return _text(connection, http.HTTPStatus.OK,
                         PLAIN_PAGE.format(port=self.settings.ocpp.port))
        charger_id = last_path_segment(request.path)
        peer = _peer(connection)
        if not charger_id:
            log.warning("refused connection from %s: no charger id in path %r", peer, request.path[:100])
            return _text(connection, http.HTTPStatus.NOT_FOUND,
                         "No charger identifier in the path: use /ocpp/<charger id>.\n")
        problem = charger_id_problem(charger_id)
        if problem is not None:
            log.warning("refused connection from %s: charger id %r: %s", peer, charger_id[:60], problem)
            return _text(connection, http.HTTPStatus.BAD_REQUEST,
                         f"Invalid charger identifier: {problem}.\n")
        if len(self.connections.sessions) >= self.settings.ocpp.max_connections and \
                charger_id not in self.connections.sessions:
            return _text(connection, http.HTTPStatus.SERVICE_UNAVAILABLE, "Too many connections.\n")
        if self.settings.ocpp.require_client_certificate:
            return self._check_certificate(connection, charger_id, peer)
        outcome = await self.login.check(charger_id, _host(connection), basic_credentials(request.headers))
        refusal = self._refusal(connection, charger_id, peer, outcome)
        if refusal is None:
            self._authenticated[connection] = outcome.authenticated
        return refusal

    def _check_certificate(self, connection: ServerConnection, charger_id: str, peer: str) -> Response | None:
        """Security profile 3: the TLS layer verified the chain; the certificate must name this
        charger (common name or subject alternative name), so one charger's key opens no other."""
        cert = connection.transport.get_extra_info("peercert") if connection.transport else None
        names = certificate_names(cert or {})
        if charger_id in names:
            self._authenticated[connection] = True
            return None
        reason = f"client certificate names {sorted(names) or 'nothing'}, not this charger"
        log.warning("refused %s from %s: %s (security profile 3)", charger_id, peer, reason)
        self.history.log(charger_id, "ConnectionRefused", f"{reason} from {peer}", "warning")
        return _text(connection, http.HTTPStatus.FORBIDDEN, "Client certificate does not name this charger.\n")

    def _refusal(self, connection: ServerConnection, charger_id: str, peer: str,
                 outcome: LoginOutcome) -> Response | None:
        """The HTTP answer for a login that may not proceed (security profile 1), or None."""
        if outcome.status == "throttled":
            # No log row: a flood of attempts inside the delay must not flood the database.
            return _text(connection, http.HTTPStatus.TOO_MANY_REQUESTS, "Too many failed logins.\n",
                         {"Retry-After": str(max(1, round(outcome.retry_after_s)))})
        if outcome.status == "refused":
            reason = outcome.reason
        else:
            current = self.connections.sessions.get(charger_id)
            if outcome.authenticated or current is None or not current.authenticated:
                return None
            # Only a connection that proves it is the charger may take over its session.
            reason = "no credentials, and an authenticated connection of this charger is open"
        log.warning("refused %s from %s: %s (security profile 1)", charger_id, peer, reason)
        self.history.log(charger_id, "ConnectionRefused", f"{reason} from {peer}", "warning")
        return _text(connection, http.HTTPStatus.UNAUTHORIZED, "Authorization required.\n",
                     {"WWW-Authenticate": 'Basic realm="OCPP", charset="UTF-8"'})

    def _select_subprotocol(self, connection: ServerConnection, offered: list[str]) -> str | None:
        if SUBPROTOCOL in offered:
            return SUBPROTOCOL
        path = connection.request.path if connection.request else "?"
        if offered:
            log.warning("%s offered subprotocols %s, not ocpp1.6; continuing without one", path, offered)
        else:
            log.info("%s offered no subprotocol; assuming OCPP 1.6-J", path)
        if self.settings.ocpp.require_subprotocol:
            from websockets.exceptions import NegotiationError
            raise NegotiationError("ocpp1.6 subprotocol required")
        return None

    async def _handle(self, connection: ServerConnection) -> None:
        charger_id = charger_id_from_path(connection.request.path)
        assert charger_id is not None  # process_request refused the rest
        await self.connections.run(charger_id, connection, connection.subprotocol or "",
                                  _peer(connection), self._authenticated.pop(connection, False))


def certificate_names(cert: dict) -> set[str]:
    """Common names and subject alternative names (DNS, URI, ...) of a verified peer certificate,
    as `ssl.SSLSocket.getpeercert()` returns it."""
    names = {value for rdn in cert.get("subject", ()) for key, value in rdn if key == "commonName"}
    names.update(value for _kind, value in cert.get("subjectAltName", ()))
    return names


def _host(connection: ServerConnection) -> str:
    """The source address (no port): what the login throttle counts per address."""
    addr = connection.remote_address
    return str(addr[0]) if addr else "?"


def _peer(connection: ServerConnection) -> str:
    addr = connection.remote_address
    return f"{addr[0]}:{addr[1]}" if addr else "?"
