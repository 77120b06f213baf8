"""SQL-level wrapping of user secrets with the SQL key: ``pg_wrap``, ``pg_unwrap``.

Chapter ``spec/chapters/sql-wrapping.rst``: SQL_01..SQL_04.
"""

from __future__ import annotations

from pgkms.errors import WrappedTooShort
from pgkms.internal_keys import InternalKeys
from pgkms.kdf import WrapKeys, split_internal_key
from pgkms.layout import WRAPPED_MIN_LEN
from pgkms.randomness import RandomSource, system_random
from pgkms.secret import Secret
from pgkms.wrap import unwrap, wrap


def split_sql_key(keys: InternalKeys) -> WrapKeys:
    """SQL_01: the SQL key's halves, used by ``pg_wrap`` and ``pg_unwrap``."""
    return split_internal_key(keys.sql)


def pg_wrap(keys: InternalKeys, secret: Secret, random: RandomSource = system_random) -> bytes:
    """SQL_01: wrap the secret's bytes with the SQL key (id 0)."""
    return wrap(split_sql_key(keys), secret, random)


def pg_unwrap(keys: InternalKeys, wrapped: bytes) -> Secret:
    """SQL_02..SQL_04: unwrap a value made by ``pg_wrap``.

    SQL_02: input shorter than 64 bytes is rejected first, as the patch did ("invalid wrapped
    key input"); every other failure (SQL_03) is an unwrap error with its own code, which the
    server reports as "could not unwrap the given secret". SQL_04: the result is returned as
    bytes; like the patch, no text-encoding check is made.
    """
    if len(wrapped) < WRAPPED_MIN_LEN:
        raise WrappedTooShort(
            f"invalid wrapped key input: expected at least {WRAPPED_MIN_LEN} bytes, "
            f"found {len(wrapped)}"
        )
    return unwrap(split_sql_key(keys), wrapped, what="wrapped secret")
