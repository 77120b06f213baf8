"""Key directories and the data directory that holds them.

``KeyStore`` is one key directory (``pg_cryptokeys`` or ``pg_cryptokeys_tmp``): it lists,
reads, checks, opens, creates and destroys a key set. ``Cluster`` is a data directory: it runs
bootstrap, startup, rotation and recovery over its two stores.

Invariants kept here:
- a store is *valid* for a KEK when it holds exactly the three key files, each a well-formed
  record whose id matches its name, and every key unwraps to 64 bytes under that KEK (REC_02);
- the last valid store is never removed: a store is removed only while the other one is valid
  (REC_03..REC_05), and rotation writes the new store completely before removing the old;
- every change of a directory's entries is followed by an fsync of that directory (DISK_07).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from pgkms_independent import disk
from pgkms_independent.codec import (
    CURRENT_DIR,
    INTERNAL_KEY_SIZE,
    IV_SIZE,
    KEY_FILE_NAMES,
    KEY_IDS,
    STAGING_DIR,
    Record,
    pack_record,
    unpack_record,
)
from pgkms_independent.entropy import Entropy, fresh
from pgkms_independent.failures import CONTENT_FAILURES, Code, Failure, FormatFailure, StoreFailure
from pgkms_independent.hidden import Hidden
from pgkms_independent.passphrase import Purpose, effective
from pgkms_independent.primitives import KeyPair, derive, open_sealed, seal

DIR_MODE = 0o700  # DISK_01
FILE_MODE = 0o600  # DISK_02


@dataclass(frozen=True, repr=False)
class InternalKeys:
    """The SQL, block and WAL keys (ids 0, 1, 2), 64 bytes each (KEY_01)."""

    keys: tuple[Hidden, Hidden, Hidden]

    def __repr__(self) -> str:
        return "InternalKeys(<hidden>)"

    @property
    def sql(self) -> KeyPair:
        """SQL_01: the pair used by pg_wrap and pg_unwrap."""
        return KeyPair.from_internal_key(self.keys[0])


class KeyStore:
    """One key directory."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __repr__(self) -> str:
        return f"KeyStore({self.path!r})"

    def file(self, key_id: int) -> str:
        return os.path.join(self.path, KEY_FILE_NAMES[key_id])

    def present(self) -> bool:
        return disk.kind_of(self.path) is not None

    def read_records(self) -> list[Record]:
        """DISK_06 then DISK_03..DISK_05, the first failure winning (START_02)."""
        kind = disk.kind_of(self.path)
        if kind != "dir":
            found = "nothing" if kind is None else f"a {kind}"
            raise StoreFailure(
                Code.KEY_DIRECTORY_MISSING, f"{self.path}: expected a key directory, found {found}"
            )
        names = disk.names_in(self.path)
        stray = [name for name in names if name not in KEY_FILE_NAMES]
        if stray:
            raise StoreFailure(
                Code.UNEXPECTED_FILE,
                f"{os.path.join(self.path, stray[0])}: not a key file; a key directory holds "
                f"only {', '.join(KEY_FILE_NAMES)}",
            )
        for key_id in KEY_IDS:
            if KEY_FILE_NAMES[key_id] not in names:
                raise StoreFailure(Code.KEY_FILE_MISSING, f"{self.file(key_id)}: missing")
        return [
            unpack_record(disk.read_all(self.file(key_id)), key_id, self.file(key_id))
            for key_id in KEY_IDS
        ]

    def unlock(self, kek: KeyPair) -> InternalKeys:
        """START_02, START_03: read the records, then unwrap each in id order.

        Every key is tried. All three failing their HMAC means the passphrase is wrong;
        otherwise the first file that fails (in id order) is reported with its own code.
        """
        opened: list[Hidden] = []
        problems: list[Failure] = []
        for record in self.read_records():
            label = self.file(record.key_id)
            try:
                key = open_sealed(kek, record.wrapped_key, label)
                if key.size != INTERNAL_KEY_SIZE:  # KEY_03
                    raise FormatFailure(
                        Code.KEY_LENGTH_INVALID,
                        f"{label}: the key unwraps to {key.size} bytes, expected "
                        f"{INTERNAL_KEY_SIZE}",
                    )
            except FormatFailure as failure:
                problems.append(failure)
                continue
            opened.append(key)
        if len(problems) == len(KEY_IDS) and all(p.code is Code.HMAC_MISMATCH for p in problems):
            raise StoreFailure(
                Code.WRONG_PASSPHRASE,
                f"{self.path}: cluster passphrase does not match expected passphrase "
                "(no key file authenticates under it)",
            )
        if problems:
            raise problems[0]
        return InternalKeys((opened[0], opened[1], opened[2]))

    def holds_valid_set(self, kek: KeyPair) -> bool:
        """REC_02: VALID (True) or INVALID (False); storage failures are not a verdict."""
        try:
            self.unlock(kek)
        except CONTENT_FAILURES:
            return False
        return True

    def create(self, wrapped_keys: Sequence[bytes]) -> None:
        """BOOT_04, ROT_04: mkdir (0700), then each file (0600) created, written, fsynced; then
        the directory fsynced. The caller makes the directory's own entry durable."""
        disk.make_dir(self.path, DIR_MODE)
        for key_id, wrapped in zip(KEY_IDS, wrapped_keys, strict=True):
            disk.write_new_file(self.file(key_id), pack_record(key_id, wrapped), FILE_MODE)
        disk.sync_dir(self.path)

    def destroy(self) -> None:
        disk.remove_directory(self.path)


