"""Startup: recover, read, unwrap and verify every internal key (START_01..START_04)."""

from __future__ import annotations

from pgkms.fs import FileSystem, OsFileSystem, join
from pgkms.kdf import derive_kek
from pgkms.keyset import InternalKeys, load_key_set
from pgkms.layout import KEY_DIR
from pgkms.passphrase import Purpose, check_passphrase
from pgkms.recovery import recover
from pgkms.secret import Secret


def startup(datadir: str, passphrase: Secret, fs: FileSystem | None = None) -> InternalKeys:
    """Open the cluster's keys, or raise the error that keeps the server from starting.

    1. START_01: apply the startup length rules (PASS_06, PASS_07) and derive the KEK.
    2. START_01: recover an interrupted rotation (REC_01..REC_06).
    3. START_02: read the key set, checking the directory and every record.
    4. START_03: unwrap every key; all failing means a wrong passphrase.
    Nothing on disk changes unless recovery finds a valid key set to settle on (START_04).
    """
    fs = fs or OsFileSystem()
    kek = derive_kek(check_passphrase(passphrase.reveal(), Purpose.STARTUP))
    recover(fs, datadir, kek)
    return load_key_set(fs, join(datadir, KEY_DIR), kek)
