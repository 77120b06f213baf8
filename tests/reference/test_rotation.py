"""Passphrase rotation and recovery (ROT_*, REC_*, KEY_02)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pgkms.bootstrap import bootstrap
from pgkms.errors import KeyDirectoryMissing, NoValidKeySet, PassphraseTooShort, WrongPassphrase
from pgkms.fs import OsFileSystem
from pgkms.internal_keys import wrap_key_set
from pgkms.kdf import derive_kek
from pgkms.keydir import write_key_set
from pgkms.randomness import ScriptedRandom
from pgkms.recovery import RECOVERY_TABLE, Decision, DirState, decide, recover
from pgkms.rotation import rotate
from pgkms.secret import Secret
from pgkms.startup import startup
from pgkms.upgrade import copy_keys_for_upgrade

from .helpers import NEW, OLD, RecordingFileSystem, snapshot

OTHER = b"a third passphrase " + b"t" * 60


@pytest.fixture
def datadir(tmp_path: Path) -> Path:
    d = tmp_path / "pgdata"
    d.mkdir()
    bootstrap(str(d), Secret(OLD))
    return d


@pytest.mark.req("KEY_02", "ROT_01", "ROT_03")
def test_rotation_keeps_keys_and_changes_passphrase(datadir: Path) -> None:
    before = startup(str(datadir), Secret(OLD))
    after = rotate(str(datadir), Secret(OLD), Secret(NEW))
    assert after == before == startup(str(datadir), Secret(NEW))
    with pytest.raises(WrongPassphrase):
        startup(str(datadir), Secret(OLD))
    assert not (datadir / "pg_cryptokeys_tmp").exists()


@pytest.mark.req("ROT_03")
def test_rotation_uses_injected_ivs_in_order(datadir: Path) -> None:
    ivs = [bytes([i]) * 16 for i in (7, 8, 9)]
    rotate(str(datadir), Secret(OLD), Secret(NEW), random=ScriptedRandom(ivs))
    for i, iv in enumerate(ivs):
        assert (datadir / f"pg_cryptokeys/000{i}").read_bytes()[36:52] == iv


@pytest.mark.req("ROT_04", "ROT_05", "ROT_06", "DISK_07")
def test_rotation_durability_order(datadir: Path) -> None:
    fs = RecordingFileSystem()
    rotate(str(datadir), Secret(OLD), Secret(NEW), fs=fs)
    d, kd, tmp = str(datadir), f"{datadir}/pg_cryptokeys", f"{datadir}/pg_cryptokeys_tmp"
    expected = [("mkdir", tmp)]
    for n in ("0000", "0001", "0002"):
        expected += [("create", f"{tmp}/{n}"), ("fsync", f"{tmp}/{n}")]
    expected += [("fsync_dir", tmp), ("fsync_dir", d)]
    expected += [("unlink", f"{kd}/{n}") for n in ("0000", "0001", "0002")]
    expected += [("fsync_dir", kd), ("rmdir", kd), ("fsync_dir", d)]
    expected += [("rename", f"{tmp} -> {kd}"), ("fsync_dir", d)]
    assert fs.log == expected


@pytest.mark.req("ROT_01")
def test_rotation_with_wrong_old_passphrase_writes_nothing(datadir: Path) -> None:
    before = snapshot(datadir)
    with pytest.raises(WrongPassphrase):
        rotate(str(datadir), Secret(OTHER), Secret(NEW))
    assert snapshot(datadir) == before


@pytest.mark.req("ROT_02", "PASS_04")
def test_rotation_to_short_passphrase_writes_nothing(datadir: Path) -> None:
    before = snapshot(datadir)
    with pytest.raises(PassphraseTooShort):
        rotate(str(datadir), Secret(OLD), Secret(b"short"))
    assert snapshot(datadir) == before


# --- recovery: build each directory state by hand ---------------------------------------------


def _write_set(datadir: Path, name: str, passphrase: bytes, keys_from: Path) -> None:
    keys = startup(str(keys_from), Secret(OLD))
    write_key_set(
        OsFileSystem(),
        str(datadir / name),
        wrap_key_set(derive_kek(Secret(passphrase)), keys, bytes),
    )


def _state(datadir: Path, current: str, tmp: str) -> None:
    """Make pg_cryptokeys / pg_cryptokeys_tmp: 'absent', 'old', 'new', 'partial', 'garbage'."""
    pristine = datadir.parent / "pristine"
    shutil.copytree(datadir, pristine)
    shutil.rmtree(datadir / "pg_cryptokeys")
    for name, what in (("pg_cryptokeys", current), ("pg_cryptokeys_tmp", tmp)):
        if what in ("old", "new", "partial", "garbage"):
            _write_set(datadir, name, OLD if what == "old" else NEW, pristine)
        if what == "partial":
            (datadir / name / "0002").unlink()
        if what == "garbage":
            for f in (datadir / name).iterdir():
                f.write_bytes(bytes(132))


@pytest.mark.req("REC_01", "REC_02", "REC_03", "REC_04", "REC_05", "REC_06")
@pytest.mark.parametrize(
    ("current", "tmp", "configured", "decision"),
    [
        ("old", "absent", OLD, Decision.NOTHING),
        ("old", "new", NEW, Decision.ADOPT_TMP),
        ("old", "new", OLD, Decision.DISCARD_TMP),
        ("partial", "new", NEW, Decision.ADOPT_TMP),
        ("absent", "new", NEW, Decision.ADOPT_TMP),
        ("old", "partial", OLD, Decision.DISCARD_TMP),
        ("old", "garbage", OLD, Decision.DISCARD_TMP),  # 2020: three files win, good set deleted
        ("absent", "new", OLD, Decision.FAIL),
        ("old", "garbage", NEW, Decision.FAIL),
    ],
)
def test_recovery_decisions(
    datadir: Path, current: str, tmp: str, configured: bytes, decision: Decision
) -> None:
    _state(datadir, current, tmp)
    kek = derive_kek(Secret(configured))
    fs = OsFileSystem()
    assert decide(fs, str(datadir), kek) is decision
    before = snapshot(datadir)
    if decision is Decision.FAIL:
        with pytest.raises(NoValidKeySet):
            recover(fs, str(datadir), kek)
        assert snapshot(datadir) == before
        return
    assert recover(fs, str(datadir), kek) is decision
    assert not (datadir / "pg_cryptokeys_tmp").exists()
    startup(str(datadir), Secret(configured))
    assert recover(fs, str(datadir), kek) is Decision.NOTHING  # REC_06: idempotent


@pytest.mark.req("REC_02", "REC_05")
def test_decision_table_never_discards_the_only_valid_set() -> None:
    for (current, tmp), decision in RECOVERY_TABLE.items():
        if decision is Decision.DISCARD_TMP:
            assert current is DirState.VALID
        if decision is Decision.ADOPT_TMP:
            assert tmp is DirState.VALID
        if DirState.VALID not in (current, tmp) and tmp is not DirState.ABSENT:
            assert decision is Decision.FAIL
    assert len(RECOVERY_TABLE) == len(DirState) ** 2


# --- pg_upgrade ---------------------------------------------------------------------------------


@pytest.mark.req("UPG_01")
def test_upgrade_copies_keys_byte_for_byte(datadir: Path, tmp_path: Path) -> None:
    new = tmp_path / "new"
    new.mkdir()
    bootstrap(str(new), Secret(OLD))  # initdb'd with the same passphrase, different keys
    old_keys = startup(str(datadir), Secret(OLD))
    assert startup(str(new), Secret(OLD)) != old_keys
    assert copy_keys_for_upgrade(str(datadir), str(new), Secret(OLD)) == old_keys
    for name in ("0000", "0001", "0002"):
        old_bytes = (datadir / "pg_cryptokeys" / name).read_bytes()
        assert (new / "pg_cryptokeys" / name).read_bytes() == old_bytes
    assert startup(str(new), Secret(OLD)) == old_keys


@pytest.mark.req("UPG_01")
def test_upgrade_with_another_passphrase_copies_nothing(datadir: Path, tmp_path: Path) -> None:
    new = tmp_path / "new"
    new.mkdir()
    bootstrap(str(new), Secret(NEW))
    before = snapshot(new)
    with pytest.raises(WrongPassphrase):
        copy_keys_for_upgrade(str(datadir), str(new), Secret(NEW))
    assert snapshot(new) == before


@pytest.mark.req("UPG_01")
def test_upgrade_into_a_cluster_without_keys_writes_nothing(datadir: Path, tmp_path: Path) -> None:
    new = tmp_path / "new-without-keys"
    new.mkdir()
    with pytest.raises(KeyDirectoryMissing):
        copy_keys_for_upgrade(str(datadir), str(new), Secret(OLD))
    assert [p.name for p in new.iterdir()] == ["pg_cryptokeys.lock"]  # the lock file only
