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
    KmsError,
    NotRegularFile,
    PermissionsTooOpen,
    RecordSizeInvalid,
    RotationIncomplete,
    SymlinkRefused,
    UnexpectedFile,
    UnwrapError,
    WrongPassphrase,
)
from pgkms.fs import FileSystem, Stat, join, kind_name
from pgkms.kdf import WrapKeys, split_internal_key
from pgkms.layout import (
    INTERNAL_KEY_LEN,
    KEY_DIR,
    KEY_DIR_MODE,
    KEY_DIR_MODE_ALLOWED,
    KEY_FILE_MODE,
    KEY_FILE_MODE_ALLOWED,
    KEY_FILE_NAMES,
    KEY_TMP_DIR,
    RECORD_LEN,
    KeyId,
)
from pgkms.randomness import RandomSource
from pgkms.record import KeyRecord, decode_record, encode_record
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


def check_key_directory(st: Stat | None, directory: str, check_modes: bool = True) -> None:
    """DISK_06 step 1 with ENV_01 and ENV_05: a real directory, no more open than 0750."""
    if st is None:
        raise KeyDirectoryMissing(f"{shown(directory)}: key directory does not exist")
    if st.kind == "symlink":
        raise SymlinkRefused(
            f"{shown(directory)}: key directory is a symbolic link; it is never followed"
        )
    if st.kind != "dir":
        raise KeyDirectoryMissing(
            f"{shown(directory)}: expected a directory, found a {kind_name(st.kind)}"
        )
    if check_modes and st.mode & ~KEY_DIR_MODE_ALLOWED:
        raise PermissionsTooOpen(
            f"{shown(directory)}: key directory has mode {st.mode:04o}, "
            f"expected no bits beyond {KEY_DIR_MODE_ALLOWED:04o}"
        )


def read_key_file(fs: FileSystem, path: str, key_id: KeyId, check_modes: bool = True) -> KeyRecord:
    """DISK_06 step 4 for one file: ENV_01, ENV_02, ENV_05, then the bounded read (ENV_03)
    and the record checks (DISK_03..DISK_05)."""
    st = fs.stat(path)
    if st is None:
        raise KeyFileMissing(f"{shown(path)}: key file is missing")
    if st.kind == "symlink":
        raise SymlinkRefused(f"{shown(path)}: key file is a symbolic link; it is never followed")
    if st.kind != "file":
        raise NotRegularFile(
            f"{shown(path)}: expected a regular file, found a {kind_name(st.kind)}"
        )
    if check_modes and st.mode & ~KEY_FILE_MODE_ALLOWED:
        raise PermissionsTooOpen(
            f"{shown(path)}: key file has mode {st.mode:04o}, "
            f"expected no bits beyond {KEY_FILE_MODE_ALLOWED:04o}"
        )
    data = fs.read_file(path)  # at most one byte more than a record, whatever the size
    if len(data) > RECORD_LEN:
        raise RecordSizeInvalid(
            f"{shown(path)}: expected {RECORD_LEN} bytes, found {max(st.size, len(data))}"
        )
    return decode_record(data, key_id.value, shown(path))


