"""pg_upgrade: carry the old cluster's keys into the new cluster, checked first.

Chapter ``spec/chapters/pg-upgrade.rst``: UPG_01.

The 2020 patch copied ``pg_cryptokeys/`` from the old cluster over the new one whenever both had
key management on, without checking the passphrase; an upgrade to a cluster initialised with
another passphrase then failed after the copy, leaving a new cluster that could not start
(deviation DEV_UPGRADE). Here the old keys must open under the new cluster's passphrase before
anything is written, and the copy uses the same crash-safe swap as rotation.
"""

from __future__ import annotations

from pgkms.fs import FileSystem, OsFileSystem, join
from pgkms.internal_keys import InternalKeys, open_key_set
from pgkms.kdf import WrapKeys, derive_kek
from pgkms.keydir import read_key_set
from pgkms.layout import KEY_DIR, KEY_TMP_DIR, LOCK_TIMEOUT
from pgkms.passphrase import Purpose, check_passphrase
from pgkms.recovery import recover
from pgkms.rotation import replace_key_set
from pgkms.secret import Secret

# Both clusters' sets open under the one passphrase, so recovery adopts the copy only once the
# new cluster's own set is incomplete (REC_02): if the failure came before any file of it was
# removed, recovery keeps that set and the copy is simply undone.
NO_RETURN_UPGRADE = (
    f"the copied keys are complete in {KEY_TMP_DIR}; the next startup (or recovery) completes "
    f"the copy if the removal of {KEY_DIR} had begun, otherwise it keeps this cluster's own "
    "keys and the upgrade's key copy must be run again"
)


def copy_keys_for_upgrade(
    old_datadir: str,
    new_datadir: str,
    passphrase: Secret,
    fs: FileSystem | None = None,
    *,
    lock_timeout: float = LOCK_TIMEOUT,
) -> InternalKeys:
    """UPG_01: install the old cluster's key records in the new cluster, byte for byte.

    1. Recover both clusters (an interrupted rotation must not be copied half-done).
    2. Read the old records and open them under ``passphrase`` (the new cluster's): a failure
       here stops the upgrade with nothing written.
    3. Recover the new cluster and check it has a complete key set (key management on).
    4. Replace the new cluster's key set with the old records (ROT_04..ROT_08 swap).
    Both data directories are locked for the whole copy, the old cluster's first (CONC_01).
    """
    fs = fs or OsFileSystem()
    kek = derive_kek(check_passphrase(passphrase.reveal(), Purpose.STARTUP))
    with fs.lock(old_datadir, lock_timeout), fs.lock(new_datadir, lock_timeout):
        return _copy(fs, old_datadir, new_datadir, kek)


def _copy(fs: FileSystem, old_datadir: str, new_datadir: str, kek: WrapKeys) -> InternalKeys:
    recover(fs, old_datadir, kek)
    old_dir = join(old_datadir, KEY_DIR)
    records = read_key_set(fs, old_dir)
    keys = open_key_set(kek, records, old_dir)
    recover(fs, new_datadir, kek)
    # Copy only into a cluster that has key management on: one with a key directory. Without
    # this check the swap would write pg_cryptokeys_tmp and then fail, leaving it behind.
    read_key_set(fs, join(new_datadir, KEY_DIR))
    replace_key_set(fs, new_datadir, records, NO_RETURN_UPGRADE)
    return keys
