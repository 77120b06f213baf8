"""Failures leave a state that names itself: ROT_07, ROT_08, BOOT_05.

Real I/O errors are injected with strace (``fsync`` failing with EIO at its K-th call), every
other failing operation in process through a ``FileSystem`` that fails its K-th mutating call,
and real SIGKILLs through a child that kills itself before its K-th mutating call.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
from pgkms.bootstrap import bootstrap
from pgkms.errors import KeysAlreadyExist, RotationIncomplete, StorageError
from pgkms.fs import FileSystem, ForwardingFileSystem, OsFileSystem
from pgkms.rotation import rotate
from pgkms.secret import Secret
from pgkms.startup import startup
from pgkms.upgrade import copy_keys_for_upgrade

from .helpers import NEW, OLD, error_code, make_cluster, opens_under, run_pgkms

STRACE = "/usr/bin/strace"
ROTATION_FSYNCS = 8  # 3 files, tmp, PGDATA; pg_cryptokeys emptied, PGDATA twice
BOOTSTRAP_FSYNCS = 6  # 3 files, tmp, PGDATA before and after the rename
POINT_OF_NO_RETURN_FSYNC = 6  # the first fsync after the first removal (ROT_05)


def _eio_at(k: int) -> tuple[str, ...]:
    return (STRACE, "-f", "-qq", "-o", "/dev/null", "-e", "trace=fsync",
            "-e", f"inject=fsync:error=EIO:when={k}")  # fmt: skip


@pytest.mark.req("ROT_07", "ROT_08", "DISK_07")
@pytest.mark.parametrize("k", range(1, ROTATION_FSYNCS + 2))
def test_rotation_with_its_kth_fsync_failing(tmp_path: Path, k: int) -> None:
    datadir, old, new = make_cluster(tmp_path)
    done = run_pgkms(
        "rotate", str(datadir), "--passphrase-command", old, "--new-passphrase-command", new,
        prefix=_eio_at(k),
    )  # fmt: skip
    code = error_code(done)
    if k > ROTATION_FSYNCS:
        assert code is None  # no fsync failed
    elif k < POINT_OF_NO_RETURN_FSYNC:
        assert code == "storage_error"  # ROT_07: the failure's own code ...
        assert not (datadir / "pg_cryptokeys_tmp").exists()  # ... and no tmp left to adopt
        assert opens_under(datadir, old) and not opens_under(datadir, new)
        return
    else:
        assert code == "rotation_incomplete"  # ROT_08
        assert b"NEW passphrase" in done.stderr
    assert opens_under(datadir, new)  # the next startup under it completes the rotation
    assert not opens_under(datadir, old)
    assert not (datadir / "pg_cryptokeys_tmp").exists()


@pytest.mark.req("BOOT_05", "BOOT_04")
@pytest.mark.parametrize("k", range(1, BOOTSTRAP_FSYNCS + 1))
def test_bootstrap_with_its_kth_fsync_failing_leaves_nothing_in_the_way(
    tmp_path: Path, k: int
) -> None:
    datadir = tmp_path / "pgdata"
    datadir.mkdir()
    command = f"cat {tmp_path / 'pass'}"
    (tmp_path / "pass").write_bytes(OLD)
    done = run_pgkms("init", str(datadir), "--passphrase-command", command, prefix=_eio_at(k))
    assert error_code(done) == "storage_error"
    assert sorted(p.name for p in datadir.iterdir()) == ["pg_cryptokeys.lock"]
    retry = run_pgkms("init", str(datadir), "--passphrase-command", command)
    assert retry.returncode == 0, retry.stderr
    assert opens_under(datadir, command)


class FailingAt(ForwardingFileSystem):
    """Fails its ``k``-th mutating call with a StorageError, as a full or broken disk would."""

    def __init__(self, inner: FileSystem, k: int) -> None:
        super().__init__(inner)
        self.k = k
        self.calls: list[str] = []

    def _count(self, what: str) -> None:
        self.calls.append(what)
        if len(self.calls) == self.k:
            raise StorageError(f"{what}: injected failure")

    def mkdir(self, path: str, mode: int) -> None:
        self._count(f"mkdir {path}")
        super().mkdir(path, mode)

    def create_file(self, path: str, data: bytes, mode: int) -> None:
        self._count(f"create {path}")
        super().create_file(path, data, mode)

    def fsync_file(self, path: str) -> None:
        self._count(f"fsync {path}")
        super().fsync_file(path)

    def fsync_dir(self, path: str) -> None:
        self._count(f"fsync_dir {path}")
        super().fsync_dir(path)

    def rename(self, src: str, dst: str) -> None:
        self._count(f"rename {src}")
        super().rename(src, dst)

    def unlink(self, path: str) -> None:
        self._count(f"unlink {path}")
        super().unlink(path)

    def rmdir(self, path: str) -> None:
        self._count(f"rmdir {path}")
        super().rmdir(path)


# mkdir, 3 x (create, fsync), fsync tmp, fsync PGDATA; 3 unlinks, fsync, rmdir, fsync PGDATA;
# rename, fsync PGDATA
ROTATION_OPS = 17
BOOTSTRAP_OPS = 11


@pytest.mark.req("ROT_07", "ROT_08")
@pytest.mark.parametrize("k", range(1, ROTATION_OPS + 1))
def test_rotation_with_any_mutating_call_failing(tmp_path: Path, k: int) -> None:
    datadir = tmp_path / "pgdata"
    datadir.mkdir()
    keys = bootstrap(str(datadir), Secret(OLD))
    fs = FailingAt(OsFileSystem(), k)
    failure: Exception | None = None
    try:
        rotate(str(datadir), Secret(OLD), Secret(NEW), fs)
    except (RotationIncomplete, StorageError) as exc:
        failure = exc
    assert failure is not None, f"rotation ignored its failing call {fs.calls[k - 1]}"
    # the point of no return: the first removal in pg_cryptokeys (the clean-up's removals in
    # pg_cryptokeys_tmp do not count)
    removal_began = any(
        c.startswith(("unlink", "rmdir"))
        and ("/pg_cryptokeys/" in c or c.endswith("/pg_cryptokeys"))
        for c in fs.calls[:k]
    )
    if isinstance(failure, RotationIncomplete):  # ROT_08: at or past the first removal
        assert removal_began, fs.calls
        assert "NEW passphrase" in failure.message
        opener = NEW
    else:  # ROT_07: before it, and the temporary set is gone again
        assert not removal_began, fs.calls
        assert not (datadir / "pg_cryptokeys_tmp").exists()
        opener = OLD
    assert startup(str(datadir), Secret(opener)).by_id() == keys.by_id()
    assert not (datadir / "pg_cryptokeys_tmp").exists()


@pytest.mark.req("BOOT_05")
@pytest.mark.parametrize("k", range(1, BOOTSTRAP_OPS + 1))
def test_bootstrap_with_any_mutating_call_failing(tmp_path: Path, k: int) -> None:
    datadir = tmp_path / "pgdata"
    datadir.mkdir()
    with pytest.raises(StorageError):
        bootstrap(str(datadir), Secret(OLD), FailingAt(OsFileSystem(), k))
    assert sorted(p.name for p in datadir.iterdir()) == ["pg_cryptokeys.lock"]
    bootstrap(str(datadir), Secret(OLD))  # the retry


@pytest.mark.req("ROT_07", "ROT_08", "UPG_01")
def test_the_upgrade_swap_cleans_up_or_says_recovery_completes_it(tmp_path: Path) -> None:
    old_cluster, new_cluster = tmp_path / "old", tmp_path / "new"
    for d in (old_cluster, new_cluster):
        d.mkdir()
    old_keys = bootstrap(str(old_cluster), Secret(OLD))
    new_keys = bootstrap(str(new_cluster), Secret(OLD))
    with pytest.raises(StorageError):  # the new set's fsync: before the point of no return
        copy_keys_for_upgrade(str(old_cluster), str(new_cluster), Secret(OLD), FailingAt(
            OsFileSystem(), 3))  # fmt: skip
    assert not (new_cluster / "pg_cryptokeys_tmp").exists()
    assert startup(str(new_cluster), Secret(OLD)).by_id() == new_keys.by_id()
    # the first removal fails, nothing of the new cluster's set is gone: recovery keeps it
    with pytest.raises(RotationIncomplete, match="copied keys are complete in pg_cryptokeys_tmp"):
        copy_keys_for_upgrade(str(old_cluster), str(new_cluster), Secret(OLD), FailingAt(
            OsFileSystem(), 10))  # fmt: skip
    assert startup(str(new_cluster), Secret(OLD)).by_id() == new_keys.by_id()
    # the second removal fails, the new cluster's set is incomplete: recovery adopts the copy
    with pytest.raises(RotationIncomplete, match="completes the copy if the removal"):
        copy_keys_for_upgrade(str(old_cluster), str(new_cluster), Secret(OLD), FailingAt(
            OsFileSystem(), 11))  # fmt: skip
    assert startup(str(new_cluster), Secret(OLD)).by_id() == old_keys.by_id()
    assert not (new_cluster / "pg_cryptokeys_tmp").exists()


# A child that bootstraps through a filesystem killing its own process (SIGKILL, no clean-up
# of any kind) just before its K-th mutating call.
KILLED_INIT = """
import os, signal, sys
from pgkms.bootstrap import bootstrap
from pgkms.fs import ForwardingFileSystem, OsFileSystem
from pgkms.secret import Secret

