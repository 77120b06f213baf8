"""Key directories and the data directory that holds them.

``KeyStore`` is one key directory (``pg_cryptokeys`` or ``pg_cryptokeys_tmp``): it lists,
reads, checks, opens, creates and destroys a key set. ``Cluster`` is a data directory: it runs
bootstrap, startup, rotation and recovery over its two stores.

Invariants kept here:
- a store is *valid* for a KEK when it holds exactly the three key files, each a well-formed
  record whose id matches its name, and every key unwraps to 64 bytes under that KEK (REC_02);
- the last valid store is never removed: a store is removed only while the other one is valid
  (REC_03..REC_05), and rotation writes the new store completely before removing the old;
- every change of a directory's entries is followed by an fsync of that directory (DISK_07);
- every procedure that may change a key directory runs inside ``Cluster.locked()`` (CONC_01):
  the data directory's lock held and no live server (CONC_03); a procedure nested in another
  (rotation's startup and recovery) shares the one hold;
- a procedure that fails before its point of no return leaves no ``pg_cryptokeys_tmp`` behind
  (BOOT_05, ROT_07); one that fails at or after it says so (``rotation_incomplete``, ROT_08).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from pgkms_independent import disk
from pgkms_independent.codec import (
    CURRENT_DIR,
    INTERNAL_KEY_SIZE,
    IV_SIZE,
    KEY_FILE_NAMES,
    KEY_IDS,
    RECORD_SIZE,
    STAGING_DIR,
    Record,
    pack_record,
    unpack_record,
)
from pgkms_independent.entropy import Entropy, fresh
from pgkms_independent.failures import (
    CONTENT_FAILURES,
    Code,
    Failure,
    FormatFailure,
    IncompleteFailure,
    StoreFailure,
)
from pgkms_independent.hidden import Hidden
from pgkms_independent.passphrase import Purpose, effective
from pgkms_independent.primitives import KeyPair, derive, open_sealed, seal

DIR_MODE = 0o700  # DISK_01
FILE_MODE = 0o600  # DISK_02
DIR_MODE_ALLOWED = 0o750  # ENV_05: the group mode, as PostgreSQL allows for PGDATA itself
FILE_MODE_ALLOWED = 0o640  # ENV_05
KEY_READ_LIMIT = RECORD_SIZE + 1  # ENV_03: one byte more than a record tells "too long"


def refuse_open_permissions(path: str, mode: int, allowed: int) -> None:
    """ENV_05: a key directory or key file accessible beyond the group mode is refused."""
    if mode & ~allowed:
        raise StoreFailure(
            Code.PERMISSIONS_TOO_OPEN,
            f"{disk.shown(path)}: mode {mode:04o} is too open (expected no bits outside "
            f"{allowed:04o}, found {mode & ~allowed:04o} beyond it)",
        )


def keys_already_exist(path: str, why: str) -> StoreFailure:
    return StoreFailure(Code.KEYS_ALREADY_EXIST, f"{disk.shown(path)}: {why}; nothing was written")


# What a message names, in words, as found where a key directory was expected.
_FOUND: dict[str | None, str] = {
    None: "nothing",
    "file": "a regular file",
    "other": "a special file (FIFO, socket or device)",
}


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

    def is_symlink(self) -> bool:
        return disk.kind_of(self.path) == "symlink"

    def require_directory(self) -> None:
        """DISK_06 step 1 (a link refused, never followed: ENV_01), then ENV_05 on its mode."""
        kind = disk.kind_of(self.path)
        if kind == "symlink":
            raise disk.symlink_refused(self.path)
        if kind != "dir":
            found = _FOUND.get(kind, f"a {kind}")
            raise StoreFailure(
                Code.KEY_DIRECTORY_MISSING,
                f"{disk.shown(self.path)}: expected a key directory, found {found}",
            )
        refuse_open_permissions(self.path, disk.permission_bits(self.path), DIR_MODE_ALLOWED)

    def check_entries(self) -> None:
        """DISK_06 steps 2 and 3: nothing but the three key files, and all three."""
        names = disk.names_in(self.path)
        stray = [name for name in names if name not in KEY_FILE_NAMES]
        if stray:
            raise StoreFailure(
                Code.UNEXPECTED_FILE,
                f"{disk.shown(os.path.join(self.path, stray[0]))}: not a key file; a key "
                f"directory holds only {', '.join(KEY_FILE_NAMES)}",
            )
        for key_id in KEY_IDS:
            if KEY_FILE_NAMES[key_id] not in names:
                raise StoreFailure(Code.KEY_FILE_MISSING, f"{self.file(key_id)}: missing")

    def read_record(self, key_id: int, check_mode: bool = True) -> Record:
        """One key file: regular, opened without following or blocking (ENV_01, ENV_02), its
        mode (ENV_05), a bounded read (ENV_03), then DISK_03..DISK_05. A size in a message is
        the file's real size, not the bytes read."""
        label = self.file(key_id)
        found = disk.read_key_file(label, KEY_READ_LIMIT)
        if check_mode:
            refuse_open_permissions(label, found.mode, FILE_MODE_ALLOWED)
        if len(found.data) > RECORD_SIZE:
            raise FormatFailure(
                Code.RECORD_SIZE_INVALID,
                f"{label}: {found.size} bytes found, a key record is {RECORD_SIZE}",
            )
        return unpack_record(found.data, key_id, label)

    def read_records(self) -> list[Record]:
        """DISK_06, then per file in id order ENV_01..ENV_03, ENV_05 and DISK_03..DISK_05, the
        first failure winning (START_02)."""
        self.require_directory()
        self.check_entries()
        return [self.read_record(key_id) for key_id in KEY_IDS]

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
        """REC_02: VALID (True) or INVALID (False); storage failures are not a verdict. A link,
        a special file or too open a mode inside makes the set INVALID (ENV_05)."""
        try:
            self.unlock(kek)
        except CONTENT_FAILURES:
            return False
        return True

    def holds_complete_set(self) -> bool:
        """BOOT_05: a directory of exactly three regular files 0000..0002 of 132 bytes whose
        ids match their names. No passphrase is involved, and modes are not judged."""
        try:
            if disk.kind_of(self.path) != "dir" or disk.names_in(self.path) != list(KEY_FILE_NAMES):
                return False
            for key_id in KEY_IDS:
                self.read_record(key_id, check_mode=False)
        except CONTENT_FAILURES:
            return False
        return True

    def make(self) -> None:
        """BOOT_04, ROT_04: mkdir with mode 0700."""
        disk.make_dir(self.path, DIR_MODE)

    def fill(self, wrapped_keys: Sequence[bytes]) -> None:
        """BOOT_04, ROT_04: each file (0600) created, written and fsynced, in id order; then
        the directory fsynced. The caller makes the directory's own entry durable."""
        for key_id, wrapped in zip(KEY_IDS, wrapped_keys, strict=True):
            disk.write_new_file(self.file(key_id), pack_record(key_id, wrapped), FILE_MODE)
        disk.sync_dir(self.path)

    def create(self, wrapped_keys: Sequence[bytes]) -> None:
        self.make()
        self.fill(wrapped_keys)

    def destroy(self) -> None:
        """Remove this entry (ENV_04): a directory entry by entry and fsynced before its rmdir,
        any other kind unlinked; a symbolic link is refused, nothing removed through it."""
        kind = disk.kind_of(self.path)
        if kind is None:
            return
        if kind == "symlink":
            raise disk.symlink_refused(self.path)
        if kind == "dir":
            disk.remove_directory(self.path)
        else:
            disk.unlink(self.path)


