"""The on-disk key record: ``uint32 id (little-endian) || wrapped key (128 bytes)``.

Chapter ``spec/chapters/on-disk-format.rst``: DISK_03..DISK_05, DISK_08. The files and the
directory that hold the records are ``keydir.py``.

Decoding checks, in this order: size (DISK_03, any other size refused: DISK_08), id range
(DISK_04), id equal to the file name (DISK_05). The last check is ours: the 2020 patch placed a
key by the id inside the file and never compared it with the name, so swapped files went
unnoticed (spec deviation DEV_RECORD_ID).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from pgkms.errors import RecordIdInvalid, RecordIdMismatch, RecordSizeInvalid
from pgkms.layout import RECORD_ID_LEN, RECORD_LEN, WRAPPED_KEY_LEN, KeyId

_ID = struct.Struct("<I")  # pinned little-endian: the patch wrote host order on LE machines


@dataclass(frozen=True)
class KeyRecord:
    key_id: int
    wrapped_key: bytes  # not secret on its own: it is useless without the passphrase


def encode_record(record: KeyRecord) -> bytes:
    """DISK_03: the 132-byte record."""
    if len(record.wrapped_key) != WRAPPED_KEY_LEN:
        raise ValueError(
            f"wrapped key: expected {WRAPPED_KEY_LEN} bytes, found {len(record.wrapped_key)}"
        )
    return _ID.pack(record.key_id) + record.wrapped_key


def decode_record(data: bytes, file_id: int | None, where: str) -> KeyRecord:
    """DISK_03..DISK_05: parse a record read from ``where`` (a path, for messages).

    ``file_id`` is the id the file's name promises; None skips the name check (inspection of a
    record that has no file name).
    """
    if len(data) != RECORD_LEN:
        raise RecordSizeInvalid(f"{where}: expected {RECORD_LEN} bytes, found {len(data)}")
    (key_id,) = _ID.unpack_from(data)
    if key_id not in {k.value for k in KeyId}:
        raise RecordIdInvalid(f"{where}: key id at offset 0 is {key_id}, expected one of 0, 1, 2")
    if file_id is not None and key_id != file_id:
        raise RecordIdMismatch(
            f"{where}: key id at offset 0 is {key_id}, expected {file_id} from the file name"
        )
    return KeyRecord(key_id=key_id, wrapped_key=bytes(data[RECORD_ID_LEN:]))