def read_key_set(fs: FileSystem, directory: str, check_modes: bool = True) -> list[KeyRecord]:
    """DISK_06, DISK_03..05, ENV_01..ENV_05: list ``directory`` and read its three records.

    Checks run in the spec's order and the first failure wins: the directory exists, is not a
    symbolic link, is a directory, and is no more open than 0750; every entry is one of the
    three key file names (in sorted order); every key file is present (in id order); then each
    file in id order: not a symbolic link, a regular file, no more open than 0640, then its
    record. ``check_modes=False`` judges structure alone (a bootstrap deciding whether a
    leftover is a complete set, BOOT_05).
    """
    check_key_directory(fs.stat(directory), directory, check_modes)
    names = fs.list_dir(directory)
    for name in names:
        if name not in KEY_FILE_NAMES:
            raise UnexpectedFile(
                f"{shown(join(directory, name))}: unexpected entry; a key directory holds only "
                + ", ".join(KEY_FILE_NAMES)
            )
    for name in KEY_FILE_NAMES:
        if name not in names:
            raise KeyFileMissing(f"{shown(join(directory, name))}: key file is missing")
    return [
        read_key_file(fs, join(directory, KEY_FILE_NAMES[key_id]), key_id, check_modes)
        for key_id in KeyId
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


def write_key_set(fs: FileSystem, directory: str, records: list[KeyRecord]) -> None:
    """DISK_01, DISK_02, DISK_07: create ``directory`` (0700) holding the records (0600 each).

    Each file is created exclusively, written and fsynced, then the directory itself is
    fsynced so that its entries survive a crash. Making the directory's own entry durable is
    the caller's job: it alone knows the parent's role in its protocol.
    """
    fs.mkdir(directory, KEY_DIR_MODE)
    write_key_files(fs, directory, records)


def write_key_files(fs: FileSystem, directory: str, records: list[KeyRecord]) -> None:
    """``write_key_set`` after its ``mkdir``: the files, each fsynced, then the directory."""
    for record in records:
        path = join(directory, KEY_FILE_NAMES[record.key_id])
        fs.create_file(path, encode_record(record), KEY_FILE_MODE)
        fs.fsync_file(path)
    fs.fsync_dir(directory)


def remove_tree(fs: FileSystem, directory: str) -> None:
    """ENV_04: remove ``directory`` and everything in it, one entry at a time, durably.

    Iterative, so no depth of nesting can exhaust the stack; a symbolic link is unlinked
    itself, never followed (ENV_01), and a directory that is a link is refused. Each
    directory's entries are removed and the directory fsynced before it goes, so a crash leaves
    either the whole directory, a durable subset of it, or nothing.
    """
    top = fs.stat(directory)
    if top is not None and top.kind == "symlink":
        raise SymlinkRefused(
            f"{shown(directory)}: is a symbolic link; nothing is removed through it"
        )
    pending: list[tuple[str, bool]] = [(directory, False)]  # (path, its entries are gone)
    while pending:
        path, emptied = pending.pop()
        if emptied:
            fs.fsync_dir(path)
            fs.rmdir(path)
            continue
        pending.append((path, True))
        for name in fs.list_dir(path):
            entry = join(path, name)
            st = fs.stat(entry)
            if st is None:
                continue
            if st.kind == "dir":
                pending.append((entry, False))
            else:
                fs.unlink(entry)


def discard_quietly(fs: FileSystem, datadir: str, directory: str) -> None:
    """ROT_07, BOOT_05: remove a directory this procedure wrote, on its way out of a failure.

    The caller reports its own failure, so a failure here is not raised over it; what is left
    is what a crash at this point would leave, which recovery and bootstrap handle.
    """
    try:
        if fs.stat(directory) is not None:
            remove_tree(fs, directory)
            fs.fsync_dir(datadir)
    except KmsError:
        pass


NO_RETURN_ROTATION = (
    "the keys now open under the NEW passphrase; the next startup (or recovery) under the new "
    "passphrase completes the rotation"
)
# Both clusters' sets open under the one passphrase, so recovery adopts the copy only once the
# new cluster's own set is incomplete (REC_02): if the failure came before any file of it was
# removed, recovery keeps that set and the copy is simply undone.
NO_RETURN_UPGRADE = (
    f"the copied keys are complete in {KEY_TMP_DIR}; the next startup (or recovery) completes "
    f"the copy if the removal of {KEY_DIR} had begun, otherwise it keeps this cluster's own "
    "keys and the upgrade's key copy must be run again"
)


def replace_key_set(
    fs: FileSystem, datadir: str, records: list[KeyRecord], past_no_return: str = NO_RETURN_ROTATION
) -> None:
    """ROT_04..ROT_08: durably replace ``datadir/pg_cryptokeys`` by a set of records.

    The new set is complete and durable in ``pg_cryptokeys_tmp`` before the current one is
    touched, so at every instant one complete key set is on disk (REC_05), and recovery can
    finish the job after a crash at any point. A failure before the first removal (the point
    of no return) removes the temporary set again: a set whose durability was never confirmed
    must not be adopted later (ROT_07). A failure after it cannot go back, and says which
    passphrase opens the keys now (ROT_08, ``past_no_return``).
    """
    current = join(datadir, KEY_DIR)
    tmp = join(datadir, KEY_TMP_DIR)
    fs.mkdir(tmp, KEY_DIR_MODE)  # a failure here created nothing
    try:
        write_key_files(fs, tmp, records)
        fs.fsync_dir(datadir)
    except KmsError:
        discard_quietly(fs, datadir, tmp)
        raise
    try:
        remove_tree(fs, current)
        fs.fsync_dir(datadir)
        fs.rename(tmp, current)
        fs.fsync_dir(datadir)
    except KmsError as exc:
        raise RotationIncomplete(f"{shown(datadir)}: {exc.message}; {past_no_return}") from None


def split_sql_key(keys: InternalKeys) -> WrapKeys:
    """SQL_01: the SQL key's halves, used by ``pg_wrap`` and ``pg_unwrap``."""
    return split_internal_key(keys.sql)
