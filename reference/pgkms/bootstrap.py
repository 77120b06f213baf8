"""Bootstrap (initdb): generate the internal keys, write ``pg_cryptokeys/``.

Chapter ``spec/chapters/bootstrap-startup.rst``, section "Bootstrap": BOOT_01..BOOT_05.
"""

from __future__ import annotations

import contextlib

from pgkms.errors import KeysAlreadyExist, KeyStoreError, KmsError, SymlinkRefused
from pgkms.fs import FileSystem, OsFileSystem, join, remove_tree
from pgkms.internal_keys import InternalKeys, generate_internal_keys, wrap_key_set
from pgkms.kdf import derive_kek
from pgkms.keydir import read_key_set, write_key_files
from pgkms.layout import KEY_DIR, KEY_DIR_MODE, KEY_TMP_DIR, LOCK_TIMEOUT
from pgkms.passphrase import Purpose, check_passphrase
from pgkms.randomness import RandomSource, system_random
from pgkms.record import KeyRecord
from pgkms.rotation import discard_quietly
from pgkms.secret import Secret
from pgkms.shown import shown


def bootstrap(
    datadir: str,
    passphrase: Secret,
    fs: FileSystem | None = None,
    random: RandomSource = system_random,
    *,
    lock_timeout: float = LOCK_TIMEOUT,
) -> InternalKeys:
    """Create the key directory of a new cluster and return its internal keys.

    1. BOOT_02: the passphrase must be 64..1024 bytes (PASS_04, PASS_05).
    2. CONC_01..CONC_03: take the data directory's lock, held to the end; no server running.
    3. BOOT_01, BOOT_05: refuse when ``pg_cryptokeys`` exists or ``pg_cryptokeys_tmp`` holds a
       complete key set (keys are never overwritten); remove any other ``pg_cryptokeys_tmp``,
       the leftover of an interrupted bootstrap.
    4. BOOT_03: draw the three keys (ids 0, 1, 2), then one IV per key in the same order.
    5. BOOT_04: write ``pg_cryptokeys_tmp`` durably, fsync ``datadir``, rename it to
       ``pg_cryptokeys`` and fsync ``datadir`` again: ``pg_cryptokeys`` only ever appears
       complete (the patch wrote it in place: deviation DEV_BOOTSTRAP_TMP).
    A failure in 5 removes what it wrote (BOOT_05), so a retry finds nothing in its way.
    """
    fs = fs or OsFileSystem()
    secret = check_passphrase(passphrase.reveal(), Purpose.BOOTSTRAP)
    with fs.lock(datadir, lock_timeout):
        _clear_the_way(fs, datadir)
        kek = derive_kek(secret)
        keys = generate_internal_keys(random)
        records = wrap_key_set(kek, keys, random)
        _write_aside_and_rename(fs, datadir, records)
    return keys


def _clear_the_way(fs: FileSystem, datadir: str) -> None:
    """BOOT_01, BOOT_05: refuse existing keys; remove an interrupted bootstrap's leftover."""
    current, tmp = join(datadir, KEY_DIR), join(datadir, KEY_TMP_DIR)
    if fs.stat(current) is not None:
        raise KeysAlreadyExist(f"{shown(current)}: already exists; refusing to overwrite")
    st = fs.stat(tmp)
    if st is None:
        return
    if st.kind == "symlink":
        raise SymlinkRefused(f"{shown(tmp)}: is a symbolic link; bootstrap changes nothing")
    try:
        read_key_set(fs, tmp, check_modes=False)  # structure only: modes do not make it partial
    except KeyStoreError:
        remove_tree(fs, tmp)  # incomplete: only an interrupted bootstrap leaves that alone
        fs.fsync_dir(datadir)
        return
    raise KeysAlreadyExist(
        f"{shown(tmp)}: holds a complete key set (an interrupted rotation's, which startup "
        "adopts); refusing to overwrite"
    )


def _write_aside_and_rename(fs: FileSystem, datadir: str, records: list[KeyRecord]) -> None:
    """BOOT_04, BOOT_05: the write, with its failures cleaned up."""
    current, tmp = join(datadir, KEY_DIR), join(datadir, KEY_TMP_DIR)
    fs.mkdir(tmp, KEY_DIR_MODE)  # a failure here created nothing
    try:
        write_key_files(fs, tmp, records)
        fs.fsync_dir(datadir)
        fs.rename(tmp, current)
    except KmsError:
        discard_quietly(fs, datadir, tmp)
        raise
    try:
        fs.fsync_dir(datadir)
    except KmsError:
        # The rename may or may not be durable, and nothing was ever encrypted under these keys
        # (bootstrap has not succeeded): undo it, so a retry finds nothing in its way (BOOT_05).
        with contextlib.suppress(KmsError):
            fs.rename(current, tmp)
        discard_quietly(fs, datadir, tmp)
        raise
