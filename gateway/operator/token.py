"""Secrets kept beside the database: the admin token and the site's charger password.

Admin token: the one credential of the admin API, the CLI and the web pages. `admin.token` in
the settings wins; without it the gateway makes a random token on first start and keeps it
beside the database (`admin-token`, mode 0600), so the CLI on the same machine reads it and the
quick start stays two commands.

Site charger password (security profile 1 while commissioning): `ocpp.default_password` wins;
without it, and with `ocpp.require_password` on, the gateway makes one (`charger-password`, 0600)
that every charger without its own key sends as its HTTP Basic password. The simulator on the
same machine reads it like the CLI reads the token.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from gateway.settings import Settings

TOKEN_FILE = "admin-token"
CHARGER_PASSWORD_FILE = "charger-password"


def data_dir(settings: Settings) -> Path:
    """The data directory: where the database lives."""
    return Path(settings.database.path).resolve().parent


def token_path(settings: Settings) -> Path:
    """Where the generated token lives: the data directory (beside the database)."""
    return data_dir(settings) / TOKEN_FILE


def charger_password_path(settings: Settings) -> Path:
    return data_dir(settings) / CHARGER_PASSWORD_FILE


def _read_secret(configured: str, path: Path) -> str | None:
    if configured:
        return configured
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def _ensure_secret(configured: str, path: Path, make: str) -> str:
    existing = _read_secret(configured, path)
    if existing:
        return existing
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(make + "\n")
    return make


def read_admin_token(settings: Settings) -> str | None:
    """The token a client on this machine should send, or None if there is none yet."""
    return _read_secret(settings.admin.token, token_path(settings))


def ensure_admin_token(settings: Settings) -> str:
    """The token the admin app requires; made (0600) on first start when none is configured."""
    return _ensure_secret(settings.admin.token, token_path(settings), secrets.token_urlsafe(32))


def read_charger_password(settings: Settings) -> str | None:
    """The site password a charger (or the simulator) on this site sends, or None."""
    return _read_secret(settings.ocpp.default_password, charger_password_path(settings))


def ensure_charger_password(settings: Settings) -> str | None:
    """The site password chargers without their own key must send; None when none is needed.

    Made on first start as 32 hex digits (16 random bytes): typeable on a charger's web page, and
    valid as a whitepaper AuthorizationKey, so it can later be rotated per charger.
    """
    if settings.ocpp.default_password or settings.ocpp.require_password:
        return _ensure_secret(settings.ocpp.default_password, charger_password_path(settings),
                              secrets.token_hex(16))
    return None
