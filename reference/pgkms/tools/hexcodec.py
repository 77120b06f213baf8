"""PostgreSQL ``bytea`` hex text (``\\x0a1b...``): what ``pg_wrap`` returns, ``pg_unwrap`` takes."""

from __future__ import annotations

from pgkms.errors import HexInvalid

_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


def to_bytea_hex(data: bytes) -> str:
    return "\\x" + data.hex()


def parse_bytea_hex(text: str, where: str) -> bytes:
    """Parse hex with or without the ``\\x`` prefix; surrounding whitespace is ignored."""
    body = text.strip()
    if body.startswith("\\x"):
        body = body[2:]
    bad = next((i for i, c in enumerate(body) if c not in _HEX_DIGITS), None)
    if bad is not None:
        raise HexInvalid(f"{where}: character {bad} of the hex text is not a hex digit")
    if len(body) % 2:
        raise HexInvalid(f"{where}: expected an even number of hex digits, found {len(body)}")
    return bytes.fromhex(body)
