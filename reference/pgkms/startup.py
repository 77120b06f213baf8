"""Startup: recover, read, unwrap and verify every internal key.

Chapter ``spec/chapters/bootstrap-startup.rst``, section "Startup": START_01..START_04. The rule
of START_03 (a wrong passphrase versus a damaged key file) is applied where a key set is opened,
``internal_keys.open_key_set``, since recovery opens sets too.
"""

from __future__ import annotations

from pgkms.fs import FileSystem, OsFileSystem, join
from pgkms.internal_keys import InternalKeys, load_key_set
from pgkms.kdf import WrapKeys, derive_kek
from pgkms.layout import KEY_DIR, LOCK_TIMEOUT
from pgkms.passphrase import Purpose, check_passphrase
from pgkms.recovery import recover
from pgkms.secret import Secret


def startup(
    datadir: str,
    passphrase: Secret,
    fs: FileSystem | None = None,
    *,
    lock_timeout: float = LOCK_TIMEOUT,
) -> InternalKeys:
    """Open the cluster's keys, or raise the error that keeps the server from starting.

    1. START_01: apply the startup length rules (PASS_06, PASS_07) and derive the KEK.
    2. CONC_01..CONC_03: take the data directory's lock, held to the end; no server running.
    3. START_01: recover an interrupted rotation (REC_01..REC_06).
    4. START_02: read the key set, checking the directory and every record.
    5. START_03: unwrap every key; all failing means a wrong passphrase.
    Nothing on disk changes unless recovery finds a valid key set to settle on (START_04).
    """
    fs = fs or OsFileSystem()
    kek = derive_kek(check_passphrase(passphrase.reveal(), Purpose.STARTUP))
    with fs.lock(datadir, lock_timeout):
        return open_keys(fs, datadir, kek)


def open_keys(fs: FileSystem, datadir: str, kek: WrapKeys) -> InternalKeys:
    """Steps 3 to 5 of ``startup``, for a caller that already holds the lock (rotation)."""
    recover(fs, datadir, kek)
    return load_key_set(fs, join(datadir, KEY_DIR), kek)
