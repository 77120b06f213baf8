"""Hex text: PostgreSQL ``bytea`` hex (``\\x0a1b...``), and the adapter protocol's strict hex.

Both parsers are linear and run in C (``bytes.fromhex``) on the common, valid input; only a
rejected input is walked character by character, to say where it goes wrong. A regular
expression of digit pairs costs ten times more and was most of the time of a 1 MiB request.
"""

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
    try:
        data = bytes.fromhex(body)
    except ValueError:
        data = None
    # fromhex also skips spaces between digit pairs: the length check refuses them.
    if data is not None and 2 * len(data) == len(body):
        return data
    bad = next((i for i, c in enumerate(body) if c not in _HEX_DIGITS), None)
    if bad is not None:
        raise HexInvalid(f"{where}: character {bad} of the hex text is not a hex digit")
    raise HexInvalid(f"{where}: expected an even number of hex digits, found {len(body)}")


def parse_lower_hex(text: str) -> bytes | None:
    """ADP_02: the bytes of ``text`` if it is lowercase hex digits, an even number of them and
    nothing else; None otherwise.

    ``bytes.fromhex`` accepts every such text, and more (upper case, spaces between pairs); of
    what it accepts, exactly the strict texts come back unchanged from ``.hex()``.
    """
    try:
        data = bytes.fromhex(text)
    except ValueError:
        return None
    return data if data.hex() == text else None
