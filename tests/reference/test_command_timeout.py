"""The passphrase command is bounded and dies with its caller (PASS_08, PASS_09, ADP_06).

Each command writes its shell's PID, which is its process group's id (the command runs in a
group of its own), so the test can check afterwards that no process of the group is left.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pgkms.errors import PassphraseCommandTimeout
from pgkms.passphrase import run_passphrase_command

from .helpers import OLD, error_code, group_gone, make_cluster, passphrase_command, run_pgkms


def _pid_command(pid_file: Path, rest: str) -> str:
    return f"echo $$ > {shlex.quote(str(pid_file))}; {rest}"


def _wait_for(path: Path, seconds: float = 20) -> int:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return int(path.read_text())
        time.sleep(0.02)
    raise AssertionError(f"{path} never appeared")


def _gone_soon(pgid: int, seconds: float = 5) -> bool:
    """The group has no live process within ``seconds``. A command nobody killed (``sleep
    1000``) would still run then; the bound is generous because SIGKILL takes effect only when
    the target is next scheduled, which on a loaded machine can be long after ``kill()``."""
    deadline = time.monotonic() + seconds
    while not group_gone(pgid):
        if time.monotonic() > deadline:
            os.killpg(pgid, signal.SIGKILL)  # clean up what the code under test left behind
            return False
        time.sleep(0.02)
    return True


@pytest.mark.req("PASS_08")
def test_a_command_that_never_ends_times_out_and_leaves_nothing(tmp_path: Path) -> None:
    datadir, _, _ = make_cluster(tmp_path)
    pid_file = tmp_path / "pid"
    command = _pid_command(pid_file, "sleep 1000")
    started = time.monotonic()
    done = run_pgkms(
        "verify", str(datadir), "--passphrase-command", command, "--passphrase-timeout", "2"
    )
    took = time.monotonic() - started
    assert done.returncode == 1
    assert error_code(done) == "passphrase_command_timeout"
    assert 2 <= took < 4, took  # the timeout, plus the interpreter's start
    assert _gone_soon(_wait_for(pid_file))


@pytest.mark.req("PASS_08")
def test_a_daemon_holding_stdout_keeps_the_command_unfinished(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    passphrase = passphrase_command(tmp_path, OLD)
    command = _pid_command(pid_file, f"(sleep 1000 &); {passphrase}")
    started = time.monotonic()
    with pytest.raises(PassphraseCommandTimeout):
        run_passphrase_command(command, timeout=1)
    took = time.monotonic() - started
    assert 1 <= took < 2, took  # PASS_08: within one second after the timeout
    assert _gone_soon(_wait_for(pid_file))


@pytest.mark.req("PASS_09")
def test_a_daemon_that_closed_stdout_is_killed_at_the_end(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    passphrase = passphrase_command(tmp_path, OLD)
    command = _pid_command(pid_file, f"(sleep 1000 >/dev/null 2>&1 &); {passphrase}")
    output = run_passphrase_command(command, timeout=10)
    assert output.head.reveal() == OLD
    assert _gone_soon(_wait_for(pid_file))


@pytest.mark.req("PASS_08")
def test_the_command_reads_dev_null(tmp_path: Path) -> None:
    started = time.monotonic()
    output = run_passphrase_command("cat; printf %070d 0", timeout=10)  # cat ends at once
    assert output.total_len == 70 and time.monotonic() - started < 5


@pytest.mark.req("PASS_09")
@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_stopping_pgkms_kills_the_commands_group(
    tmp_path: Path, signum: signal.Signals, status: int
) -> None:
    datadir, _, _ = make_cluster(tmp_path)
    pid_file = tmp_path / "pid"
    command = _pid_command(pid_file, "sleep 1000")
    verify = subprocess.Popen(
        [sys.executable, "-m", "pgkms", "verify", str(datadir), "--passphrase-command", command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        pgid = _wait_for(pid_file)
        verify.send_signal(signum)
        _, err = verify.communicate(timeout=10)
    finally:
        verify.kill()
        verify.wait(timeout=10)
    assert verify.returncode == status
    assert b"Traceback" not in err and err.count(b"\n") == 1
    assert _gone_soon(pgid)


def _adapter(*requests: dict[str, object]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "pgkms.adapter"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None
    for request in requests:
        proc.stdin.write(json.dumps(request).encode() + b"\n")
    proc.stdin.flush()
    return proc


@pytest.mark.req("PASS_08", "ADP_06")
def test_the_adapter_honours_the_timeout_field(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    base = {"op": "run_passphrase_command", "purpose": "startup"}
    proc = _adapter(
        {**base, "id": 1, "command": _pid_command(pid_file, "sleep 1000"), "timeout": 1},
        {**base, "id": 2, "command": "true", "timeout": 0},
        {**base, "id": 3, "command": "true", "timeout": "1"},
        {**base, "id": 4, "command": "printf %070d 0", "timeout": None},
    )
    started = time.monotonic()
    out, _ = proc.communicate(timeout=30)
    took = time.monotonic() - started
    answers = [json.loads(line) for line in out.splitlines()]
    assert [a.get("error", {}).get("code") for a in answers] == [
        "passphrase_command_timeout",
        "malformed_request",
        "malformed_request",
        None,
    ]
    assert took < 3, took
    assert _gone_soon(_wait_for(pid_file))


@pytest.mark.req("PASS_09", "ADP_06")
def test_sigterm_to_the_adapter_kills_the_commands_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    proc = _adapter(
        {
            "id": 1,
            "op": "run_passphrase_command",
            "purpose": "startup",
            "command": _pid_command(pid_file, "sleep 1000"),
        }
    )
    try:
        pgid = _wait_for(pid_file)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
        proc.wait(timeout=10)
    assert proc.returncode == 143
    assert b"Traceback" not in err
    assert _gone_soon(pgid)
