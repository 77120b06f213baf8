"""The data directory's lock and the running-server check, with real processes (CONC_01..03).

Every test is bounded: processes are started with timeouts and killed in ``finally``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from pgkms.errors import ServerRunning
from pgkms.lock import hold
from pgkms.secret import Secret
from pgkms.startup import startup

from .helpers import NEW, OLD, error_code, make_cluster, opens_under, run_pgkms, snapshot

# A process that takes the lock the spec pins (a POSIX record lock over the whole file), says
# so on stdout, holds it for argv[2] seconds, then exits (closing the file releases the lock).
HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.lockf(fd, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
"""


@contextmanager
def lock_held(datadir: Path, seconds: float) -> Iterator[subprocess.Popen[bytes]]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(datadir / "pg_cryptokeys.lock"), str(seconds)],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == b"locked\n"
        yield holder
    finally:
        holder.kill()
        holder.wait(timeout=10)


def _rotate(datadir: Path, old: str, new: str, *extra: str) -> subprocess.CompletedProcess[bytes]:
    return run_pgkms(
        "rotate", str(datadir), "--passphrase-command", old, "--new-passphrase-command", new, *extra
    )


@pytest.mark.req("CONC_01", "CONC_02")
def test_a_held_lock_makes_rotation_wait_then_fail_having_changed_nothing(tmp_path: Path) -> None:
    datadir, old, new = make_cluster(tmp_path)
    before = snapshot(datadir)
    with lock_held(datadir, 30):
        started = time.monotonic()
        done = _rotate(datadir, old, new, "--lock-timeout", "0.5")
        waited = time.monotonic() - started
    assert error_code(done) == "key_directory_locked"
    assert 0.5 <= waited < 5, waited
    assert snapshot(datadir) == before
    assert opens_under(datadir, old)


@pytest.mark.req("CONC_01", "CONC_02")
def test_a_lock_released_within_the_timeout_lets_rotation_proceed(tmp_path: Path) -> None:
    datadir, old, new = make_cluster(tmp_path)
    with lock_held(datadir, 0.3) as holder:
        done = _rotate(datadir, old, new, "--lock-timeout", "10")
        assert holder.wait(timeout=10) == 0  # it held the lock its 0.3 s and exited by itself
    assert done.returncode == 0, done.stderr
    assert opens_under(datadir, new)
    assert not opens_under(datadir, old)


