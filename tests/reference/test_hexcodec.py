"""Hex parsing (ADP_02 for the adapters, bytea hex for the CLI): the fast parsers accept and
refuse exactly what the plain definitions do, in both implementations."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pgkms.errors import HexInvalid
from pgkms.tools.hexcodec import parse_bytea_hex, parse_lower_hex
from pgkms_independent.codec import is_lower_hex

# The definitions, written the slow and obvious way.
STRICT = re.compile(r"(?:[0-9a-f][0-9a-f])*")
BYTEA = re.compile(r"(?:[0-9a-fA-F][0-9a-fA-F])*")

# Texts close to hex: digits of both cases, the characters fromhex skips or chokes on.
near_hex = st.text(alphabet="0123456789abcdefABCDEF \t\n\\xg\u00e9\u0663", max_size=40)
strict_hex = st.binary(max_size=40).map(bytes.hex)


@pytest.mark.req("ADP_02")
@given(st.one_of(near_hex, strict_hex))
def test_parse_lower_hex_is_the_strict_definition(text: str) -> None:
    parsed = parse_lower_hex(text)
    if STRICT.fullmatch(text):
        assert parsed == bytes.fromhex(text)
    else:
        assert parsed is None


@pytest.mark.req("ADP_02")
@given(st.one_of(near_hex, strict_hex))
def test_independent_is_lower_hex_is_the_strict_definition(text: str) -> None:
    assert is_lower_hex(text) == (STRICT.fullmatch(text) is not None)


@pytest.mark.req("ADP_02")
@pytest.mark.parametrize(
    "text", ["AB", "0", "ab cd", " ab", "ab\n", "\\xab", "0x00", "\u0663\u0663"]
)
def test_strict_hex_refusals(text: str) -> None:
    assert parse_lower_hex(text) is None
    assert not is_lower_hex(text)


def test_strict_hex_of_a_mebibyte() -> None:
    data = bytes(range(256)) * 4096
    assert parse_lower_hex(data.hex()) == data
    assert parse_lower_hex(data.hex() + "0") is None
    assert parse_lower_hex(data.hex()[:-1] + "F") is None


@given(st.one_of(near_hex, strict_hex), st.booleans())
def test_parse_bytea_hex_is_the_definition(body: str, prefixed: bool) -> None:
    text = ("\\x" if prefixed else "") + body
    stripped = text.strip()
    core = stripped[2:] if stripped.startswith("\\x") else stripped
    if BYTEA.fullmatch(core):
        assert parse_bytea_hex(text, "input") == bytes.fromhex(core)
        return
    with pytest.raises(HexInvalid) as error:
        parse_bytea_hex(text, "input")
    bad = next((i for i, c in enumerate(core) if c not in "0123456789abcdefABCDEF"), None)
    if bad is None:
        assert error.value.message == (
            f"input: expected an even number of hex digits, found {len(core)}"
        )
    else:
        assert error.value.message == f"input: character {bad} of the hex text is not a hex digit"
