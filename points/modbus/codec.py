"""Values to 16-bit Modbus registers and back, without any Modbus library.

Kept apart from the server so the encodings a BMS integrator depends on (word order, "not
available" sentinels, string padding) are tested with plain lists of ints. Byte order inside a
register is always big-endian (Modbus application protocol 1.1b3, section 4.2); only the order of
the two words of a 32-bit value is a setting, because BMS drivers differ there (notes 2.3:
Delta and Bronkhorst publish high word first, Rockwell and Vaisala low word first, mbpoll
defaults to low word first).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping, Sequence
from enum import StrEnum

from gateway.errors import EncodeError


class RegType(StrEnum):
    """The register encodings of the map; the value is the name the register map prints."""

    FLOAT32 = "FLOAT32"
    UINT32 = "UINT32"
    INT32 = "INT32"
    UINT16 = "UINT16"
    INT16 = "INT16"
    ENUM16 = "ENUM16"  # UINT16 holding a documented code
    BOOL16 = "BOOL16"  # UINT16 0/1
    STRING = "STRING"  # fixed number of registers, 2 ASCII characters each


WORD_ORDERS = ("big", "little")

# "Not available" sentinels (notes 3.4): what a register holds before a value was ever reported
# or while it is stale. NaN is the quiet NaN 0x7FC00000, the one most BMS drivers show as NaN.
NAN_F32 = (0x7FC0, 0x0000)
NA_UINT16 = 0xFFFF
NA_INT16 = 0x8000
NA_UINT32 = 0xFFFFFFFF
NA_INT32 = 0x80000000

_FIXED_SIZE = {RegType.FLOAT32: 2, RegType.UINT32: 2, RegType.INT32: 2, RegType.UINT16: 1,
               RegType.INT16: 1, RegType.ENUM16: 1, RegType.BOOL16: 1}


def size_of(reg_type: RegType, length: int = 0) -> int:
    """Registers a value occupies; a STRING's length is its number of registers."""
    if reg_type is RegType.STRING:
        if length <= 0:
            raise ValueError("a STRING needs a positive length in registers")
        return length
    return _FIXED_SIZE[reg_type]


def _words(raw: int, word_order: str) -> list[int]:
    high, low = (raw >> 16) & 0xFFFF, raw & 0xFFFF
    return [high, low] if word_order == "big" else [low, high]


def _raw32(regs: Sequence[int], word_order: str) -> int:
    high, low = (regs[0], regs[1]) if word_order == "big" else (regs[1], regs[0])
    return (high << 16) | low


def encode(value: object, reg_type: RegType, *, length: int = 0, word_order: str = "big",
           codes: Mapping[str, int] | None = None) -> list[int]:
    """Registers for `value`; None (never reported, stale) gives the type's sentinel.

    Integers are rounded, not truncated: an energy register of 1234.6 Wh reads 1235. Values
    that do not fit raise EncodeError; a charger reporting a counter beyond 2^32 Wh is a fault
    to see, not a number to wrap silently.
    """
    if reg_type is RegType.STRING:
        return encode_string("" if value is None else str(value), length)
    if value is None:
        return _sentinel(reg_type, word_order)
    if reg_type is RegType.FLOAT32:
        raw = struct.unpack(">I", struct.pack(">f", float(value)))[0]  # type: ignore[arg-type]
        return _words(raw, word_order)
    if reg_type is RegType.ENUM16 and not isinstance(value, int | bool):
        if codes is None or str(value) not in codes:
            return [NA_UINT16]  # a vendor status outside the spec: "unknown", not a wrong code
        value = codes[str(value)]
    number = _integer(value)
    if reg_type in (RegType.UINT16, RegType.ENUM16, RegType.BOOL16):
        if not 0 <= number <= 0xFFFF:
            raise EncodeError(f"{value} does not fit UINT16")
        return [number]
    if reg_type is RegType.INT16:
        if not -0x8000 <= number <= 0x7FFF:
            raise EncodeError(f"{value} does not fit INT16")
        return [number & 0xFFFF]
    if reg_type is RegType.UINT32:
        if not 0 <= number <= 0xFFFFFFFF:
            raise EncodeError(f"{value} does not fit UINT32")
        return _words(number, word_order)
    if not -0x80000000 <= number <= 0x7FFFFFFF:
        raise EncodeError(f"{value} does not fit INT32")
    return _words(number & 0xFFFFFFFF, word_order)


def _integer(value: object) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise EncodeError(f"{value!r} is not a number") from exc
    if not math.isfinite(number):
        raise EncodeError(f"{value!r} is not finite")
    return round(number)


def _sentinel(reg_type: RegType, word_order: str) -> list[int]:
    if reg_type is RegType.FLOAT32:
        return _words((NAN_F32[0] << 16) | NAN_F32[1], word_order)
    if reg_type is RegType.UINT32:
        return _words(NA_UINT32, word_order)
    if reg_type is RegType.INT32:
        return _words(NA_INT32, word_order)
    if reg_type is RegType.INT16:
        return [NA_INT16]
    return [NA_UINT16]


def encode_string(text: str, length: int) -> list[int]:
    """ASCII, two characters per register, first character in the high byte, NUL padded.

    Characters outside printable ASCII become '?', and text longer than the field is cut: the
    BMS sees a recognisable prefix instead of an error (OCPP serial numbers are up to 25
    characters, firmware versions 50).
    """
    data = "".join(c if 32 <= ord(c) < 127 else "?" for c in text).encode("ascii")[: 2 * length]
    data = data.ljust(2 * length, b"\0")
    return [(data[i] << 8) | data[i + 1] for i in range(0, 2 * length, 2)]


def is_sentinel(regs: Sequence[int], reg_type: RegType, word_order: str = "big") -> bool:
    """Registers holding exactly the type's "not available" value (a string has none)."""
    if reg_type is RegType.STRING:
        return False
    return list(regs) == _sentinel(reg_type, word_order)


def decode_string(regs: Sequence[int]) -> str:
    data = b"".join(struct.pack(">H", r) for r in regs)
    return data.split(b"\0", 1)[0].decode("ascii", errors="replace")


def decode(regs: Sequence[int], reg_type: RegType, *, word_order: str = "big",
           codes: Mapping[str, int] | None = None) -> object:
    """The value a client means by these registers; the type's sentinel gives None.

    Used for client writes (so a BMS can write "not available" to mean "no value") and by the
    tests and the benchmark to read what the server serves.
    """
    if reg_type is RegType.STRING:
        return decode_string(regs)
    if reg_type is RegType.FLOAT32:
        value = struct.unpack(">f", struct.pack(">I", _raw32(regs, word_order)))[0]
        return None if math.isnan(value) else value
    if reg_type in (RegType.UINT32, RegType.INT32):
        raw = _raw32(regs, word_order)
        if reg_type is RegType.UINT32:
            return None if raw == NA_UINT32 else raw
        return None if raw == NA_INT32 else raw - (1 << 32) if raw & 0x80000000 else raw
    raw = regs[0]
    if reg_type is RegType.INT16:
        return None if raw == NA_INT16 else raw - 0x10000 if raw & 0x8000 else raw
    if raw == NA_UINT16:
        return None
    if reg_type is RegType.ENUM16 and codes is not None:
        names = {code: name for name, code in codes.items()}
        return names.get(raw, raw)
    if reg_type is RegType.BOOL16:
        return bool(raw)
    return raw
