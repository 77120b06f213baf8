"""The 2020 patch's rotation and recovery, executed from the tables in ``machine.py``.

Built on the reference's key-set functions (wrapping, record encoding and decoding, reading a
key set) and on the ``FileSystem`` interface, so that the only differences from the spec
protocol are the ones the facts file records: no fsync of the data directory, the key directory
removed without fsync, and recovery deciding by counting the files of ``pg_cryptokeys_tmp``
instead of by their content (deviations DEV_FSYNC, DEV_RECOVERY_COUNT). The reference itself
is not changed to carry any of this.

Assumption (the facts file lists no fsync in recovery): recovery's removals and rename are
plain, unsynced operations, like rotation's.
"""

from __future__ import annotations

import re

from pgkms.fs import FileSystem, join
from pgkms.internal_keys import InternalKeys, load_key_set, wrap_key_set
from pgkms.kdf import derive_kek
from pgkms.layout import KEY_DIR, KEY_DIR_MODE, KEY_FILE_MODE, KEY_FILE_NAMES, KEY_TMP_DIR
from pgkms.passphrase import Purpose, check_passphrase
from pgkms.randomness import RandomSource
from pgkms.record import KeyRecord, decode_record, encode_record
from pgkms.secret import Secret

from pgkms_conformance.crash.machine import (
    LEGACY_RECOVERY,
    LEGACY_RECOVERY_TABLE,
    LEGACY_ROTATION,
    Procedure,
    Step,
    groups,
    role_path,
)

# The patch read only names of exactly four upper-case hex digits (facts file, On-disk format).
_KEY_FILE_NAME = re.compile(r"[0-9A-F]{4}")


def run_procedure(
    fs: FileSystem, datadir: str, procedure: Procedure, records: list[KeyRecord] | None = None
) -> None:
    """Carry out ``procedure`` step by step: the table is the protocol."""
    for repeat, group in groups(procedure):
        if repeat == "once":
            _perform(fs, datadir, group[0], "", None)
        elif repeat == "per_key_file":
            if records is None:
                raise ValueError(f"{procedure.name}: a per-key-file step needs the records")
            for record in records:
                for step in group:
                    _perform(fs, datadir, step, KEY_FILE_NAMES[record.key_id], record)
        else:
            directory = role_path(datadir, "current" if group[0].role == "current file" else "tmp")
            for name in fs.list_dir(directory):
                for step in group:
                    _perform(fs, datadir, step, name, None)


def _perform(fs: FileSystem, datadir: str, step: Step, name: str, record: KeyRecord | None) -> None:
    path = role_path(datadir, step.role, name)
    if step.kind == "mkdir":
        fs.mkdir(path, KEY_DIR_MODE)
    elif step.kind == "create":
        assert record is not None
        fs.create_file(path, encode_record(record), KEY_FILE_MODE)
    elif step.kind == "fsync":
        fs.fsync_file(path)
    elif step.kind == "fsync_dir":
        fs.fsync_dir(path)
    elif step.kind == "unlink":
        fs.unlink(path)
    elif step.kind == "rmdir":
        fs.rmdir(path)
    elif step.kind == "rename":
        fs.rename(role_path(datadir, "tmp"), role_path(datadir, "current"))
    else:
        raise ValueError(f"step {step.kind} {step.role}: no such filesystem operation")


def count_key_files(fs: FileSystem, directory: str) -> int:
    """The patch's count: read every key file; one of the wrong size or id is fatal."""
    count = 0
    for name in fs.list_dir(directory):
        if _KEY_FILE_NAME.fullmatch(name):
            path = join(directory, name)
            decode_record(fs.read_file(path), None, path)  # size and id range, nothing more
            count += 1
    return count


def legacy_decide(fs: FileSystem, datadir: str) -> str:
    """The 2020 recovery decision (``LEGACY_RECOVERY_TABLE``); may raise while counting."""
    tmp_present = fs.stat(join(datadir, KEY_TMP_DIR)) is not None
    current_present = fs.stat(join(datadir, KEY_DIR)) is not None
    complete = False
    if tmp_present and current_present:
        complete = count_key_files(fs, join(datadir, KEY_TMP_DIR)) == len(KEY_FILE_NAMES)
    return LEGACY_RECOVERY_TABLE[(tmp_present, current_present, complete)]


def legacy_recover(fs: FileSystem, datadir: str) -> str:
    decision = legacy_decide(fs, datadir)
    if decision != "nothing":
        run_procedure(fs, datadir, LEGACY_RECOVERY[decision])
    return decision


def legacy_startup(fs: FileSystem, datadir: str, passphrase: Secret) -> InternalKeys:
    """Recover by counting, then read and unwrap every key (the patch applied no length check)."""
    kek = derive_kek(passphrase)
    legacy_recover(fs, datadir)
    return load_key_set(fs, join(datadir, KEY_DIR), kek)


def legacy_rotate(
    fs: FileSystem, datadir: str, old: Secret, new: Secret, random: RandomSource
) -> InternalKeys:
    """The patch's ``pg_rotate_cluster_passphrase()``: recover, re-wrap, then the table's steps."""
    keys = legacy_startup(fs, datadir, old)
    new_kek = derive_kek(check_passphrase(new.reveal(), Purpose.ROTATION))
    run_procedure(fs, datadir, LEGACY_ROTATION, wrap_key_set(new_kek, keys, random))
    return keys