@pytest.mark.req("CONC_01", "CONC_02")
def test_every_locked_command_honours_the_lock(tmp_path: Path) -> None:
    datadir, old, _ = make_cluster(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    commands = [
        ("verify", str(datadir), "--passphrase-command", old),
        ("recover", str(datadir), "--passphrase-command", old, "--apply"),
        ("wrap", str(datadir), "--passphrase-command", old),
        ("upgrade-keys", str(other), "--old-datadir", str(datadir), "--passphrase-command", old),
    ]
    with lock_held(datadir, 30):
        for args in commands:
            done = run_pgkms(*args, "--lock-timeout", "0.2", stdin=b"x")
            assert error_code(done) == "key_directory_locked", args
        fresh = tmp_path / "fresh"
        fresh.mkdir()
    with lock_held(fresh, 30):
        done = run_pgkms("init", str(fresh), "--passphrase-command", old, "--lock-timeout", "0")
        assert error_code(done) == "key_directory_locked"
    assert sorted(p.name for p in fresh.iterdir()) == ["pg_cryptokeys.lock"]


@pytest.mark.req("CONC_02", "ADP_06")
def test_the_adapter_takes_lock_timeout_and_refuses_bad_values(tmp_path: Path) -> None:
    datadir, _, _ = make_cluster(tmp_path)
    base = {"op": "startup", "datadir": str(datadir), "passphrase": OLD.hex()}
    requests = [
        {**base, "id": 1, "lock_timeout": 0.3},
        {**base, "id": 2, "lock_timeout": -1},
        {**base, "id": 3, "lock_timeout": "1"},
        {**base, "id": 4, "lock_timeout": True},
    ]
    lines = "".join(json.dumps(r) + "\n" for r in requests).encode()
    with lock_held(datadir, 30):
        done = subprocess.run(
            [sys.executable, "-m", "pgkms.adapter"], input=lines, capture_output=True, timeout=30
        )
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    assert [a["error"]["code"] for a in answers] == [
        "key_directory_locked",
        "malformed_request",
        "malformed_request",
        "malformed_request",
    ]
    ok = subprocess.run(
        [sys.executable, "-m", "pgkms.adapter"],
        input=(json.dumps({**base, "id": 5, "lock_timeout": None}) + "\n").encode(),
        capture_output=True,
        timeout=30,
    )
    assert json.loads(ok.stdout)["ok"] is True


@pytest.mark.req("CONC_01")
def test_upgrade_locks_the_old_cluster_too(tmp_path: Path) -> None:
    old_cluster, old, _ = make_cluster(tmp_path, "old-cluster")
    new_cluster, _, _ = make_cluster(tmp_path, "new-cluster")
    before = snapshot(new_cluster)
    with lock_held(old_cluster, 30):
        done = run_pgkms(
            "upgrade-keys",
            str(new_cluster),
            "--old-datadir",
            str(old_cluster),
            "--passphrase-command",
            old,
            "--lock-timeout",
            "0.3",
        )
    assert error_code(done) == "key_directory_locked"
    assert snapshot(new_cluster) == before


@pytest.mark.req("CONC_01")
def test_the_lock_file_is_created_0600_and_never_removed(tmp_path: Path) -> None:
    datadir, old, new = make_cluster(tmp_path)
    lock = datadir / "pg_cryptokeys.lock"
    assert lock.stat().st_mode & 0o777 == 0o600
    inode = lock.stat().st_ino
    assert _rotate(datadir, old, new).returncode == 0
    assert lock.stat().st_ino == inode and lock.read_bytes() == b""


@pytest.mark.req("CONC_01", "ENV_01", "ENV_02")
def test_a_lock_file_that_is_a_link_or_special_is_refused(tmp_path: Path) -> None:
    datadir, old, _ = make_cluster(tmp_path)
    lock = datadir / "pg_cryptokeys.lock"
    lock.unlink()
    target = tmp_path / "elsewhere"
    lock.symlink_to(target)
    done = run_pgkms("verify", str(datadir), "--passphrase-command", old)
    assert error_code(done) == "symlink_refused"
    assert not target.exists()  # nothing created through the link
    lock.unlink()
    os.mkfifo(lock, 0o600)
    done = run_pgkms("verify", str(datadir), "--passphrase-command", old, timeout=20)
    assert error_code(done) == "not_regular_file"


@pytest.mark.req("CONC_01")
def test_one_process_takes_the_lock_once_per_procedure(tmp_path: Path) -> None:
    """Rotation runs its recovery under the lock it already holds: a second acquisition in the
    same process would be released by the first close, so it must not happen (no deadlock,
    and the lock is still held by the rotation's end, checked from another process)."""
    datadir, old, new = make_cluster(tmp_path)
    (datadir / "pg_cryptokeys_tmp").mkdir(mode=0o700)  # recovery has something to discard
    assert _rotate(datadir, old, new, "--lock-timeout", "0").returncode == 0
    assert not (datadir / "pg_cryptokeys_tmp").exists()
    with hold(str(datadir), 0):  # this process holds it: another one must be refused
        done = run_pgkms("verify", str(datadir), "--passphrase-command", new, "--lock-timeout", "0")
        assert error_code(done) == "key_directory_locked"
    assert opens_under(datadir, new)


def _write_pid_file(datadir: Path, first_line: bytes) -> None:
    (datadir / "postmaster.pid").write_bytes(first_line + b"\n/some/datadir\n1700000000\n5432\n")


def _dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait(timeout=10)
    return child.pid


@pytest.mark.req("CONC_03")
@pytest.mark.parametrize(
    ("first_line", "refused"),
    [
        ("live", True),  # a live process (this test): its pid is written when the test runs
        (b"not a pid", True),
        (b"", True),
        (b"-1", True),  # never kill(-1, 0): that would probe every process
        (b"0", True),
        (None, False),  # a stale PID: the server that wrote it is gone
    ],
)
def test_postmaster_pid(tmp_path: Path, first_line: bytes | str | None, refused: bool) -> None:
    datadir, old, new = make_cluster(tmp_path)
    if first_line is None:
        first_line = str(_dead_pid()).encode()
    elif first_line == "live":
        first_line = str(os.getpid()).encode()
    assert isinstance(first_line, bytes)
    _write_pid_file(datadir, first_line)
    before = snapshot(datadir)
    done = _rotate(datadir, old, new)
    if refused:
        assert error_code(done) == "server_running"
        assert snapshot(datadir) == before
    else:
        assert done.returncode == 0, done.stderr
        assert opens_under(datadir, new)


@pytest.mark.req("CONC_03")
def test_an_unreadable_postmaster_pid_is_refused(tmp_path: Path) -> None:
    datadir, _, _ = make_cluster(tmp_path)
    (datadir / "postmaster.pid").mkdir()  # exists, cannot be read as a file
    with pytest.raises(ServerRunning):
        startup(str(datadir), Secret(OLD))
    with pytest.raises(ServerRunning):
        startup(str(datadir), Secret(NEW))  # refused before the passphrase is even tried
