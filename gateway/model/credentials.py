"""Charger passwords (OCPP security profile 1) as stored: scrypt, in the text and the hex form.

The OCPP 1.6 security whitepaper (section 3, "AuthorizationKey") has the key written to the
charger hex-encoded and used as the HTTP Basic password in its decoded, binary form; many
chargers (zappi 003 "AuthorizationKey", Smappee 000 section 7) use the text as typed. A key that
is a hex string is therefore stored in both forms: the charger may send either, during a key
rotation and after it.

Stored value: `scrypt$<n>$<r>$<p>$<salt hex>$<hash hex>[,<hash hex>]`, one salt for both forms
so a login costs one scrypt. `<salt>$<sha256 hex>` (one round of salted SHA-256, before this
module) is still accepted and reported as `legacy`, so the caller re-stores it on that login.
Pure: hashlib and hmac only; scrypt costs ~40 ms, callers run it off the event loop.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

# RFC 7914 parameters; n = 2**14 and r = 8 take ~40 ms and 16 MiB per check on a small server.
# The keys are machine secrets checked at each connection, and a failed login is throttled
# (gateway/model/login_throttle.py), so this guards a stolen database, not the network.
SCRYPT_N, SCRYPT_R, SCRYPT_P, DKLEN = 2**14, 8, 1, 32
_HEX = re.compile(r"^(?:[0-9a-fA-F]{2})+$")


@dataclass(frozen=True)
class KeyCheck:
    """Outcome of a password check: matched, and whether the stored form should be renewed."""

    ok: bool
    legacy: bool = False


def password_forms(key: str) -> list[bytes]:
    """The byte strings a charger may send for `key`: its text, and its hex-decoded bytes."""
    forms = [key.encode("utf-8")]
    if _HEX.match(key):
        forms.append(bytes.fromhex(key))
    return forms


def _scrypt(password: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password, salt=salt, n=n, r=r, p=p, maxmem=128 * r * n * p + 2**20,
                          dklen=DKLEN)


def stored_key(key: str) -> str:
    """What the database keeps for `key` (never the key itself)."""
    salt = secrets.token_bytes(16)
    digests = ",".join(_scrypt(form, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P).hex()
                       for form in password_forms(key))
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digests}"


def check_password(password: bytes, stored: str) -> KeyCheck:
    """Does `password` (the Basic-auth bytes the charger sent) match the stored key?"""
    if stored.startswith("scrypt$"):
        try:
            _tag, n, r, p, salt, digests = stored.split("$")
            given = _scrypt(password, bytes.fromhex(salt), int(n), int(r), int(p))
            wanted = [bytes.fromhex(d) for d in digests.split(",")]
        except ValueError:
            return KeyCheck(False)
        return KeyCheck(any(hmac.compare_digest(given, w) for w in wanted))
    salt, sep, digest = stored.partition("$")
    try:
        text = password.decode("utf-8")
    except UnicodeDecodeError:
        return KeyCheck(False)
    legacy = hashlib.sha256(f"{salt}:{text}".encode()).hexdigest()
    return KeyCheck(bool(sep) and hmac.compare_digest(legacy, digest), legacy=True)
