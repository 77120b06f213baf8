"""Every byte format of the design: sizes, the wrapped value, the key record, key file names.

Parsing here is pure (bytes in, values out) and checks in the order the spec numbers its
steps, so that a malformed input yields the same code in every implementation:
- wrapped value (WRAP_01, WRAP_05, WRAP_06): ``tag[32] || iv[16] || ciphertext[16k], k >= 1``;
- key record (DISK_03..DISK_05): ``uint32 little-endian id || wrapped key[128]``;
- key file names (DISK_02): the id as four upper-case hex digits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from pgkms_independent.failures import Code, FormatFailure

# -- sizes (2020 values: they must not change) --------------------------------------------------
BLOCK: Final = 16  # AES block
TAG_SIZE: Final = 32  # HMAC-SHA256 output
IV_SIZE: Final = 16
HEADER_SIZE: Final = TAG_SIZE + IV_SIZE  # 48
SMALLEST_WRAPPED: Final = HEADER_SIZE + BLOCK  # 64: even an empty plaintext pads to one block
HALF_KEY: Final = 32  # AES-256 key, and HMAC key, sizes
INTERNAL_KEY_SIZE: Final = 2 * HALF_KEY  # 64 (KEY_01)
WRAPPED_KEY_SIZE: Final = HEADER_SIZE + INTERNAL_KEY_SIZE + BLOCK  # 128: 64 bytes pad to 80
ID_FIELD_SIZE: Final = 4
RECORD_SIZE: Final = ID_FIELD_SIZE + WRAPPED_KEY_SIZE  # 132 (DISK_03)

KEY_IDS: Final = (0, 1, 2)  # SQL, block, WAL (KEY_01)
PASSPHRASE_FLOOR: Final = 64  # PASS_04, PASS_07
PASSPHRASE_CEILING: Final = 1024  # PASS_05, PASS_06
PROMPT: Final = "Enter database encryption pass phrase:"  # PASS_02

CURRENT_DIR: Final = "pg_cryptokeys"  # DISK_01
STAGING_DIR: Final = "pg_cryptokeys_tmp"  # ROT_04


def file_name_for(key_id: int) -> str:
    """DISK_02: ``0`` -> ``0000``; four upper-case hex digits."""
    return format(key_id, "04X")


KEY_FILE_NAMES: Final = tuple(file_name_for(i) for i in KEY_IDS)


def sealed_size(plaintext_size: int) -> int:
    """WRAP_02: PKCS#7 always adds 1..16 bytes, so the ciphertext is the next whole block."""
    return HEADER_SIZE + (plaintext_size // BLOCK + 1) * BLOCK


# -- wrapped values ------------------------------------------------------------------------------
@dataclass(frozen=True)
class WrappedParts:
    """The three fields of a wrapped value (WRAP_01)."""

    tag: bytes
    iv: bytes
    ciphertext: bytes

    def join(self) -> bytes:
        return self.tag + self.iv + self.ciphertext


def split_wrapped(blob: bytes, label: str) -> WrappedParts:
    """WRAP_05, WRAP_06: check the length, then cut the value into its fields."""
    size = len(blob)
    if size < SMALLEST_WRAPPED:  # step 1
        raise FormatFailure(
            Code.WRAPPED_TOO_SHORT,
            f"{label}: {size} bytes, but a wrapped value has at least {SMALLEST_WRAPPED}",
        )
    body = size - HEADER_SIZE
    if body % BLOCK:  # step 2
        raise FormatFailure(
            Code.WRAPPED_LENGTH_INVALID,
            f"{label}: the ciphertext after offset {HEADER_SIZE} is {body} bytes, "
            f"not a multiple of {BLOCK}",
        )
    return WrappedParts(
        tag=bytes(blob[:TAG_SIZE]),
        iv=bytes(blob[TAG_SIZE:HEADER_SIZE]),
        ciphertext=bytes(blob[HEADER_SIZE:]),
    )


# -- key records ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Record:
    """One key file's content: the id it claims and the internal key wrapped under the KEK."""

    key_id: int
    wrapped_key: bytes


def pack_record(key_id: int, wrapped_key: bytes) -> bytes:
    """DISK_03: the 132-byte record. The caller guarantees 0 <= key_id < 2**32."""
    if len(wrapped_key) != WRAPPED_KEY_SIZE:
        raise ValueError(
            f"wrapped key: {len(wrapped_key)} bytes, a record holds {WRAPPED_KEY_SIZE}"
        )
    return key_id.to_bytes(ID_FIELD_SIZE, "little") + wrapped_key


def unpack_record(data: bytes, expected_id: int | None, label: str) -> Record:
    """DISK_03..DISK_05: size, then id range, then id against the file name (if known)."""
    if len(data) != RECORD_SIZE:
        raise FormatFailure(
            Code.RECORD_SIZE_INVALID,
            f"{label}: {len(data)} bytes found, a key record is {RECORD_SIZE}",
        )
    key_id = int.from_bytes(data[:ID_FIELD_SIZE], "little")
    if key_id not in KEY_IDS:
        raise FormatFailure(
            Code.RECORD_ID_INVALID,
            f"{label}: id {key_id} at offset 0 is not a key id (0, 1 or 2)",
        )
    if expected_id is not None and key_id != expected_id:
        raise FormatFailure(
            Code.RECORD_ID_MISMATCH,
            f"{label}: id {key_id} at offset 0, but the file name says {expected_id}",
        )
    return Record(key_id, bytes(data[ID_FIELD_SIZE:]))


# -- hex text (adapter protocol ADP_02) ----------------------------------------------------------
def is_lower_hex(text: str) -> bool:
    """Lowercase hex digits, two per byte, nothing else.

    Checked in C, in linear time (a pattern of digit pairs took most of a 1 MiB request's
    time): ``bytes.fromhex`` refuses every other character but the ASCII spaces it skips
    between pairs, which the length rules out; upper-case digits are what ``lower`` changes.
    """
    try:
        data = bytes.fromhex(text)
    except ValueError:
        return False
    return 2 * len(data) == len(text) and text == text.lower()
