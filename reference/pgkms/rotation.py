"""Passphrase rotation through ``pg_cryptokeys_tmp/``: its steps and its crash-safe swap.

Chapter ``spec/chapters/rotation-recovery.rst``, section "Rotation": ROT_01..ROT_08. Recovery
of an interrupted rotation, the same chapter's REC_01..REC_06, is ``recovery.py``.

The internal keys never change (KEY_02): rotation re-wraps them under the KEK of a new
passphrase. The new set is complete and durable in the temporary directory before the current
one is touched, so at every instant at least one complete key set is on disk (REC_05). The swap
itself, ``replace_key_set``, is shared with the upgrade's key copy (UPG_01), and its clean-up on
failure, ``discard_quietly``, with bootstrap (BOOT_05).
"""

from __future__ import annotations

from pgkms.errors import KmsError, RotationIncomplete
from pgkms.fs import FileSystem, OsFileSystem, join, remove_tree
from pgkms.internal_keys import InternalKeys, wrap_key_set
from pgkms.kdf import derive_kek
from pgkms.keydir import write_key_files
from pgkms.layout import KEY_DIR, KEY_DIR_MODE, KEY_TMP_DIR, LOCK_TIMEOUT
from pgkms.passphrase import Purpose, check_passphrase
from pgkms.randomness import RandomSource, system_random
from pgkms.record import KeyRecord
from pgkms.secret import Secret
from pgkms.shown import shown
from pgkms.startup import open_keys


def rotate(
    datadir: str,
    old_passphrase: Secret,
    new_passphrase: Secret,
    fs: FileSystem | None = None,
    random: RandomSource = system_random,
    *,
    lock_timeout: float = LOCK_TIMEOUT,
) -> InternalKeys:
    """Re-wrap the internal keys under ``new_passphrase``; return the (unchanged) keys.

    0. CONC_01: take the data directory's lock once, held across the recovery and the swap
       (a second lock in this process would be released by the first close of either).
    1. ROT_01: open the current keys under the old passphrase, recovering first; a failure
       here stops the rotation before anything is written.
    2. ROT_02: the new passphrase must be 64..1024 bytes (PASS_04, PASS_05).
    3. ROT_03: wrap keys 0, 1, 2 under the new KEK, drawing one IV each in that order.
    4. ROT_04: write the set to ``pg_cryptokeys_tmp/`` durably, then fsync ``datadir``.
    5. ROT_05: remove ``pg_cryptokeys/`` durably (files, the directory, then fsync ``datadir``).
    6. ROT_06: rename the temporary directory into place and fsync ``datadir``.
    A failure in 4 removes the temporary set (ROT_07); one in 5 or 6 is
    ``rotation_incomplete`` (ROT_08). The patch fsynced neither ``datadir`` nor the removal
    (deviation DEV_FSYNC).
    """
    fs = fs or OsFileSystem()
    old_kek = derive_kek(check_passphrase(old_passphrase.reveal(), Purpose.STARTUP))
    with fs.lock(datadir, lock_timeout):
        keys = open_keys(fs, datadir, old_kek)
        new_kek = derive_kek(check_passphrase(new_passphrase.reveal(), Purpose.ROTATION))
        replace_key_set(fs, datadir, wrap_key_set(new_kek, keys, random))
    return keys


NO_RETURN_ROTATION = (
    "the keys now open under the NEW passphrase; the next startup (or recovery) under the new "
    "passphrase completes the rotation"
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