class Cluster:
    """A data directory and its key stores.

    ``lock_timeout`` (seconds; None for the default of 10) bounds the wait for the data
    directory's lock (CONC_02)."""

    def __init__(self, datadir: str, lock_timeout: float | None = None) -> None:
        self.datadir = datadir
        self.lock_timeout = disk.DEFAULT_LOCK_TIMEOUT if lock_timeout is None else lock_timeout
        self.current = KeyStore(os.path.join(datadir, CURRENT_DIR))
        self.staging = KeyStore(os.path.join(datadir, STAGING_DIR))

    def __repr__(self) -> str:
        return f"Cluster({self.datadir!r})"

    @contextmanager
    def locked(self) -> Iterator[None]:
        """CONC_01..CONC_03: this data directory's lock for the block, and no live server."""
        with disk.exclusive(self.datadir, self.lock_timeout):
            disk.refuse_running_server(self.datadir)
            yield

    def _sync(self) -> None:
        disk.sync_dir(self.datadir)  # DISK_07: the 2020 patch never did (DEV_FSYNC)

    @staticmethod
    def _wrap_all(kek: KeyPair, keys: Sequence[Hidden], entropy: Entropy) -> list[bytes]:
        """BOOT_03, ROT_03: one IV per key, drawn in id order."""
        return [seal(kek, key, entropy.draw(IV_SIZE)) for key in keys]

    def _remove_staging_durably(self) -> None:
        """ENV_04: ``pg_cryptokeys_tmp`` removed entry by entry, then PGDATA fsynced."""
        self.staging.destroy()
        self._sync()

    @staticmethod
    def _clean_up_after(failure: BaseException, undo: Callable[[], None]) -> None:
        """Run ``undo`` for ``failure``. If the clean-up fails too, the original failure is
        still the one reported, its message saying what was left behind."""
        try:
            undo()
        except Failure as second:
            if isinstance(failure, Failure):
                failure.message += f" ({STAGING_DIR} could not be removed: {second.message})"
                failure.args = (failure.message,)

    # -- bootstrap -----------------------------------------------------------------------------
    def bootstrap(self, passphrase: bytes, entropy: Entropy | None = None) -> InternalKeys:
        """BOOT_01..BOOT_05 in the spec's order: length rules, the lock, existing keys, draws,
        then the new set written aside and renamed into place."""
        entropy = entropy or fresh()
        secret = effective(passphrase, Purpose.BOOTSTRAP)  # BOOT_02 (step 1)
        with self.locked():  # step 2
            self._clear_interrupted_bootstrap()
            kek = derive(secret)
            keys = tuple(Hidden(entropy.draw(INTERNAL_KEY_SIZE)) for _ in KEY_IDS)  # BOOT_03
            wrapped = self._wrap_all(kek, keys, entropy)
            self.staging.make()  # step 6; a failed mkdir created nothing to remove
            try:
                self.staging.fill(wrapped)  # step 7, then the fsync of pg_cryptokeys_tmp
                self._sync()
                disk.rename(self.staging.path, self.current.path)
            except BaseException as failure:
                self._clean_up_after(failure, self._undo_bootstrap)
                raise
            self._sync()  # BOOT_04: bootstrap has succeeded when this returns
        return InternalKeys((keys[0], keys[1], keys[2]))

    def _clear_interrupted_bootstrap(self) -> None:
        """BOOT_01, BOOT_05: refuse existing keys; remove an interrupted bootstrap's leftover.

        ``pg_cryptokeys`` of any kind, or a complete ``pg_cryptokeys_tmp`` (what a rotation
        interrupted after its removal leaves, and recovery adopts), is refused; a lone
        incomplete ``pg_cryptokeys_tmp`` comes from an interrupted bootstrap only, and goes."""
        if self.current.present():
            raise keys_already_exist(self.current.path, "already exists")
        kind = disk.kind_of(self.staging.path)
        if kind is None:
            return
        if kind == "symlink":
            raise disk.symlink_refused(self.staging.path)
        if self.staging.holds_complete_set():
            raise keys_already_exist(
                self.staging.path,
                "holds a complete key set (left by an interrupted rotation; startup or "
                "recovery adopts it)",
            )
        self._remove_staging_durably()

    def _undo_bootstrap(self) -> None:
        """BOOT_05: a bootstrap that failed before its rename removes pg_cryptokeys_tmp."""
        self._remove_staging_durably()

    # -- recovery and startup ------------------------------------------------------------------
    def _refuse_symlinked_stores(self) -> None:
        """ENV_01: recovery never judges, removes or renames through a link (current first)."""
        for store in (self.current, self.staging):
            if store.is_symlink():
                raise disk.symlink_refused(store.path)

    def recover(self, kek: KeyPair) -> str:
        """REC_01..REC_06; returns the decision taken: nothing, discard_tmp or adopt_tmp.
        The caller holds the lock (CONC_01)."""
        if not self.staging.present():
            return "nothing"  # REC_01
        self._refuse_symlinked_stores()
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
        kek = derive(effective(passphrase, Purpose.STARTUP))
        with self.locked():
            return self.recover(kek)

    def startup(self, passphrase: bytes) -> InternalKeys:
        """START_01..START_04, recovery and reading under the lock (CONC_01)."""
        kek = derive(effective(passphrase, Purpose.STARTUP))
        with self.locked():
            self.recover(kek)
            return self.current.unlock(kek)

    # -- rotation ------------------------------------------------------------------------------
    def rotate(
        self, old_passphrase: bytes, new_passphrase: bytes, entropy: Entropy | None = None
    ) -> InternalKeys:
        """ROT_01..ROT_08: the internal keys stay (KEY_02); only their wrapping changes. The
        lock is held from before recovery to the last fsync; the startup inside shares it."""
        entropy = entropy or fresh()
        with self.locked():
            keys = self.startup(old_passphrase)  # ROT_01 (recovery included)
            new_kek = derive(effective(new_passphrase, Purpose.ROTATION))  # ROT_02
            self._swap_in(self._wrap_all(new_kek, keys.keys, entropy))  # ROT_03
        return keys

    def _swap_in(self, wrapped: Sequence[bytes]) -> None:
        """ROT_04..ROT_08: the new set complete and durable in staging before the current one
        is touched; then the current one removed durably and staging renamed into place.

        A failure before the point of no return (the first removal) removes staging (ROT_07);
        one at or after it is reported as rotation_incomplete and staging stays (ROT_08)."""
        self.staging.make()  # a failed mkdir created nothing to remove
        try:
            self.staging.fill(wrapped)  # ROT_04
            self._sync()
        except BaseException as failure:
            self._clean_up_after(failure, self._undo_rotation)
            raise
        try:
            self.current.destroy()  # ROT_05, from its first unlink: the point of no return
            self._sync()
            disk.rename(self.staging.path, self.current.path)  # ROT_06
            self._sync()
        except Failure as failure:
            raise self._past_point_of_no_return(failure) from None

    def _undo_rotation(self) -> None:
        """ROT_07: a temporary set whose durability was never confirmed must not stay for a
        later recovery to adopt."""
        self._remove_staging_durably()

    def _past_point_of_no_return(self, failure: Failure) -> Failure:
        """ROT_08: the failure as rotation_incomplete, naming which passphrase opens the keys
        now (never the passphrase itself)."""
        return IncompleteFailure(
            Code.ROTATION_INCOMPLETE,
            f"{self.datadir}: rotation failed past its point of no return ({failure.code.value}: "
            f"{failure.message}); the keys now open under the NEW passphrase only, and the next "
            f"startup or recovery under it completes the rotation ({STAGING_DIR} is kept)",
        )

    # -- pg_upgrade ----------------------------------------------------------------------------
    def adopt_keys_of(self, old: Cluster, passphrase: bytes) -> None:
        """UPG_01 (pg_upgrade): install ``old``'s key records here, byte for byte, only once
        they open under ``passphrase`` (this cluster's, startup rules); a refusal writes nothing
        in this cluster. The old cluster is recovered first so that a half-done rotation is
        not copied; the copy is a rotation's swap. Both locks are held throughout, the old
        cluster's first (CONC_01)."""
        kek = derive(effective(passphrase, Purpose.STARTUP))
        with old.locked(), self.locked():
            old.recover(kek)
            records = old.current.read_records()
            old.current.unlock(kek)  # the check: every key opens under this cluster's passphrase
            self.recover(kek)
            self.current.read_records()  # key management must be on here too; refuse first
            self._swap_in([record.wrapped_key for record in records])