class Dying(ForwardingFileSystem):
    n = 0
    def _tick(self):
        Dying.n += 1
        if Dying.n == int(sys.argv[2]):
            os.kill(os.getpid(), signal.SIGKILL)
    def mkdir(self, p, m): self._tick(); super().mkdir(p, m)
    def create_file(self, p, d, m): self._tick(); super().create_file(p, d, m)
    def fsync_file(self, p): self._tick(); super().fsync_file(p)
    def fsync_dir(self, p): self._tick(); super().fsync_dir(p)
    def rename(self, s, d): self._tick(); super().rename(s, d)

bootstrap(sys.argv[1], Secret(bytes.fromhex(sys.argv[3])), Dying(OsFileSystem()))
"""
LAST_FILE_CREATED = 7  # killed before op 7 or later: all three files were created whole


@pytest.mark.req("BOOT_05", "BOOT_01")
@pytest.mark.parametrize("k", range(1, BOOTSTRAP_OPS + 1))
def test_a_killed_init_never_blocks_the_operator(tmp_path: Path, k: int) -> None:
    datadir = tmp_path / "pgdata"
    datadir.mkdir()
    child = subprocess.run(
        [sys.executable, "-c", KILLED_INIT, str(datadir), str(k), OLD.hex()], timeout=60
    )
    assert child.returncode == -signal.SIGKILL
    command = f"cat {tmp_path / 'pass'}"
    (tmp_path / "pass").write_bytes(OLD)
    retry = run_pgkms("init", str(datadir), "--passphrase-command", command)
    if k < LAST_FILE_CREATED:
        assert retry.returncode == 0, retry.stderr  # the incomplete leftover was removed
    else:
        # a complete set is on disk (aside or in place): init refuses, and it opens
        assert error_code(retry) == "keys_already_exist"
    assert opens_under(datadir, command)


@pytest.mark.req("BOOT_05", "BOOT_01")
@pytest.mark.parametrize(
    "leftover",
    [{}, {"0000": b""}, {"0000": b"x" * 132, "0001": b"y" * 40}, {"junk": b"1"}],
    ids=["empty", "zero-byte-0000", "partial", "stray-file"],
)
def test_a_lone_incomplete_tmp_is_removed_by_init(
    tmp_path: Path, leftover: dict[str, bytes]
) -> None:
    datadir = tmp_path / "pgdata"
    tmp = datadir / "pg_cryptokeys_tmp"
    tmp.mkdir(parents=True, mode=0o700)
    for name, content in leftover.items():
        (tmp / name).write_bytes(content)
    bootstrap(str(datadir), Secret(OLD))
    assert not tmp.exists()
    startup(str(datadir), Secret(OLD))


@pytest.mark.req("BOOT_05", "BOOT_01")
def test_a_lone_complete_tmp_is_refused_by_init(tmp_path: Path) -> None:
    datadir, old, _ = make_cluster(tmp_path)
    (datadir / "pg_cryptokeys").rename(datadir / "pg_cryptokeys_tmp")
    (datadir / "pg_cryptokeys_tmp" / "0001").chmod(0o644)  # modes never make a set partial
    before = sorted(p.name for p in (datadir / "pg_cryptokeys_tmp").iterdir())
    with pytest.raises(KeysAlreadyExist):
        bootstrap(str(datadir), Secret(NEW))
    assert sorted(p.name for p in (datadir / "pg_cryptokeys_tmp").iterdir()) == before
    (datadir / "pg_cryptokeys_tmp" / "0001").chmod(0o600)
    assert opens_under(datadir, old)  # recovery adopts it
    assert not (datadir / "pg_cryptokeys_tmp").exists()
