"""The internal keys: generated once, wrapped under the KEK, opened again (spec: Internal keys).

Chapter ``spec/chapters/internal-keys.rst``: KEY_01 (three 64-byte keys, ids 0, 1, 2, drawn in
the order of BOOT_03), KEY_02 (they never change: rotation re-wraps the same keys, ROT_03) and
KEY_03 (a record that unwraps to other than 64 bytes is ``key_length_invalid``).

Opening a set of three records also decides a wrong passphrase from a damaged key file
(START_03). That rule lives here rather than in ``startup`` because recovery opens key sets too,
to judge them valid (REC_02), and startup runs recovery first.
"""

from __future__ import annotations

from dataclasses import dataclass

from pgkms.errors import (
    HmacMismatch,
    KeyLengthInvalid,
    KeyStoreError,
    UnwrapError,
    WrongPassphrase,
)
from pgkms.fs import FileSystem, join
from pgkms.kdf import WrapKeys
from pgkms.keydir import read_key_set
from pgkms.layout import INTERNAL_KEY_LEN, KEY_FILE_NAMES, KeyId
from pgkms.randomness import RandomSource
from pgkms.record import KeyRecord
from pgkms.secret import Secret
from pgkms.shown import shown
from pgkms.wrap import unwrap, wrap


@dataclass(frozen=True, repr=False)
class InternalKeys:
    """The three internal keys, in id order (KEY_01). Never printed."""

    sql: Secret
    block: Secret
    wal: Secret

    def __repr__(self) -> str:
        return "<InternalKeys: redacted>"

    def by_id(self) -> dict[KeyId, Secret]:
        return {KeyId.SQL: self.sql, KeyId.BLOCK: self.block, KeyId.WAL: self.wal}

    @classmethod
    def from_ids(cls, keys: dict[KeyId, Secret]) -> InternalKeys:
        return cls(sql=keys[KeyId.SQL], block=keys[KeyId.BLOCK], wal=keys[KeyId.WAL])


def generate_internal_keys(random: RandomSource) -> InternalKeys:
    """KEY_01, BOOT_03: draw the three 64-byte keys in id order."""
    keys: dict[KeyId, Secret] = {}
    for key_id in KeyId:
        raw = random(INTERNAL_KEY_LEN)
        if len(raw) != INTERNAL_KEY_LEN:
            raise KeyLengthInvalid(
                f"internal key {key_id.value}: expected {INTERNAL_KEY_LEN} bytes, found {len(raw)}"
            )
        keys[key_id] = Secret(raw)
    return InternalKeys.from_ids(keys)


def wrap_key_set(kek: WrapKeys, keys: InternalKeys, random: RandomSource) -> list[KeyRecord]:
    """Wrap each internal key under the KEK, one IV per key drawn in id order (BOOT_03, ROT_03)."""
    return [
        KeyRecord(key_id=key_id.value, wrapped_key=wrap(kek, key, random))
        for key_id, key in keys.by_id().items()
    ]


def open_key_set(kek: WrapKeys, records: list[KeyRecord], directory: str) -> InternalKeys:
    """START_03: unwrap every record; tell a wrong passphrase from a damaged key file.

    Every record is tried before deciding: when all three fail their HMAC the passphrase is
    wrong (a damaged set of three is indistinguishable, and reported the same way); when only
    some fail, the passphrase is right and the failing files are damaged. The 2020 patch
    reported every failure, even a missing file, as a wrong passphrase (deviation DEV_MESSAGES).
    """
    keys: dict[KeyId, Secret] = {}
    failures: list[KeyStoreError | UnwrapError] = []  # in id order: the first one is reported
    for record in records:
        path = shown(join(directory, KEY_FILE_NAMES[record.key_id]))
        try:
            key = unwrap(kek, record.wrapped_key, what=path)
        except UnwrapError as exc:
            failures.append(exc)
            continue
        if len(key) != INTERNAL_KEY_LEN:
            # KEY_03 is one more way for a file to fail; it takes its place in id order.
            failures.append(
                KeyLengthInvalid(
                    f"{path}: unwrapped key is {len(key)} bytes, expected {INTERNAL_KEY_LEN}"
                )
            )
            continue
        keys[KeyId(record.key_id)] = key
    if len(failures) == len(records) and all(isinstance(e, HmacMismatch) for e in failures):
        raise WrongPassphrase(
            f"{shown(directory)}: cluster passphrase does not match expected passphrase "
            "(no key file authenticates under it)"
        )
    if failures:
        raise failures[0]
    return InternalKeys.from_ids(keys)


def load_key_set(fs: FileSystem, directory: str, kek: WrapKeys) -> InternalKeys:
    """Read and open the key set in ``directory``."""
    return open_key_set(kek, read_key_set(fs, directory), directory)
