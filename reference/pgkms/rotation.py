"""Passphrase rotation through ``pg_cryptokeys_tmp/`` (ROT_01..ROT_06).

The internal keys never change (KEY_02): rotation re-wraps them under the KEK of a new
passphrase. The new set is complete and durable in the temporary directory before the current
one is touched, so at every instant at least one complete key set is on disk (REC_05).
"""

from __future__ import annotations

from pgkms.fs import FileSystem, OsFileSystem
from pgkms.kdf import derive_kek
from pgkms.keydir import InternalKeys, replace_key_set, wrap_key_set
from pgkms.layout import LOCK_TIMEOUT
from pgkms.passphrase import Purpose, check_passphrase
from pgkms.randomness import RandomSource, system_random
from pgkms.secret import Secret
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