class Cluster:
    """A data directory and its key stores."""

    def __init__(self, datadir: str) -> None:
        self.datadir = datadir
        self.current = KeyStore(os.path.join(datadir, CURRENT_DIR))
        self.staging = KeyStore(os.path.join(datadir, STAGING_DIR))

    def __repr__(self) -> str:
        return f"Cluster({self.datadir!r})"

    def _sync(self) -> None:
        disk.sync_dir(self.datadir)  # DISK_07: the 2020 patch never did (DEV_FSYNC)

    @staticmethod
    def _wrap_all(kek: KeyPair, keys: Sequence[Hidden], entropy: Entropy) -> list[bytes]:
        """BOOT_03, ROT_03: one IV per key, drawn in id order."""
        return [seal(kek, key, entropy.draw(IV_SIZE)) for key in keys]

    def bootstrap(self, passphrase: bytes, entropy: Entropy | None = None) -> InternalKeys:
        """BOOT_01..BOOT_04."""
        entropy = entropy or fresh()
        secret = effective(passphrase, Purpose.BOOTSTRAP)  # BOOT_02
        for store in (self.current, self.staging):  # BOOT_01
            if store.present():
                raise StoreFailure(
                    Code.KEYS_ALREADY_EXIST, f"{store.path}: already exists; nothing was written"
                )
        kek = derive(secret)
        keys = tuple(Hidden(entropy.draw(INTERNAL_KEY_SIZE)) for _ in KEY_IDS)  # BOOT_03
        self.current.create(self._wrap_all(kek, keys, entropy))
        self._sync()
        return InternalKeys((keys[0], keys[1], keys[2]))

    def recover(self, kek: KeyPair) -> str:
        """REC_01..REC_06; returns the decision taken: nothing, discard_tmp or adopt_tmp."""
        if not self.staging.present():
            return "nothing"  # REC_01
        current_valid = self.current.present() and self.current.holds_valid_set(kek)
        staging_valid = self.staging.holds_valid_set(kek)
        if current_valid:  # REC_03
            self.staging.destroy()
            self._sync()
            return "discard_tmp"
        if staging_valid:  # REC_04
            if self.current.present():
                self.current.destroy()
                self._sync()
            disk.rename(self.staging.path, self.current.path)
            self._sync()
            return "adopt_tmp"
        raise StoreFailure(  # REC_05
            Code.NO_VALID_KEY_SET,
            f"{self.datadir}: {STAGING_DIR} is left from an interrupted rotation and neither it "
            f"nor {CURRENT_DIR} holds a key set that opens under the passphrase; nothing changed",
        )

    def recover_with(self, passphrase: bytes) -> str:
        return self.recover(derive(effective(passphrase, Purpose.STARTUP)))

    def startup(self, passphrase: bytes) -> InternalKeys:
        """START_01..START_04."""
        kek = derive(effective(passphrase, Purpose.STARTUP))
        self.recover(kek)
        return self.current.unlock(kek)

    def rotate(
        self, old_passphrase: bytes, new_passphrase: bytes, entropy: Entropy | None = None
    ) -> InternalKeys:
        """ROT_01..ROT_06: the internal keys stay (KEY_02); only their wrapping changes."""
        entropy = entropy or fresh()
        keys = self.startup(old_passphrase)  # ROT_01 (recovery included)
        new_kek = derive(effective(new_passphrase, Purpose.ROTATION))  # ROT_02
        self._swap_in(self._wrap_all(new_kek, keys.keys, entropy))  # ROT_03
        return keys

    def _swap_in(self, wrapped: Sequence[bytes]) -> None:
        """ROT_04..ROT_06: the new set complete and durable in staging before the current one
        is touched; then the current one removed durably and staging renamed into place."""
        self.staging.create(wrapped)  # ROT_04
        self._sync()
        self.current.destroy()  # ROT_05
        self._sync()
        disk.rename(self.staging.path, self.current.path)  # ROT_06
        self._sync()

    def adopt_keys_of(self, old: Cluster, passphrase: bytes) -> None:
        """UPG_01 (pg_upgrade): install ``old``'s key records here, byte for byte, only once
        they open under ``passphrase`` (this cluster's, startup rules); a refusal writes nothing
        in this cluster. The old cluster is recovered first so that a half-done rotation is
        not copied; the copy is a rotation's swap."""
        kek = derive(effective(passphrase, Purpose.STARTUP))
        old.recover(kek)
        records = old.current.read_records()
        old.current.unlock(kek)  # the check: every key opens under this cluster's passphrase
        self.recover(kek)
        self.current.read_records()  # key management must be on here too; refuse before writing
        self._swap_in([record.wrapped_key for record in records])
