"""Every size, name and byte layout of the design, as data.

Chapter ``spec/chapters/on-disk-format.rst``, section "Sizes and names", renders every constant
here; the byte layouts are rendered in their own chapters (wrap format, on-disk format). Each
section below names the chapter its values belong to.

The spec's byte-layout tables are generated from the ``*_LAYOUT`` tables below, so the document
and the code cannot drift apart. Values pinned by the 2020 patch are marked "(2020)"; they must
not change, because conforming implementations read and write the patch's files.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Final


@dataclass(frozen=True)
class Field:
    """One field of a byte layout. ``size`` is None for a variable-length tail."""

    name: str
    offset: int
    size: int | None
    description: str


# --- passphrase (spec: Passphrase acquisition) ---------------------------------------------------
PASSPHRASE_PROMPT: Final = "Enter database encryption pass phrase:"  # noqa: S105  # %p (2020)
PASSPHRASE_MIN_LEN: Final = 64  # (2020) "must be more than 64 bytes", yet exactly 64 is accepted
PASSPHRASE_MAX_LEN: Final = 1024  # (2020) the patch reads at most this many bytes

# --- key derivation and wrapping (spec: Key derivation, Wrap format) -----------------------------
KEK_DIGEST_LEN: Final = 64  # SHA-512
ENC_KEY_LEN: Final = 32  # AES-256
MAC_KEY_LEN: Final = 32  # HMAC-SHA256 key
HMAC_LEN: Final = 32  # HMAC-SHA256 output
IV_LEN: Final = 16
AES_BLOCK: Final = 16
WRAP_OVERHEAD: Final = HMAC_LEN + IV_LEN
WRAPPED_MIN_LEN: Final = WRAP_OVERHEAD + AES_BLOCK  # 64: an empty plaintext still pads one block

WRAP_LAYOUT: Final = (
    Field("hmac", 0, HMAC_LEN, "HMAC-SHA256(mac key, ciphertext); does not cover the IV"),
    Field("iv", HMAC_LEN, IV_LEN, "AES-CBC initialisation vector, fresh random per wrap"),
    Field("ciphertext", WRAP_OVERHEAD, None, "AES-256-CBC(enc key, iv, PKCS#7-pad(plaintext))"),
)


def wrapped_len(plaintext_len: int) -> int:
    """Length of a wrapped value: padding always adds 1..16 bytes (spec WRAP_02)."""
    return WRAP_OVERHEAD + AES_BLOCK * (plaintext_len // AES_BLOCK + 1)


# --- internal keys (spec: Internal keys) ---------------------------------------------------------
class KeyId(IntEnum):
    """The three internal keys and their ids (2020)."""

    SQL = 0
    BLOCK = 1
    WAL = 2


INTERNAL_KEY_LEN: Final = ENC_KEY_LEN + MAC_KEY_LEN  # 64: AES key || HMAC key
WRAPPED_KEY_LEN: Final = wrapped_len(INTERNAL_KEY_LEN)  # 128

# --- on-disk format (spec: On-disk format) -------------------------------------------------------
KEY_DIR: Final = "pg_cryptokeys"  # (2020)
KEY_TMP_DIR: Final = "pg_cryptokeys_tmp"  # (2020)
KEY_DIR_MODE: Final = 0o700
KEY_FILE_MODE: Final = 0o600
RECORD_ID_LEN: Final = 4
RECORD_LEN: Final = RECORD_ID_LEN + WRAPPED_KEY_LEN  # 132 (2020)

RECORD_LAYOUT: Final = (
    Field("id", 0, RECORD_ID_LEN, "key id, uint32 little-endian; must equal the file name"),
    Field("wrapped_key", RECORD_ID_LEN, WRAPPED_KEY_LEN, "the internal key wrapped under the KEK"),
)


def key_file_name(key_id: int) -> str:
    """File name of a key record: the id as four upper-case hex digits (2020), e.g. ``0002``."""
    return f"{key_id:04X}"


KEY_FILE_NAMES: Final = tuple(key_file_name(k) for k in KeyId)

# --- the environment (spec: Concurrency and the environment) -------------------------------------
LOCK_FILE: Final = "pg_cryptokeys.lock"  # CONC_01: in PGDATA, never removed
LOCK_FILE_MODE: Final = 0o600
LOCK_TIMEOUT: Final = 10.0  # CONC_02: seconds a procedure waits for the lock by default
LOCK_RETRY_INTERVAL: Final = 0.05  # CONC_02: retry at least every 100 ms
POSTMASTER_PID: Final = "postmaster.pid"  # CONC_03: the running server's PID file
KEY_FILE_READ_LIMIT: Final = RECORD_LEN + 1  # ENV_03: one byte more than a record tells "too long"
KEY_DIR_MODE_ALLOWED: Final = 0o750  # ENV_05: the group mode PostgreSQL allows
KEY_FILE_MODE_ALLOWED: Final = 0o640

# --- the passphrase command (spec: Passphrase acquisition, PASS_08) ------------------------------
PASSPHRASE_COMMAND_TIMEOUT: Final = 60.0  # seconds; pg_ctl's own default wait (PGCTLTIMEOUT)
