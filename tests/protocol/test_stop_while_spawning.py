"""PASS_09, ADP_06: a stop signal that arrives while a passphrase command is being started.

Between the fork of the command and the moment the adapter holds its handle, nobody knows the
command; a stop handled there used to leave it running (the harness's SIGTERM check caught it,
once in a while, on a loaded machine). Here that gap is held open on purpose: ``Popen`` is
wrapped to sleep one second once the command has started (the command has written its pid by
then), and SIGTERM or SIGINT comes in that second. Each bundled implementation must still end
the command's group, and exit.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from pgkms_conformance.harness.procs import alive, wait_gone

pytestmark = pytest.mark.req("PASS_09", "ADP_06")

SLOW_POPEN = """
import subprocess, sys, time
class SlowPopen(subprocess.Popen):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        time.sleep(1.0)  # the gap between the fork and the handle being kept, held open
"""

REFERENCE = (
    SLOW_POPEN
    + """
from pgkms import passphrase
from pgkms.tools.stopping import Stopped, stop_on_sigterm
passphrase.subprocess.Popen = SlowPopen
with stop_on_sigterm():
    try:
        passphrase.run_passphrase_command(sys.argv[1], timeout=60)
    except (Stopped, KeyboardInterrupt):
        sys.exit(9)
"""
)

INDEPENDENT = (
    SLOW_POPEN
    + """
import signal
from pgkms_independent import adapter, passphrase
passphrase.subprocess.Popen = SlowPopen
signal.signal(signal.SIGTERM, adapter._stop)
signal.signal(signal.SIGINT, adapter._stop)
passphrase.run_command(sys.argv[1], timeout=60)
"""
)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
@pytest.mark.parametrize("script", [REFERENCE, INDEPENDENT], ids=["reference", "independent"])
def test_a_stop_during_the_start_still_ends_the_command(
    script: str, signum: int, tmp_path: Path
) -> None:
    pid_file = tmp_path / "pid"
    command = f"echo $$ > {pid_file}; exec sleep 1000"
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(script), command])
    try:
        deadline = time.monotonic() + 10
        while not pid_file.exists() or not pid_file.read_text().strip():
            assert time.monotonic() < deadline, "the command never started"
            time.sleep(0.01)
        command_pid = int(pid_file.read_text())
        os.kill(proc.pid, signum)  # inside the held-open second
        assert proc.wait(timeout=10) != 0
        assert wait_gone(command_pid, 2.0), "the command outlived its adapter"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if pid_file.exists() and pid_file.read_text().strip():
            pid = int(pid_file.read_text())
            if alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
