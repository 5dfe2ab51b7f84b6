"""The authorize policy of Niagara guide 5.4, one answer for Authorize, Start and StopTransaction.

Policies: all, none, all_except_blacklist (blacklisted → Blocked), none_except_whitelist
(unknown → Invalid). A tag with an expiry date in the past is Expired under every policy that
would otherwise accept it. Pure: the tag lists are passed in, kept by the history store.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True)
class TagEntry:
    id_tag: str
    listed: str  # "whitelist" or "blacklist"
    expiry: datetime | None = None
    parent_id_tag: str = ""
    note: str = ""


def decide(policy: str, id_tag: str, tags: dict[str, TagEntry],
           now: datetime | None = None) -> dict[str, str]:
    """Return the OCPP idTagInfo for this tag (status, and expiryDate/parentIdTag when known)."""
    now = now or datetime.now(UTC)
    entry = tags.get(id_tag)
    listed = entry.listed if entry is not None else ""
    if policy == "all":
        status = "Accepted"
    elif policy == "none":
        status = "Invalid"
    elif listed == "blacklist":
        status = "Blocked"
    elif policy == "none_except_whitelist":
        status = "Accepted" if listed == "whitelist" else "Invalid"
    else:  # all_except_blacklist, tag not blacklisted
        status = "Accepted"
    info: dict[str, str] = {"status": status}
    if entry is not None and entry.expiry is not None:
        if status == "Accepted" and entry.expiry <= now:
            info["status"] = "Expired"
        info["expiryDate"] = entry.expiry.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if entry is not None and entry.parent_id_tag:
        info["parentIdTag"] = entry.parent_id_tag
    return info
