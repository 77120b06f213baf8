"""Bootstrap (initdb): generate the internal keys, write ``pg_cryptokeys/`` (BOOT_01..BOOT_04)."""

from __future__ import annotations

from pgkms.errors import KeysAlreadyExist
from pgkms.fs import FileSystem, OsFileSystem, join
from pgkms.kdf import derive_kek
from pgkms.keyset import InternalKeys, generate_internal_keys, wrap_key_set, write_key_set
from pgkms.layout import KEY_DIR, KEY_TMP_DIR
from pgkms.passphrase import Purpose, check_passphrase
from pgkms.randomness import RandomSource, system_random
from pgkms.secret import Secret


def bootstrap(
    datadir: str,
    passphrase: Secret,
    fs: FileSystem | None = None,
    random: RandomSource = system_random,
) -> InternalKeys:
    """Create the key directory of a new cluster and return its internal keys.

    1. BOOT_02: the passphrase must be 64..1024 bytes (PASS_04, PASS_05).
    2. BOOT_01: refuse when ``pg_cryptokeys`` or ``pg_cryptokeys_tmp`` exists; keys are never
       overwritten.
    3. BOOT_03: draw the three keys (ids 0, 1, 2), then one IV per key in the same order.
    4. BOOT_04: write the directory and its files durably, then fsync ``datadir`` so the
       directory's own entry survives a crash (the patch did not: deviation DEV_FSYNC).
    """
    fs = fs or OsFileSystem()
    secret = check_passphrase(passphrase.reveal(), Purpose.BOOTSTRAP)
    for name in (KEY_DIR, KEY_TMP_DIR):
        if fs.stat(join(datadir, name)) is not None:
            raise KeysAlreadyExist(f"{join(datadir, name)}: already exists; refusing to overwrite")
    kek = derive_kek(secret)
    keys = generate_internal_keys(random)
    records = wrap_key_set(kek, keys, random)
    write_key_set(fs, join(datadir, KEY_DIR), records)
    fs.fsync_dir(datadir)
    return keys
