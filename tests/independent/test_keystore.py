"""Bootstrap, startup, rotation and recovery of the independent implementation, on disk."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pgkms_independent import disk
from pgkms_independent.entropy import Entropy
from pgkms_independent.failures import Code, Failure
from pgkms_independent.keystore import Cluster

OLD = b"old passphrase " + b"o" * 60
NEW = b"new passphrase " + b"n" * 60
KEYS = [bytes([i]) * 64 for i in (7, 8, 9)]


def code_of(action: Callable[[], object]) -> Code:
    with pytest.raises(Failure) as caught:
        action()
    return caught.value.code


@pytest.fixture
def journal(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Record every mutating disk operation, in order, as (operation, name relative to root)."""
    log: list[tuple[str, str]] = []

    def wrap(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def recorded(path: str, *args: Any) -> Any:
            log.append((name, os.path.basename(path)))
            return fn(path, *args)

        return recorded

    for name in ("make_dir", "write_new_file", "sync_dir", "rename"):
        monkeypatch.setattr(disk, name, wrap(name, getattr(disk, name)))
    return log


@pytest.mark.req("BOOT_03", "BOOT_04", "DISK_01", "DISK_02", "DISK_09", "DISK_07")
def test_bootstrap_writes_durably_in_order(tmp_path: Path, journal: list[tuple[str, str]]) -> None:
    keys = Cluster(str(tmp_path)).bootstrap(OLD, Entropy([*KEYS, None, None, None]))
    assert [k.expose() for k in keys.keys] == KEYS
    assert journal == [
        ("make_dir", "pg_cryptokeys_tmp"),
        ("write_new_file", "0000"),
        ("write_new_file", "0001"),
        ("write_new_file", "0002"),
        ("sync_dir", "pg_cryptokeys_tmp"),
        ("sync_dir", tmp_path.name),
        ("rename", "pg_cryptokeys_tmp"),
        ("sync_dir", tmp_path.name),
    ]
    assert not (tmp_path / "pg_cryptokeys_tmp").exists()
    assert stat.S_IMODE(os.stat(tmp_path / "pg_cryptokeys").st_mode) == 0o700
    for name in ("0000", "0001", "0002"):
        assert stat.S_IMODE(os.stat(tmp_path / "pg_cryptokeys" / name).st_mode) == 0o600


@pytest.mark.req("ROT_03", "ROT_04", "ROT_05", "ROT_06", "KEY_02")
def test_rotation_writes_the_new_set_before_removing_the_old(tmp_path: Path) -> None:
    cluster = Cluster(str(tmp_path))
    cluster.bootstrap(OLD, Entropy(KEYS))
    with disk.tracing(str(tmp_path)) as trace:
        cluster.rotate(OLD, NEW)
    steps = [(entry["op"], entry["path"]) for entry in trace]
    tmp, cur = "pg_cryptokeys_tmp", "pg_cryptokeys"
    assert steps == [
        ("mkdir", tmp),
        *[(op, f"{tmp}/{name}") for name in ("0000", "0001", "0002") for op in ("create", "fsync")],
        ("fsync_dir", tmp),
        ("fsync_dir", "."),
        *[("unlink", f"{cur}/{name}") for name in ("0000", "0001", "0002")],
        ("fsync_dir", cur),  # the emptied directory, before rmdir
        ("rmdir", cur),
        ("fsync_dir", "."),
        ("rename", tmp),
        ("fsync_dir", "."),
    ]
    assert [k.expose() for k in cluster.startup(NEW).keys] == KEYS
    assert code_of(lambda: cluster.startup(OLD)) is Code.WRONG_PASSPHRASE


@pytest.mark.req("BOOT_01", "BOOT_02", "BOOT_05", "PASS_04", "PASS_05")
def test_bootstrap_refusals_write_nothing(tmp_path: Path) -> None:
    cluster = Cluster(str(tmp_path))
    assert code_of(lambda: cluster.bootstrap(OLD[:63])) is Code.PASSPHRASE_TOO_SHORT
    assert code_of(lambda: cluster.bootstrap(b"x" * 1025)) is Code.PASSPHRASE_TOO_LONG
    assert list(tmp_path.iterdir()) == []  # the length rules come before the lock file
    (tmp_path / "pg_cryptokeys").mkdir()
    assert code_of(lambda: cluster.bootstrap(OLD)) is Code.KEYS_ALREADY_EXIST
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pg_cryptokeys", "pg_cryptokeys.lock"]
    assert list((tmp_path / "pg_cryptokeys").iterdir()) == []


@pytest.mark.req("START_02", "DISK_06")
def test_startup_checks_the_directory_first(tmp_path: Path) -> None:
    cluster = Cluster(str(tmp_path))
    assert code_of(lambda: cluster.startup(OLD)) is Code.KEY_DIRECTORY_MISSING
    cluster.bootstrap(OLD)
    keydir = tmp_path / "pg_cryptokeys"
    (keydir / "0002").unlink()
    (keydir / "0001").write_bytes(b"short")
    assert code_of(lambda: cluster.startup(OLD)) is Code.KEY_FILE_MISSING
    (keydir / "zz").write_bytes(b"")
    assert code_of(lambda: cluster.startup(OLD)) is Code.UNEXPECTED_FILE


@pytest.mark.req("REC_03", "REC_04", "REC_05")
def test_recovery_by_content(tmp_path: Path) -> None:
    cluster = Cluster(str(tmp_path))
    cluster.bootstrap(OLD)
    keydir, staging = tmp_path / "pg_cryptokeys", tmp_path / "pg_cryptokeys_tmp"
    # An empty staging directory (a crash right after mkdir): discarded, current kept.
    staging.mkdir()
    assert cluster.recover_with(OLD) == "discard_tmp"
    assert not staging.exists()
    # A complete staging set under NEW, and a damaged current: adopted under NEW.
    os.rename(keydir, staging)
    (tmp_path / "pg_cryptokeys").mkdir()
    assert cluster.recover_with(OLD) == "adopt_tmp"
    assert not staging.exists()
    # Neither valid: nothing changes, and the code says so.
    staging.mkdir()
    (keydir / "0000").write_bytes(b"")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    assert code_of(lambda: cluster.recover_with(OLD)) is Code.NO_VALID_KEY_SET
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


@pytest.mark.req("START_03")
def test_a_single_damaged_file_is_not_a_wrong_passphrase(tmp_path: Path) -> None:
    cluster = Cluster(str(tmp_path))
    cluster.bootstrap(OLD)
    path = tmp_path / "pg_cryptokeys" / "0001"
    data = bytearray(path.read_bytes())
    data[100] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(Failure) as caught:
        cluster.startup(OLD)
    assert caught.value.code is Code.HMAC_MISMATCH
    assert "0001" in caught.value.message


@pytest.mark.req("DISK_07")
def test_os_errors_become_storage_failures(tmp_path: Path) -> None:
    assert code_of(lambda: disk.read_all(str(tmp_path / "absent"))) is Code.STORAGE_ERROR
    assert code_of(lambda: disk.names_in(str(tmp_path / "a\0b"))) is Code.STORAGE_ERROR
    assert code_of(lambda: disk.kind_of("\ud800")) is Code.STORAGE_ERROR


@pytest.mark.req("ENV_02")
def test_a_special_file_as_key_directory_is_named_in_words(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pg_cryptokeys")
    with pytest.raises(Failure) as caught:
        Cluster(str(tmp_path)).startup(OLD)
    assert caught.value.code is Code.KEY_DIRECTORY_MISSING
    assert "found a special file (FIFO, socket or device)" in str(caught.value)
