"""The admin token: the one credential of the admin API, the CLI and the web pages.

`admin.token` in the settings wins; without it the gateway makes a random token on first start
and keeps it beside the database (`admin-token`, mode 0600), so the CLI on the same machine
reads it and the quick start stays two commands.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from gateway.settings import Settings

TOKEN_FILE = "admin-token"


def token_path(settings: Settings) -> Path:
    """Where the generated token lives: the data directory (beside the database)."""
    return Path(settings.database.path).resolve().parent / TOKEN_FILE


def read_admin_token(settings: Settings) -> str | None:
    """The token a client on this machine should send, or None if there is none yet."""
    if settings.admin.token:
        return settings.admin.token
    try:
        return token_path(settings).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def ensure_admin_token(settings: Settings) -> str:
    """The token the admin app requires; made (0600) on first start when none is configured."""
    existing = read_admin_token(settings)
    if existing:
        return existing
    path = token_path(settings)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(token + "\n")
    return token
