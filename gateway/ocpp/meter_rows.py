"""A MeterValues meterValue as the live model's readings and as a history row (OCPP 1.6 7.17),
and the bounds on what one message may make the gateway store.

Pure: the payload has passed the schema (gateway.ocpp.frames) before it gets here.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

from gateway.errors import OcppError
from gateway.model.station import MeterKey
from gateway.ocpp.protocol import dumps
from gateway.settings import OcppSettings

ENERGY = "Energy.Active.Import.Register"  # the default measurand (7.31)
# The 1.6 schema bounds no sampled-value string. The longest enum value (measurand
# "Energy.Reactive.Export.Register") has 31 characters and a timestamp about 30: a peer whose
# schema is relaxed (a quirk, `ocpp.validate_schemas` off) still gets no more than this.
FIELD_MAX_CHARS = 64


# Fields of a sampled value (value, context, format, measurand, phase, location, unit) and of a
# meterValue (timestamp, sampledValue), with room for a vendor's extra one when the schema is relaxed.
SAMPLED_VALUE_MAX_FIELDS = 8
METER_VALUE_MAX_FIELDS = 4
# What a meter row costs beyond its sampled values' text (its other columns and index entries),
# charged to the charger's meter budget with it.
ROW_BYTES = 64


def check_sizes(meter_values: list[dict[str, Any]], ocpp: OcppSettings, where: str = "meterValue",
                strict: bool = False) -> None:
    """Refuse what no meter sends (issue 12: one 250 KB value was stored whole).

    A reading is a number as text: `ocpp.meter_value_max_chars`; signed meter data (format
    SignedData, e.g. OCMF) may be longer: `ocpp.signed_meter_value_max_chars`; every other field
    is a short string (`FIELD_MAX_CHARS`), also when a relaxed schema lets extra fields in. Too
    many sampled values or fields: OccurenceConstraintViolation; a string too long:
    PropertyConstraintViolation; an extra field that is not a string: TypeConstraintViolation.

    A `strict` payload passed the strict schema: every field but the reading and the timestamp is
    an enum value, so only those and the count are looked at (the field-by-field check was a
    tenth of the loop's time a MeterValues, docs/benchmarks.md); one over its bound takes the
    full check, which words the CALLERROR.
    """
    if strict and _within_bounds(meter_values, ocpp):
        return
    count = sum(len(mv["sampledValue"]) for mv in meter_values)
    if count > ocpp.max_sampled_values_per_message:
        raise OcppError("OccurenceConstraintViolation", f"{count} sampled values in one message: at most "
                        f"{ocpp.max_sampled_values_per_message}")
    for i, mv in enumerate(meter_values):
        _check_fields(f"{where}[{i}]", mv, METER_VALUE_MAX_FIELDS, "sampledValue", 0)
        for j, sv in enumerate(mv["sampledValue"]):
            limit = (ocpp.signed_meter_value_max_chars if sv.get("format") == "SignedData"
                     else ocpp.meter_value_max_chars)
            _check_fields(f"{where}[{i}].sampledValue[{j}]", sv, SAMPLED_VALUE_MAX_FIELDS, "value", limit)


def _within_bounds(meter_values: list[dict[str, Any]], ocpp: OcppSettings) -> bool:
    """Whether a payload that passed the strict schema is within every bound of `check_sizes`."""
    count, reading_max, signed_max = 0, ocpp.meter_value_max_chars, ocpp.signed_meter_value_max_chars
    for mv in meter_values:
        values = mv["sampledValue"]
        count += len(values)
        if len(mv["timestamp"]) > FIELD_MAX_CHARS:
            return False
        for sv in values:
            size = len(sv["value"])
            if size > reading_max and (size > signed_max or sv.get("format") != "SignedData"):
                return False
    return count <= ocpp.max_sampled_values_per_message


def rows_size(rows: list[tuple]) -> int:
    """The bytes meter rows take, for the charger's budget: their sampled values' text and
    `ROW_BYTES` each."""
    return sum(len(row[5]) for row in rows) + ROW_BYTES * len(rows)


def _check_fields(path: str, obj: dict[str, Any], max_fields: int, long_key: str, long_limit: int) -> None:
    """Check one object's fields: strings of FIELD_MAX_CHARS, `long_key` of `long_limit` (0: not
    a string, checked elsewhere)."""
    if len(obj) > max_fields:
        raise OcppError("OccurenceConstraintViolation", f"{path} has {len(obj)} fields: at most {max_fields}")
    for key, field in obj.items():
        if key == long_key:
            if long_limit == 0:
                continue
            limit = long_limit
        else:
            limit = FIELD_MAX_CHARS
        if type(field) is not str:
            raise OcppError("TypeConstraintViolation", f"{path}.{key[:FIELD_MAX_CHARS]} must be a string")
        if len(field) > limit or len(key) > FIELD_MAX_CHARS:
            raise OcppError("PropertyConstraintViolation", f"{path}.{key[:FIELD_MAX_CHARS]} has {len(field)} "
                            f"characters: at most {limit}")


def number(sv: dict[str, Any]) -> float | None:
    """A sampled value as a finite number; signed meter data, "NaN", "1e999" and garbage stay in
    the stored JSON only (a BMS point must never show a value no meter read)."""
    if sv.get("format") == "SignedData":
        return None
    try:
        value = float(sv.get("value"))
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def readings(connector_id: int, mv: dict[str, Any]) -> list[tuple[MeterKey, float, str, str]]:
    """The numeric sampled values of one meterValue as (key, value, unit, context), keyed as the
    live model keeps them."""
    found = []
    for sv in mv.get("sampledValue", []):
        value = number(sv)
        if value is None:
            continue
        get = sv.get
        measurand = get("measurand", ENERGY)
        unit = get("unit")
        if unit is None and "unit" not in sv:
            unit = "Wh" if measurand.startswith("Energy") else ""
        found.append((MeterKey(connector_id, measurand, get("phase", ""), get("location", "Outlet")), value, unit,
                      get("context", "Sample.Periodic")))
    return found


def meter_row(charger_id: str, connector_id: int, tx_id: int | None, mv: dict[str, Any],
              strict: bool = False) -> tuple:
    """One meterValue as a history row, with the energy register pulled out for queries, and the
    key that makes a re-sent one stored once (`sample_key`). `strict`: see `sampled_json`."""
    values = mv.get("sampledValue", [])
    energy = next((number(sv) for sv in values
                   if sv.get("measurand", ENERGY) == ENERGY and sv.get("location", "Outlet") == "Outlet"
                   and not sv.get("phase")), None)
    text = sampled_json(values, strict)
    return (charger_id, connector_id, tx_id, mv.get("timestamp"), energy, text, sample_key(text))


def sampled_json(values: list[Any], strict: bool = False) -> str:
    """The stored text of a meterValue's sampled values: exactly `json.dumps`'s compact text (the
    dedupe key hashes it, so it must not change between versions), made by orjson, several times
    faster, whenever that is the same text: string fields only, printable ASCII (orjson writes
    non-ASCII and DEL unescaped and floats in another form). Values that passed the strict schema
    (`strict`) hold string fields only: their types need no look."""
    text = dumps(values)
    if (text.isascii() and "\x7f" not in text
            and (strict or all(type(sv) is dict and all(type(v) is str for v in sv.values()) for sv in values))):
        return text
    return json.dumps(values, separators=(",", ":"))


def sample_key(sampled_values_json: str) -> int:
    """64 bits of a hash of the sampled values: with the charger, connector, transaction and
    timestamp it names one meterValue. A charger that got no answer (the gateway was killed after
    the commit) sends the same message again; a unique index on this stores it once. A charger
    never sends two identical meterValue elements for one timestamp of one transaction."""
    digest = hashlib.blake2b(sampled_values_json.encode("utf-8", "backslashreplace"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)
