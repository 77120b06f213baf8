"""Rotations, crashes at random points, recoveries and restarts, interleaved (hypothesis).

The model keeps the set of passphrases the keys may be wrapped under: a completed rotation or a
successful startup narrows it to one; a crash during a rotation adds the new passphrase. After
every step some passphrase of that set must start the cluster with the original keys (I1),
and a successful startup must leave a single durable key set opening under its passphrase
(I2); a failed startup must leave the disk as it was (I4).
"""

from __future__ import annotations

from typing import cast

import pytest
from hypothesis import Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from pgkms import rotation
from pgkms.errors import KmsError
from pgkms.fs import FileSystem
from pgkms.layout import KeyId
from pgkms.randomness import ScriptedRandom
from pgkms.rotation import rotate
from pgkms.secret import Secret
from pgkms.startup import startup
from pgkms_conformance.crash.explorer import Scenario
from pgkms_conformance.crash.simfs import SimFileSystem, SimulatedCrash
from pgkms_conformance.material import derive

DATADIR = "pgdata"
POOL = [derive(f"machine/passphrase-{i}", 64 + i) for i in range(3)]
crash_points = st.none() | st.integers(min_value=0, max_value=18)


def opens(image: object, passphrase: bytes) -> tuple[bytes, ...] | None:
    fs = SimFileSystem(image)  # type: ignore[arg-type]
    try:
        keys = startup(DATADIR, Secret(passphrase), fs)
    except KmsError:
        return None
    return tuple(k.reveal() for k in keys.by_id().values())


pytestmark = pytest.mark.req("ROT_01", "REC_05", "REC_06", "START_04", "KEY_02")


class RotationWithCrashes(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        scenario = Scenario(label="machine")
        self.keys = scenario.keys
        self.fs_image = scenario.initial_image()
        self.candidates = {scenario.old}
        self.rotations = 0

    def _crash(self, fs: SimFileSystem, pick: int) -> None:
        states = fs.crash_states()
        self.fs_image = states[pick % len(states)].image

    def _working(self) -> bytes:
        return next(p for p in sorted(self.candidates) if opens(self.fs_image, p) == self.keys)

    @rule(new=st.sampled_from(POOL), crash=crash_points, pick=st.integers(0, 1 << 16))
    def rotate(self, new: bytes, crash: int | None, pick: int) -> None:
        old = self._working()
        self.rotations += 1
        ivs = [derive(f"machine/rotation-{self.rotations}-iv-{k.value}", 16) for k in KeyId]
        fs = SimFileSystem(self.fs_image, crash_after=crash)
        try:
            rotate(DATADIR, Secret(old), Secret(new), fs, ScriptedRandom(ivs))
        except SimulatedCrash:
            self._crash(fs, pick)
            self.candidates.add(new)
            return
        assert fs.image() == fs.durable_image()  # a finished rotation is durable
        self.fs_image = fs.image()
        self.candidates = {new}

    @rule(which=st.integers(0, 2), crash=crash_points, pick=st.integers(0, 1 << 16))
    def restart(self, which: int, crash: int | None, pick: int) -> None:
        passphrase = sorted(self.candidates)[which % len(self.candidates)]
        fs = SimFileSystem(self.fs_image, crash_after=crash)
        before = self.fs_image
        try:
            keys = startup(DATADIR, Secret(passphrase), fs)
        except SimulatedCrash:
            self._crash(fs, pick)
            return
        except KmsError:
            assert fs.image() == before  # I4
            return
        assert tuple(k.reveal() for k in keys.by_id().values()) == self.keys  # I1
        assert not any(p.startswith("pg_cryptokeys_tmp") for p, _, _ in fs.image())  # I2
        assert fs.image() == fs.durable_image()  # I2, and nothing left for a crash to undo
        self.fs_image = fs.image()
        self.candidates = {passphrase}

    @invariant()
    def keys_survive(self) -> None:
        assert any(opens(self.fs_image, p) == self.keys for p in self.candidates)  # I1


RotationWithCrashes.TestCase.settings = settings(
    RotationWithCrashes.TestCase.settings, stateful_step_count=25
)
TestRotationWithCrashes = RotationWithCrashes.TestCase


class _SkipFirstDataDirFsync:
    """A filesystem wrapper that drops the first fsync of the data directory (a bug)."""

    def __init__(self, inner: SimFileSystem) -> None:
        self.inner = inner
        self.skipped = False

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def fsync_dir(self, path: str) -> None:
        if path == DATADIR and not self.skipped:
            self.skipped = True
            return
        self.inner.fsync_dir(path)


def test_the_machine_catches_a_rotation_missing_an_fsync(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(
        datadir: str,
        old: Secret,
        new: Secret,
        fs: SimFileSystem,
        random: ScriptedRandom,
    ) -> object:
        return rotation.rotate(
            datadir, old, new, cast(FileSystem, _SkipFirstDataDirFsync(fs)), random
        )

    monkeypatch.setattr(__name__ + ".rotate", broken)
    with pytest.raises(AssertionError):
        # no shrinking: the point is that a failure is found, not its smallest form
        run_state_machine_as_test(
            RotationWithCrashes,
            settings=settings(
                RotationWithCrashes.TestCase.settings, phases=[Phase.generate], print_blob=False
            ),
        )
