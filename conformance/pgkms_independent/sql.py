"""``pg_wrap`` / ``pg_unwrap``: user secrets under the SQL key (SQL_01..SQL_04)."""

from __future__ import annotations

from pgkms_independent.codec import SMALLEST_WRAPPED
from pgkms_independent.failures import Code, FormatFailure
from pgkms_independent.hidden import Hidden
from pgkms_independent.primitives import KeyPair, open_sealed, seal


def pg_wrap(sql_key: Hidden, secret: Hidden, iv: bytes) -> bytes:
    """SQL_01: the wrap format of WRAP_*, under the SQL key's halves."""
    return seal(KeyPair.from_internal_key(sql_key), secret, iv)


def pg_unwrap(sql_key: Hidden, wrapped: bytes) -> Hidden:
    """SQL_02..SQL_04: short input is refused first ("invalid wrapped key input"); any other
    failure keeps its WRAP_* code; the result is bytes, never checked as text."""
    if len(wrapped) < SMALLEST_WRAPPED:
        raise FormatFailure(
            Code.WRAPPED_TOO_SHORT,
            f"invalid wrapped key input: {len(wrapped)} bytes, at least {SMALLEST_WRAPPED} needed",
        )
    return open_sealed(KeyPair.from_internal_key(sql_key), wrapped, "wrapped secret")
