"""Register encodings a BMS integrator relies on (notes 2.3 and 3.4): word order, sentinels, strings."""

from __future__ import annotations

import math

import pytest

from points.modbus.codec import (
    NA_UINT16,
    EncodeError,
    RegType,
    decode,
    encode,
    encode_string,
    size_of,
)


def test_float32_high_word_first_is_the_documented_example():
    assert encode(7650.0, RegType.FLOAT32) == [0x45EF, 0x1000]


def test_float32_low_word_first_swaps_the_words_only():
    assert encode(7650.0, RegType.FLOAT32, word_order="little") == [0x1000, 0x45EF]


@pytest.mark.parametrize("word_order", ["big", "little"])
def test_float32_round_trips_in_both_word_orders(word_order):
    regs = encode(-12.5, RegType.FLOAT32, word_order=word_order)
    assert decode(regs, RegType.FLOAT32, word_order=word_order) == -12.5


def test_not_available_float_is_quiet_nan_and_decodes_to_none():
    regs = encode(None, RegType.FLOAT32)
    assert regs == [0x7FC0, 0x0000]
    assert decode(regs, RegType.FLOAT32) is None


def test_energy_counter_is_rounded_uint32_wh():
    assert encode(70_000.6, RegType.UINT32) == [0x0001, 0x1171]
    assert decode([0x1171, 0x0001], RegType.UINT32, word_order="little") == 70_001


def test_energy_counter_beyond_32_bits_is_refused_not_wrapped():
    with pytest.raises(EncodeError):
        encode(2**32, RegType.UINT32)


def test_enum_uses_the_given_codes_and_unknown_states_read_not_available():
    codes = {"Available": 0, "Charging": 2}
    assert encode("Charging", RegType.ENUM16, codes=codes) == [2]
    assert encode("VendorSpecial", RegType.ENUM16, codes=codes) == [NA_UINT16]
    assert decode([2], RegType.ENUM16, codes=codes) == "Charging"


def test_strings_are_ascii_high_byte_first_nul_padded_and_cut():
    assert encode_string("ABC", 3) == [0x4142, 0x4300, 0x0000]
    assert encode_string("ABCDEFG", 2) == [0x4142, 0x4344]
    assert decode(encode_string("Zé", 2), RegType.STRING) == "Z?"


def test_int16_and_int32_negative_values():
    assert encode(-2, RegType.INT16) == [0xFFFE]
    assert decode([0xFFFE], RegType.INT16) == -2
    assert decode(encode(-5, RegType.INT32), RegType.INT32) == -5


def test_non_finite_number_for_an_integer_register_is_refused():
    with pytest.raises(EncodeError):
        encode(math.inf, RegType.UINT16)


def test_sizes():
    assert [size_of(t) for t in (RegType.FLOAT32, RegType.UINT32, RegType.UINT16, RegType.BOOL16)] == [2, 2, 1, 1]
    assert size_of(RegType.STRING, 10) == 10
    with pytest.raises(ValueError):
        size_of(RegType.STRING)
