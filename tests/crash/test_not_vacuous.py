"""The explorer is not vacuous: broken variants of the spec protocol (one fsync left out, a
startup that does not recover) are caught as invariant violations."""

from __future__ import annotations

from dataclasses import replace

import pytest
from pgkms.errors import NoValidKeySet
from pgkms.fs import FileSystem, ForwardingFileSystem
from pgkms.internal_keys import InternalKeys, load_key_set
from pgkms.kdf import derive_kek
from pgkms.randomness import RandomSource
from pgkms.rotation import rotate
from pgkms.secret import Secret
from pgkms.startup import startup
from pgkms_conformance.crash.explorer import SPEC, Explorer, Protocol
from pgkms_conformance.crash.legacy import legacy_startup
from pgkms_conformance.crash.machine import Procedure
from pgkms_conformance.crash.simfs import Ordering

ORDERINGS: tuple[Ordering, ...] = ("subset", "prefix")
pytestmark = pytest.mark.req("CRASH_01", "DISK_07", "REC_02")


class SkippingFileSystem(ForwardingFileSystem):
    """Forwards every operation except the ``nth`` call of one kind on one path (a bug)."""

    def __init__(self, inner: FileSystem, kind: str, path: str, nth: int = 1) -> None:
        super().__init__(inner)
        self.kind, self.path, self.left = kind, path, nth

    def _skip(self, kind: str, path: str) -> bool:
        if (kind, path) == (self.kind, self.path):
            self.left -= 1
            return self.left == 0
        return False

    def fsync_file(self, path: str) -> None:
        if not self._skip("fsync", path):
            super().fsync_file(path)

    def fsync_dir(self, path: str) -> None:
        if not self._skip("fsync_dir", path):
            super().fsync_dir(path)


def without_fsync(kind: str, path: str, nth: int = 1) -> Protocol:
    """The spec protocol with one fsync left out, and its table edited to match."""

    def rotate_missing(fs: FileSystem, d: str, old: Secret, new: Secret, r: RandomSource) -> object:
        return rotate(d, old, new, SkippingFileSystem(fs, kind, path, nth), r)

    steps = list(SPEC.procedure.steps)
    role = {"pgdata": "datadir", "pgdata/pg_cryptokeys_tmp": "tmp"}.get(path, "tmp file")
    seen = 0
    for i, step in enumerate(steps):
        if (step.kind, step.role) == (kind, role):
            seen += 1
            if seen == nth or step.repeat != "once":
                if step.repeat == "once":
                    del steps[i]
                break
    procedure = Procedure(f"spec rotation without {kind} {path}", "stable", tuple(steps))
    return replace(SPEC, name=f"spec-{kind}", procedure=procedure, rotate=rotate_missing)


def test_a_missing_key_file_fsync_loses_keys_under_both_orderings() -> None:
    broken = without_fsync("fsync", "pgdata/pg_cryptokeys_tmp/0001")
    for ordering in ORDERINGS:
        explorer = Explorer(broken, ordering=ordering)
        # the table cannot say "fsync every key file but the second": skip the trace check
        explorer.phases = lambda trace: ["?"] * len(trace)  # type: ignore[method-assign]
        assert explorer.run().counts()["I1"] > 0, ordering


def test_a_missing_tmp_directory_fsync_loses_keys() -> None:
    counts = Explorer(without_fsync("fsync_dir", "pgdata/pg_cryptokeys_tmp")).run().counts()
    assert counts["I1"] > 0


def test_a_missing_data_directory_fsync_loses_keys_under_both_orderings() -> None:
    """Without the fsync of PGDATA after the tmp directory is written, the creation of
    pg_cryptokeys_tmp may be lost while pg_cryptokeys is already durably emptied (its own
    fsync came later): no key set survives, even when one directory's changes persist in
    order."""
    broken = without_fsync("fsync_dir", "pgdata")
    for ordering in ORDERINGS:
        assert Explorer(broken, ordering=ordering).run().counts()["I1"] > 0, ordering


def test_recovery_by_counting_files_is_caught() -> None:
    counting = replace(SPEC, name="spec-counting", startup=legacy_startup)
    r = Explorer(counting).run()
    assert r.counts()["I4"] > 0
    assert r.counts()["I1"] > 0


def test_a_startup_that_leaves_the_tmp_directory_breaks_i2() -> None:
    """Startup that opens pg_cryptokeys without recovering first (START_01 skipped)."""

    def no_recovery(fs: FileSystem, d: str, passphrase: Secret) -> InternalKeys:
        return load_key_set(fs, f"{d}/pg_cryptokeys", derive_kek(passphrase))

    counts = Explorer(replace(SPEC, name="spec-no-recovery", startup=no_recovery)).run().counts()
    assert counts["I2"] > 0


def test_a_recovery_that_is_not_idempotent_breaks_i3() -> None:
    """Recovery that durably notes it has run, and refuses to run twice."""

    def once_only(fs: FileSystem, d: str, passphrase: Secret) -> InternalKeys:
        if fs.stat(f"{d}/pg_cryptokeys_tmp") is not None:
            if fs.stat(f"{d}/recovering") is not None:
                raise NoValidKeySet("recovery already started once")
            fs.create_file(f"{d}/recovering", b"", 0o600)
            fs.fsync_dir(d)
        return startup(d, passphrase, fs)

    counts = Explorer(replace(SPEC, name="spec-once", startup=once_only)).run().counts()
    assert counts["I3"] > 0
