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
from typing import TYPE_CHECKING
from urllib.parse import unquote

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from gateway.history.store import check_key

if TYPE_CHECKING:
    from gateway.app import Gateway

log = logging.getLogger(__name__)
SUBPROTOCOL = "ocpp1.6"
# chargeBoxIdentity is CiString48 in OCPP 1.6 (spec 4.1.2 and the SOAP header); printable, no '/'.
_ID_RE = re.compile(r"^[\x21-\x7e]{1,48}$")

PLAIN_PAGE = (
    "OCPP 1.6-J central system (ocpp-bms-gateway) is running.\n"
    "Chargers connect with a websocket upgrade to ws(s)://<host>:{port}/ocpp/<charger id> "
    "or ws(s)://<host>:{port}/<charger id>, subprotocol ocpp1.6.\n"
)


def valid_charger_id(text: str) -> bool:
    """An id a charger could connect with (what the device database accepts)."""
    return bool(_ID_RE.match(text)) and "/" not in text and text.lower() != "ocpp"


def charger_id_from_path(path: str) -> str | None:
    """The charger identifier is the last path segment, URL-decoded (query string ignored)."""
    path = path.split("?", 1)[0].rstrip("/")
    segment = unquote(path.rsplit("/", 1)[-1]) if path else ""
    if not segment or not _ID_RE.match(segment) or segment.lower() == "ocpp":
        return None
    return segment


def _basic_credentials(headers: Headers) -> tuple[str, str] | None:
    value = headers.get("Authorization", "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "basic" or not token:
        return None
    try:
        user, sep, password = base64.b64decode(token.strip(), validate=True).decode("latin-1").partition(":")
    except (binascii.Error, ValueError):
        return None
    return (user, password) if sep else None


def _text(connection: ServerConnection, status: http.HTTPStatus, body: str,
          extra: dict[str, str] | None = None) -> Response:
    response = connection.respond(status, body)
    for k, v in (extra or {}).items():
        response.headers[k] = v
    return response


class OcppServer:
    """Owns the websockets server and turns each accepted connection into a Session."""

    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway
        self.server: Server | None = None

    async def start(self) -> int:
        cfg = self.gw.settings.ocpp
        context = None
        if cfg.ssl_enabled:  # security profile 2: TLS with a server certificate
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(cfg.ssl_certfile, cfg.ssl_keyfile)
        self.server = await serve(
            self._handle, cfg.host, cfg.port, ssl=context,
            process_request=self._process_request, select_subprotocol=self._select_subprotocol,
            ping_interval=cfg.ping_interval_s, ping_timeout=cfg.ping_timeout_s,
            max_size=cfg.max_message_bytes, max_queue=16, compression=None, backlog=1024,
        )
        sock = next(iter(self.server.sockets))
        return int(sock.getsockname()[1])

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        upgrade = request.headers.get("Upgrade", "").lower()
        if upgrade != "websocket":
            return _text(connection, http.HTTPStatus.OK,
                         PLAIN_PAGE.format(port=self.gw.settings.ocpp.port))
        charger_id = charger_id_from_path(request.path)
        peer = _peer(connection)
        if charger_id is None:
            log.warning("refused connection from %s: no valid charger id in path %r", peer, request.path)
            return _text(connection, http.HTTPStatus.NOT_FOUND,
                         "No valid charger identifier in the path: use /ocpp/<charger id>.\n")
        if len(self.gw.sessions) >= self.gw.settings.ocpp.max_connections and \
                charger_id not in self.gw.sessions:
            return _text(connection, http.HTTPStatus.SERVICE_UNAVAILABLE, "Too many connections.\n")
        key_hash = self.gw.auth_key_hash(charger_id)
        if key_hash:
            creds = _basic_credentials(request.headers)
            hashes = self.gw.auth_key_hashes(charger_id)
            if creds is None or creds[0] != charger_id or not any(check_key(creds[1], h) for h in hashes):
                reason = "missing credentials" if creds is None else "wrong credentials"
                log.warning("refused %s from %s: %s (security profile 1)", charger_id, peer, reason)
                self.gw.history.log(charger_id, "ConnectionRefused", f"{reason} from {peer}", "warning")
                return _text(connection, http.HTTPStatus.UNAUTHORIZED, "Authorization required.\n",
                             {"WWW-Authenticate": 'Basic realm="OCPP", charset="UTF-8"'})
        return None

    def _select_subprotocol(self, connection: ServerConnection, offered: list[str]) -> str | None:
        if SUBPROTOCOL in offered:
            return SUBPROTOCOL
        path = connection.request.path if connection.request else "?"
        if offered:
            log.warning("%s offered subprotocols %s, not ocpp1.6; continuing without one", path, offered)
        else:
            log.info("%s offered no subprotocol; assuming OCPP 1.6-J", path)
        if self.gw.settings.ocpp.require_subprotocol:
            from websockets.exceptions import NegotiationError
            raise NegotiationError("ocpp1.6 subprotocol required")
        return None

    async def _handle(self, connection: ServerConnection) -> None:
        charger_id = charger_id_from_path(connection.request.path)
        assert charger_id is not None  # process_request refused the rest
        await self.gw.run_session(charger_id, connection, connection.subprotocol or "",
                                  _peer(connection))


def _peer(connection: ServerConnection) -> str:
    addr = connection.remote_address
    return f"{addr[0]}:{addr[1]}" if addr else "?"
