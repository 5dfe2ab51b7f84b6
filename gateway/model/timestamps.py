"""Charger timestamps, read tolerantly: real chargers send odd formats and 1970 dates."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache

# Before this a charger's clock is not set yet (MicroOcpp#311: 1970 timestamps before boot).
EARLIEST_PLAUSIBLE = datetime(2010, 1, 1, tzinfo=UTC).timestamp()


def parse_timestamp(text: object) -> float | None:
    """Epoch seconds, or None when the text is not a usable date."""
    if not isinstance(text, str) or not text:
        return None
    return _parse(text)


@lru_cache(maxsize=1024)  # a hot path: chargers reporting in the same second send the same text
def _parse(text: str) -> float | None:
    raw = text.strip().replace(" ", "T", 1)
    if raw.endswith(("Z", "z")):
        raw = raw[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        return None
    if parsed.tzinfo is None:  # OCPP says UTC; chargers that omit the zone mean UTC too
        parsed = parsed.replace(tzinfo=UTC)
    value = parsed.timestamp()
    return value if value >= EARLIEST_PLAUSIBLE else None


_last_second: list = [None, ""]


def iso_z(ts: float) -> str:
    """ISO 8601 UTC with milliseconds; the formatted second is cached (a hot path: every log line)."""
    second = int(ts // 1)
    if _last_second[0] != second:
        _last_second[0] = second
        _last_second[1] = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{_last_second[1]}.{int((ts - second) * 1000):03d}Z"


def query_time(text: str | None, name: str) -> str | None:
    """An operator's --since/--until as the stored text form (UTC), or ValueError naming it.

    A date alone (2026-11-01) stays a date: it compares as the start of that UTC day.
    """
    if text is None or text == "":
        return None
    raw = text.strip()
    try:
        if len(raw) == 10:
            return datetime.strptime(raw, "%Y-%m-%d").strftime("%Y-%m-%d")
        parsed = datetime.fromisoformat(raw.replace(" ", "T", 1).replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{name} must be an ISO date (2026-11-01) or date-time "
                         f"(2026-11-01T08:00Z), not {text!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return iso_z(parsed.timestamp())


def absolute_time(text: str | None, name: str) -> str | None:
    """An operator's date or date-time as a full UTC timestamp (a date alone: its midnight UTC),
    or ValueError naming it. For tag expiry dates, which chargers compare as instants."""
    checked = query_time(text, name)
    if checked is None or len(checked) != 10:
        return checked
    return iso_z(datetime.strptime(checked, "%Y-%m-%d").replace(tzinfo=UTC).timestamp())
