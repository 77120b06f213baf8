"""The key directory: its files, their checks in the spec's order, durable writes.

Chapter ``spec/chapters/on-disk-format.rst``: DISK_01 (``pg_cryptokeys``, mode 0700), DISK_02
(one file per key, named ``0000``..``0002``), DISK_09 (each created mode 0600), DISK_06
(exactly those three files, checked in a fixed order, the first failure wins) and DISK_07
(each file created exclusively, written and fsynced, then the directory fsynced). The record
inside each file is ``record.py`` (DISK_03..DISK_05). DISK_06's order includes the
environment's checks on each entry: never through a symbolic link (ENV_01), never a special
file (ENV_02), a bounded read (ENV_03), no more open than the group mode (ENV_05).

A directory holds a *complete* key set when it contains exactly ``0000``, ``0001`` and ``0002``,
each a well-formed record whose id matches its name. Whether the set also *opens* under a
passphrase is ``internal_keys.open_key_set``; recovery decides by that, never by counting files
(REC_02).
"""

from __future__ import annotations

from pgkms.errors import (
    KeyDirectoryMissing,
    KeyFileMissing,
    NotRegularFile,
    PermissionsTooOpen,
    RecordSizeInvalid,
    SymlinkRefused,
    UnexpectedFile,
)
from pgkms.fs import FileSystem, Stat, join, kind_name
from pgkms.layout import (
    KEY_DIR_MODE,
    KEY_DIR_MODE_ALLOWED,
    KEY_FILE_MODE,
    KEY_FILE_MODE_ALLOWED,
    KEY_FILE_NAMES,
    RECORD_LEN,
    KeyId,
)
from pgkms.record import KeyRecord, decode_record, encode_record
from pgkms.shown import shown


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


def write_key_set(fs: FileSystem, directory: str, records: list[KeyRecord]) -> None:
    """DISK_01, DISK_02, DISK_09, DISK_07: create ``directory`` (0700) holding the records
    (0600 each).

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
