"""SQL-level wrapping with the SQL key (SQL_01..SQL_04) and the internal key length (KEY_03)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from pgkms.bootstrap import bootstrap
from pgkms.errors import HmacMismatch, KeyLengthInvalid, WrappedLengthInvalid, WrappedTooShort
from pgkms.internal_keys import InternalKeys
from pgkms.kdf import derive_kek, split_internal_key
from pgkms.randomness import ScriptedRandom
from pgkms.secret import Secret
from pgkms.sqlwrap import pg_unwrap, pg_wrap
from pgkms.startup import startup
from pgkms.wrap import unwrap, wrap

from .helpers import OLD

SQL, BLOCK, WAL = (Secret(bytes([b]) * 32 + bytes([b + 1]) * 32) for b in (10, 20, 30))
KEYS = InternalKeys(SQL, BLOCK, WAL)


@pytest.mark.req("SQL_01")
def test_pg_wrap_is_the_wrap_format_under_the_sql_key() -> None:
    iv = bytes(range(16))
    wrapped = pg_wrap(KEYS, Secret(b"my secret passward"), ScriptedRandom([iv]))
    assert len(wrapped) == 80  # the seed's example: 18 bytes wrap to 80
    assert wrapped == wrap(
        split_internal_key(SQL), Secret(b"my secret passward"), ScriptedRandom([iv])
    )
    with pytest.raises(HmacMismatch):  # not the block key
        unwrap(split_internal_key(BLOCK), wrapped)


@pytest.mark.req("SQL_02")
@pytest.mark.parametrize("length", [0, 1, 47, 63])
def test_pg_unwrap_rejects_short_input_first(length: int) -> None:
    with pytest.raises(WrappedTooShort, match="invalid wrapped key input"):
        pg_unwrap(KEYS, bytes(length))


@pytest.mark.req("SQL_03")
def test_pg_unwrap_other_failures_keep_their_codes() -> None:
    wrapped = pg_wrap(KEYS, Secret(b"x"))
    with pytest.raises(HmacMismatch):
        pg_unwrap(KEYS, wrapped[:-1] + bytes([wrapped[-1] ^ 1]))
    with pytest.raises(WrappedLengthInvalid):
        pg_unwrap(KEYS, wrapped + b"\0")


@pytest.mark.req("SQL_04")
def test_pg_unwrap_returns_bytes_without_encoding_checks() -> None:
    secret = b"\xff\xfe\x00 not utf-8 \xc3"
    assert pg_unwrap(KEYS, pg_wrap(KEYS, Secret(secret))).reveal() == secret


@pytest.mark.req("KEY_03")
def test_internal_key_of_wrong_length_is_rejected(tmp_path: Path) -> None:
    bootstrap(str(tmp_path), Secret(OLD))
    kek = derive_kek(Secret(OLD))
    path = tmp_path / "pg_cryptokeys/0001"
    path.write_bytes(struct.pack("<I", 1) + wrap(kek, Secret(bytes(65))))  # still 132 bytes
    with pytest.raises(KeyLengthInvalid, match="0001: unwrapped key is 65 bytes, expected 64"):
        startup(str(tmp_path), Secret(OLD))
