"""A key set: the three key records of one directory, read, checked and opened (DISK_06, START_03).

A directory holds a *complete* key set when it contains exactly ``0000``, ``0001`` and ``0002``,
each a well-formed record whose id matches its name. It holds a *valid* key set for a passphrase
when, in addition, every record unwraps under the KEK derived from that passphrase. Recovery
decides by validity, never by counting files (spec REC_02).
"""

from __future__ import annotations

from dataclasses import dataclass

from pgkms.errors import (
    HmacMismatch,
    KeyDirectoryMissing,
    KeyFileMissing,
    KeyLengthInvalid,
    KeyStoreError,
    UnexpectedFile,
    UnwrapError,
    WrongPassphrase,
)
from pgkms.fs import FileSystem, join
from pgkms.kdf import WrapKeys, split_internal_key
from pgkms.layout import (
    INTERNAL_KEY_LEN,
    KEY_DIR,
    KEY_DIR_MODE,
    KEY_FILE_MODE,
    KEY_FILE_NAMES,
    KEY_TMP_DIR,
    KeyId,
)
from pgkms.randomness import RandomSource
from pgkms.record import KeyRecord, decode_record, encode_record
from pgkms.secret import Secret
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


def read_key_set(fs: FileSystem, directory: str) -> list[KeyRecord]:
    """DISK_06, DISK_03..05: list ``directory`` and read its three records, checking each.

    Checks run in the spec's order and the first failure wins: the directory exists; every
    entry is one of the three key file names (in sorted order); every key file is present (in
    id order); then each record, in id order.
    """
    st = fs.stat(directory)
    if st is None:
        raise KeyDirectoryMissing(f"{directory}: key directory does not exist")
    if st.kind != "dir":
        raise KeyDirectoryMissing(f"{directory}: expected a directory, found a {st.kind}")
    names = fs.list_dir(directory)
    for name in names:
        if name not in KEY_FILE_NAMES:
            raise UnexpectedFile(
                f"{join(directory, name)}: unexpected entry; a key directory holds only "
                + ", ".join(KEY_FILE_NAMES)
            )
    for name in KEY_FILE_NAMES:
        if name not in names:
            raise KeyFileMissing(f"{join(directory, name)}: key file is missing")
    records = []
    for key_id in KeyId:
        path = join(directory, KEY_FILE_NAMES[key_id])
        records.append(decode_record(fs.read_file(path), key_id.value, path))
    return records


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
        path = join(directory, KEY_FILE_NAMES[record.key_id])
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
            f"{directory}: cluster passphrase does not match expected passphrase "
            "(no key file authenticates under it)"
        )
    if failures:
        raise failures[0]
    return InternalKeys.from_ids(keys)


def load_key_set(fs: FileSystem, directory: str, kek: WrapKeys) -> InternalKeys:
    """Read and open the key set in ``directory``."""
    return open_key_set(kek, read_key_set(fs, directory), directory)


def write_key_set(fs: FileSystem, directory: str, records: list[KeyRecord]) -> None:
    """DISK_01, DISK_02, DISK_07: create ``directory`` (0700) holding the records (0600 each).

    Each file is created exclusively, written and fsynced, then the directory itself is
    fsynced so that its entries survive a crash. Making the directory's own entry durable is
    the caller's job: it alone knows the parent's role in its protocol.
    """
    fs.mkdir(directory, KEY_DIR_MODE)
    for record in records:
        path = join(directory, KEY_FILE_NAMES[record.key_id])
        fs.create_file(path, encode_record(record), KEY_FILE_MODE)
        fs.fsync_file(path)
    fs.fsync_dir(directory)


def remove_tree(fs: FileSystem, directory: str) -> None:
    """Remove ``directory`` and everything in it, one entry at a time, durably.

    The entries are unlinked and the directory fsynced before the directory itself goes, so a
    crash leaves either the whole directory, a durable subset of it, or nothing.
    """
    for name in fs.list_dir(directory):
        path = join(directory, name)
        st = fs.stat(path)
        if st is not None and st.kind == "dir":
            remove_tree(fs, path)
        else:
            fs.unlink(path)
    fs.fsync_dir(directory)
    fs.rmdir(directory)


def replace_key_set(fs: FileSystem, datadir: str, records: list[KeyRecord]) -> None:
    """ROT_04..ROT_06: durably replace ``datadir/pg_cryptokeys`` by a set of records.

    The new set is complete and durable in ``pg_cryptokeys_tmp`` before the current one is
    touched, so at every instant one complete key set is on disk (REC_05), and recovery can
    finish the job after a crash at any point.
    """
    current = join(datadir, KEY_DIR)
    tmp = join(datadir, KEY_TMP_DIR)
    write_key_set(fs, tmp, records)
    fs.fsync_dir(datadir)
    remove_tree(fs, current)
    fs.fsync_dir(datadir)
    fs.rename(tmp, current)
    fs.fsync_dir(datadir)


def split_sql_key(keys: InternalKeys) -> WrapKeys:
    """SQL_01: the SQL key's halves, used by ``pg_wrap`` and ``pg_unwrap``."""
    return split_internal_key(keys.sql)
