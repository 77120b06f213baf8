"""The C adapter's safety behaviour, driven through its protocol: the lock (CONC_01, CONC_02),
the running-server check (CONC_03), links, special files, huge files, deep trees and modes
(ENV_01..ENV_05), and the bounded passphrase command (PASS_08, PASS_09).

Each case builds its own data directory under tmp_path; commands that could outlive a case
write their PIDs to a file the case checks and kills.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pgkms_conformance.protocol.client import AdapterClient

from tests.c_adapter.conftest import Built

PASS = (b"p" * 64).hex()
OTHER = (b"q" * 64).hex()


@pytest.fixture
def iut(c_adapter: Built) -> Iterator[AdapterClient]:
    with AdapterClient([str(c_adapter.binary)], timeout=20) as client:
        client.hello()
        yield client


@pytest.fixture
def pgdata(tmp_path: Path, iut: AdapterClient) -> Path:
    root = tmp_path / "pgdata"
    root.mkdir()
    assert iut.call("bootstrap", datadir=str(root), passphrase=PASS).ok
    return root


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        out[str(path.relative_to(root))] = (st.st_mode, st.st_size)
    return out


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.req("CONC_01", "CONC_02")
def test_a_held_lock_is_waited_for_then_refused(iut: AdapterClient, pgdata: Path) -> None:
    before = _tree(pgdata / "pg_cryptokeys")
    with (pgdata / "pg_cryptokeys.lock").open("r+b") as lock:
        fcntl.lockf(lock, fcntl.LOCK_EX)
        t0 = time.monotonic()
        answer = iut.call(
            "rotate",
            datadir=str(pgdata),
            old_passphrase=PASS,
            new_passphrase=OTHER,
            lock_timeout=0.5,
        )
        waited = time.monotonic() - t0
    assert answer.error_code == "key_directory_locked"
    assert 0.5 <= waited < 2.0
    assert _tree(pgdata / "pg_cryptokeys") == before
    assert iut.call("startup", datadir=str(pgdata), passphrase=PASS).ok


@pytest.mark.req("CONC_03")
def test_a_live_or_unreadable_postmaster_pid_refuses_a_stale_one_does_not(
    iut: AdapterClient, pgdata: Path
) -> None:
    pidfile = pgdata / "postmaster.pid"
    pidfile.write_text(f"{os.getpid()}\n{pgdata}\n")
    assert iut.call("startup", datadir=str(pgdata), passphrase=PASS).error_code == "server_running"
    pidfile.write_text("not a pid\n")
    assert iut.call("startup", datadir=str(pgdata), passphrase=PASS).error_code == "server_running"
    gone = subprocess.Popen(["true"])
    gone.wait()
    pidfile.write_text(f"{gone.pid}\n")
    assert iut.call("startup", datadir=str(pgdata), passphrase=PASS).ok


@pytest.mark.req("ENV_01")
def test_a_linked_temporary_directory_is_refused_and_its_target_kept(
    iut: AdapterClient, pgdata: Path, tmp_path: Path
) -> None:
    canary = tmp_path / "canary"
    canary.mkdir()
    (canary / "precious").write_bytes(b"x" * 10)
    (pgdata / "pg_cryptokeys_tmp").symlink_to(canary)
    answer = iut.call("startup", datadir=str(pgdata), passphrase=PASS)
    assert answer.error_code == "symlink_refused"
    assert (canary / "precious").read_bytes() == b"x" * 10
    answer = iut.call("bootstrap", datadir=str(pgdata), passphrase=PASS)
    assert answer.error_code in ("keys_already_exist", "symlink_refused")
    assert (canary / "precious").exists()


@pytest.mark.req("ENV_01")
def test_a_linked_key_file_is_refused(iut: AdapterClient, pgdata: Path) -> None:
    key = pgdata / "pg_cryptokeys" / "0001"
    real = pgdata / "elsewhere"
    key.rename(real)
    key.symlink_to(real)
    assert iut.call("startup", datadir=str(pgdata), passphrase=PASS).error_code == "symlink_refused"


@pytest.mark.req("ENV_02")
def test_a_fifo_key_file_is_refused_without_blocking(iut: AdapterClient, pgdata: Path) -> None:
    key = pgdata / "pg_cryptokeys" / "0002"
    key.unlink()
    os.mkfifo(key, 0o600)
    t0 = time.monotonic()
    answer = iut.call("startup", datadir=str(pgdata), passphrase=PASS)
    assert answer.error_code == "not_regular_file"
    assert time.monotonic() - t0 < 2


@pytest.mark.req("ENV_03", "DISK_03")
def test_a_sparse_gigabyte_key_file_is_read_boundedly(iut: AdapterClient, pgdata: Path) -> None:
    key = pgdata / "pg_cryptokeys" / "0000"
    with key.open("r+b") as f:
        f.truncate(1 << 30)
    t0 = time.monotonic()
    answer = iut.call("startup", datadir=str(pgdata), passphrase=PASS)
    assert answer.error_code == "record_size_invalid"
    assert str(1 << 30) in (answer.error_message or "")
    assert time.monotonic() - t0 < 2


@pytest.mark.req("ENV_04", "REC_03")
def test_a_1100_deep_temporary_tree_is_removed(iut: AdapterClient, pgdata: Path) -> None:
    deep = pgdata / "pg_cryptokeys_tmp"
    deep.mkdir()
    fd = os.open(deep, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(1100):  # deeper than PATH_MAX allows to name from the root
        os.mkdir("d", dir_fd=fd)
        (Path(f"/proc/self/fd/{fd}") / "f").write_bytes(b"")
        child = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = child
    os.close(fd)
    answer = iut.call("recover", datadir=str(pgdata), passphrase=PASS)
    assert answer.ok, answer.error_message
    assert answer.result["decision"] == "discard_tmp"
    assert not deep.exists()


@pytest.mark.req("ENV_05")
def test_modes_wider_than_the_group_mode_are_refused(iut: AdapterClient, pgdata: Path) -> None:
    keys = pgdata / "pg_cryptokeys"
    keys.chmod(0o777)
    assert iut.call("startup", datadir=str(pgdata), passphrase=PASS).error_code == (
        "permissions_too_open"
    )
    keys.chmod(0o750)
    (keys / "0001").chmod(0o644)
    assert iut.call("startup", datadir=str(pgdata), passphrase=PASS).error_code == (
        "permissions_too_open"
    )
    (keys / "0001").chmod(0o640)
    assert iut.call("startup", datadir=str(pgdata), passphrase=PASS).ok


def _kill_recorded(pids: Path) -> list[int]:
    """The recorded PIDs still alive (killed here, so nothing outlives the test)."""
    left = []
    for line in pids.read_text().split() if pids.exists() else []:
        if _alive(int(line)):
            left.append(int(line))
            os.kill(int(line), signal.SIGKILL)
    return left


@pytest.mark.req("PASS_08", "PASS_09")
def test_a_command_past_its_timeout_is_killed_with_its_group(
    iut: AdapterClient, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    command = f"sleep 30 & echo $! >> {pids}; echo $$ >> {pids}; sleep 30"
    t0 = time.monotonic()
    answer = iut.call("run_passphrase_command", command=command, purpose="startup", timeout=0.5)
    assert answer.error_code == "passphrase_command_timeout"
    assert time.monotonic() - t0 < 1.5
    time.sleep(0.1)
    assert _kill_recorded(pids) == []


@pytest.mark.req("PASS_08")
def test_a_daemon_holding_the_output_means_not_finished(iut: AdapterClient, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    command = f"(sleep 30 & echo $! >> {pids}); printf %064d 0"
    answer = iut.call("run_passphrase_command", command=command, purpose="startup", timeout=0.5)
    assert answer.error_code == "passphrase_command_timeout"
    time.sleep(0.1)
    assert _kill_recorded(pids) == []


@pytest.mark.req("PASS_09", "ADP_06")
def test_sigterm_ends_the_running_command_and_the_adapter(c_adapter: Built, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    command = f"echo $$ >> {pids}; sleep 30"
    request = {"id": 1, "op": "run_passphrase_command", "purpose": "startup", "command": command}
    adapter = subprocess.Popen(
        [str(c_adapter.binary)], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
    )
    assert adapter.stdin is not None
    adapter.stdin.write(json.dumps(request) + "\n")
    adapter.stdin.flush()
    deadline = time.monotonic() + 5
    while not pids.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    adapter.send_signal(signal.SIGTERM)
    assert adapter.wait(timeout=5) == 128 + signal.SIGTERM
    adapter.stdin.close()
    time.sleep(0.1)
    assert _kill_recorded(pids) == []
