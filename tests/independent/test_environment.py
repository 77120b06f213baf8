"""A hostile data directory (ENV_01..ENV_05, BOOT_05): links, special files, huge files, deep
trees, loose modes. Each gets its typed code within a bounded time, and nothing outside the data
directory (a canary) is touched."""

from __future__ import annotations

import hashlib
import os
import stat
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from pgkms_independent import disk
from pgkms_independent.entropy import Entropy
from pgkms_independent.failures import Code, Failure
from pgkms_independent.keystore import Cluster

from tests.independent.processes import IVS, KEYS, NEW, OLD, Adapter, code

HOSTILE_ANSWER_WITHIN = 10.0  # seconds: a hang is a failure, not a stuck test run
DEEP_REMOVAL_WITHIN = 30.0  # 1101 directory fsyncs: 1.2 s measured alone, more on a busy disk


def code_of(action: Callable[[], object]) -> Code:
    with pytest.raises(Failure) as caught:
        action()
    return caught.value.code


def bootstrapped(datadir: Path) -> Cluster:
    datadir.mkdir(exist_ok=True)
    cluster = Cluster(str(datadir))
    cluster.bootstrap(OLD, Entropy([*KEYS, *IVS]))
    return cluster


def snapshot(root: Path) -> dict[str, str]:
    """Every entry under ``root`` (links not followed): kind, mode and a content digest. The
    lock file is left out: the first procedure creates it, and it holds nothing."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [n for n in dirnames + filenames if n != "pg_cryptokeys.lock"]:
            path = Path(dirpath, name)
            info = path.lstat()
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
            out[str(path.relative_to(root))] = (
                f"{stat.S_IFMT(info.st_mode)} {info.st_mode:o} {digest}"
            )
    return out


@pytest.fixture
def canary(tmp_path: Path) -> Path:
    """A directory outside the data directory that a link may point at; it must stay intact."""
    victim = tmp_path / "canary"
    (victim / "deeper").mkdir(parents=True)
    (victim / "0000").write_bytes(b"not a key, but precious")
    (victim / "deeper" / "file").write_bytes(b"also precious")
    return victim


@pytest.mark.req("ENV_01", "REC_05")
def test_a_symlinked_tmp_pointing_at_a_canary_is_refused(tmp_path: Path, canary: Path) -> None:
    cluster = bootstrapped(tmp_path / "data")
    before = snapshot(canary)
    (tmp_path / "data" / "pg_cryptokeys_tmp").symlink_to(canary)
    assert code_of(lambda: cluster.startup(OLD)) is Code.SYMLINK_REFUSED
    assert code_of(lambda: cluster.recover_with(OLD)) is Code.SYMLINK_REFUSED
    assert code_of(lambda: cluster.rotate(OLD, NEW)) is Code.SYMLINK_REFUSED
    assert snapshot(canary) == before
    assert (tmp_path / "data" / "pg_cryptokeys_tmp").is_symlink()
    # bootstrap beside a link named pg_cryptokeys_tmp (and nothing else) refuses it too
    (tmp_path / "fresh").mkdir()
    (tmp_path / "fresh" / "pg_cryptokeys_tmp").symlink_to(canary)
    fresh = Cluster(str(tmp_path / "fresh"))
    assert code_of(lambda: fresh.bootstrap(OLD)) is Code.SYMLINK_REFUSED
    assert snapshot(canary) == before


@pytest.mark.req("ENV_01", "REC_04")
def test_a_symlinked_current_beside_a_valid_tmp_is_refused(tmp_path: Path, canary: Path) -> None:
    data = tmp_path / "data"
    cluster = bootstrapped(data)
    os.rename(data / "pg_cryptokeys", data / "pg_cryptokeys_tmp")  # a valid temporary set
    (data / "pg_cryptokeys").symlink_to(canary)
    before, tmp_before = snapshot(canary), snapshot(data / "pg_cryptokeys_tmp")
    assert code_of(lambda: cluster.startup(OLD)) is Code.SYMLINK_REFUSED
    assert snapshot(canary) == before
    assert snapshot(data / "pg_cryptokeys_tmp") == tmp_before
    # with no temporary set, startup refuses a linked key directory instead of reading it
    os.unlink(data / "pg_cryptokeys")
    os.rename(data / "pg_cryptokeys_tmp", data / "pg_cryptokeys")
    os.rename(data / "pg_cryptokeys", tmp_path / "elsewhere")
    (data / "pg_cryptokeys").symlink_to(tmp_path / "elsewhere")
    assert code_of(lambda: cluster.startup(OLD)) is Code.SYMLINK_REFUSED


@pytest.mark.req("ENV_01", "ENV_04", "REC_03")
def test_links_inside_a_discarded_tmp_are_unlinked_never_followed(
    tmp_path: Path, canary: Path
) -> None:
    data = tmp_path / "data"
    cluster = bootstrapped(data)
    staging = data / "pg_cryptokeys_tmp"
    staging.mkdir(mode=0o700)
    (staging / "0000").symlink_to(canary / "0000")
    (staging / "sub").symlink_to(canary)
    (staging / "real").mkdir()
    (staging / "real" / "link").symlink_to(canary / "deeper")
    before = snapshot(canary)
    assert cluster.recover_with(OLD) == "discard_tmp"
    assert not os.path.lexists(staging)
    assert snapshot(canary) == before


@pytest.mark.req("ENV_04", "REC_03")
def test_1100_nested_directories_beside_a_valid_current(tmp_path: Path) -> None:
    data = tmp_path / "data"
    cluster = bootstrapped(data)
    deep = data / "pg_cryptokeys_tmp"
    deep.mkdir(mode=0o700)
    fd = os.open(deep, os.O_RDONLY | os.O_DIRECTORY)
    try:  # built through descriptors: the whole path is longer than many tools accept
        for _ in range(1100):
            os.mkdir("d", dir_fd=fd)
            child = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
        os.close(os.open("leaf", os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=fd))
    finally:
        os.close(fd)
    started = time.monotonic()
    with disk.tracing(str(data)) as trace:
        assert cluster.recover_with(OLD) == "discard_tmp"
    assert time.monotonic() - started < DEEP_REMOVAL_WITHIN
    assert not deep.exists()
    assert sum(1 for entry in trace if entry["op"] == "rmdir") == 1101
    # ENV_04: each directory fsynced after its entries went, before its own rmdir
    synced: set[str] = set()
    for entry in trace:
        if entry["op"] == "fsync_dir":
            synced.add(entry["path"])
        if entry["op"] == "rmdir":
            assert entry["path"] in synced
    assert [k.expose() for k in cluster.startup(OLD).keys] == KEYS


@pytest.mark.req("ENV_02", "ENV_03", "ENV_01", "DISK_03")
def test_special_and_huge_key_files_through_the_adapter(tmp_path: Path) -> None:
    """FIFO, /dev/zero link, 3 GiB sparse file: typed answers, quickly, in bounded memory."""
    data = tmp_path / "data"
    bootstrapped(data)
    keydir = data / "pg_cryptokeys"
    saved = (keydir / "0001").read_bytes()
    cases: list[tuple[str, Callable[[Path], None], str]] = [
        ("fifo", lambda p: os.mkfifo(p, 0o600), "not_regular_file"),
        ("dev zero", lambda p: p.symlink_to("/dev/zero"), "symlink_refused"),
        ("directory", lambda p: p.mkdir(mode=0o700), "not_regular_file"),
        ("sparse 3 GiB", lambda p: os.truncate(_new_file(p), 3 << 30), "record_size_invalid"),
    ]
    with Adapter() as adapter:
        for name, make, expected in cases:
            _clear(keydir / "0001")
            make(keydir / "0001")
            started = time.monotonic()
            for op in ("startup", "recover"):
                answer = adapter.call(
                    op, HOSTILE_ANSWER_WITHIN, datadir=str(data), passphrase=OLD.hex()
                )
                if op == "startup":
                    assert code(answer) == expected, name
                    if name == "sparse 3 GiB":
                        assert str(3 << 30) in answer["error"]["message"]
                else:
                    assert answer == {
                        "id": answer["id"],
                        "ok": True,
                        "result": {"decision": "nothing"},
                    }
            assert time.monotonic() - started < HOSTILE_ANSWER_WITHIN, name
        assert adapter.peak_rss_kib() < 100 * 1024  # ENV_03: never the file's size in memory
    (keydir / "0001").unlink()
    (keydir / "0001").write_bytes(saved)
    os.chmod(keydir / "0001", 0o600)
    assert [k.expose() for k in Cluster(str(data)).startup(OLD).keys] == KEYS


def _new_file(path: Path) -> Path:
    path.touch(mode=0o600)
    return path


def _clear(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        path.rmdir()
    else:
        path.unlink()


@pytest.mark.req("ENV_02", "REC_03")
def test_a_fifo_in_a_tmp_makes_it_invalid_and_is_removed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    cluster = bootstrapped(data)
    staging = data / "pg_cryptokeys_tmp"
    staging.mkdir(mode=0o700)
    for name in ("0000", "0001", "0002"):
        os.mkfifo(staging / name, 0o600)
    assert cluster.recover_with(OLD) == "discard_tmp"
    assert not staging.exists()


@pytest.mark.req("ENV_05", "REC_02")
@pytest.mark.parametrize(
    ("target", "mode", "expected"),
    [
        ("0001", 0o666, Code.PERMISSIONS_TOO_OPEN),
        ("0001", 0o604, Code.PERMISSIONS_TOO_OPEN),
        ("0001", 0o640, None),
        (".", 0o777, Code.PERMISSIONS_TOO_OPEN),
        (".", 0o701, Code.PERMISSIONS_TOO_OPEN),
        (".", 0o750, None),
    ],
)
def test_modes_beyond_the_group_mode_are_refused(
    tmp_path: Path, target: str, mode: int, expected: Code | None
) -> None:
    cluster = bootstrapped(tmp_path)
    os.chmod(tmp_path / "pg_cryptokeys" / target, mode)
    if expected is None:
        assert [k.expose() for k in cluster.startup(OLD).keys] == KEYS
    else:
        with pytest.raises(Failure) as caught:
            cluster.startup(OLD)
        assert caught.value.code is expected
        assert f"{mode:04o}" in caught.value.message


@pytest.mark.req("ENV_05", "REC_04", "REC_05")
def test_a_too_open_directory_is_invalid_in_recovery(tmp_path: Path) -> None:
    data = tmp_path / "data"
    cluster = bootstrapped(data)
    os.rename(data / "pg_cryptokeys", data / "pg_cryptokeys_tmp")
    (data / "pg_cryptokeys").mkdir(mode=0o700)  # an empty current: INVALID
    os.chmod(data / "pg_cryptokeys_tmp", 0o777)
    before = snapshot(data)
    assert code_of(lambda: cluster.recover_with(OLD)) is Code.NO_VALID_KEY_SET
    assert snapshot(data) == before
    os.chmod(data / "pg_cryptokeys_tmp", 0o700)
    assert cluster.recover_with(OLD) == "adopt_tmp"


@pytest.mark.req("BOOT_05", "BOOT_01")
def test_bootstrap_retries_over_an_incomplete_tmp_and_refuses_a_complete_one(
    tmp_path: Path,
) -> None:
    cluster = Cluster(str(tmp_path))
    staging = tmp_path / "pg_cryptokeys_tmp"
    staging.mkdir(mode=0o700)
    (staging / "0000").write_bytes(b"")  # what a killed bootstrap leaves
    (staging / "nested").mkdir()
    keys = cluster.bootstrap(OLD, Entropy([*KEYS, *IVS]))
    assert [k.expose() for k in keys.keys] == KEYS
    assert not staging.exists()
    # a complete pg_cryptokeys_tmp alone is a rotation's, interrupted after its removal
    other = tmp_path / "other"
    other.mkdir()
    os.rename(tmp_path / "pg_cryptokeys", other / "pg_cryptokeys_tmp")
    before = snapshot(other)
    assert code_of(lambda: Cluster(str(other)).bootstrap(NEW)) is Code.KEYS_ALREADY_EXIST
    assert snapshot(other) == before
    # a lone regular file of that name is no key set either
    (tmp_path / "third").mkdir()
    (tmp_path / "third" / "pg_cryptokeys_tmp").write_bytes(b"x")
    Cluster(str(tmp_path / "third")).bootstrap(OLD)
    assert not (tmp_path / "third" / "pg_cryptokeys_tmp").exists()


@pytest.mark.req("ENV_01", "ENV_02", "CONC_01")
def test_a_lock_file_that_is_a_link_or_a_fifo_is_refused(tmp_path: Path, canary: Path) -> None:
    cluster = bootstrapped(tmp_path / "data")
    lock = tmp_path / "data" / "pg_cryptokeys.lock"
    lock.unlink()
    lock.symlink_to(canary / "0000")
    before = snapshot(canary)
    assert code_of(lambda: cluster.startup(OLD)) is Code.SYMLINK_REFUSED
    assert snapshot(canary) == before
    lock.unlink()
    os.mkfifo(lock, 0o600)
    assert code_of(lambda: cluster.startup(OLD)) is Code.NOT_REGULAR_FILE


@pytest.mark.req("ERR_01", "DISK_06")
def test_a_newline_in_an_entry_name_cannot_forge_a_line(tmp_path: Path) -> None:
    cluster = bootstrapped(tmp_path)
    (tmp_path / "pg_cryptokeys" / "0000\nFATAL: forged").write_bytes(b"")
    with pytest.raises(Failure) as caught:
        cluster.startup(OLD)
    assert caught.value.code is Code.UNEXPECTED_FILE
    assert "\n" not in caught.value.message
    assert "\\n" in caught.value.message
