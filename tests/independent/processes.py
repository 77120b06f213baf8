"""Real processes for the safety tests: the independent adapter (optionally under ``strace``),
a holder of the data directory's lock, and a look for processes left behind.

Every process started here is in a session of its own and is killed as a group on close, so a
failing test leaves nothing running.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pgkms_conformance.harness.procs import peak_rss_kib

STRACE = "/usr/bin/strace"
LOCK_FILE = "pg_cryptokeys.lock"

OLD = b"old passphrase of the safety tests " + b"o" * 40
NEW = b"new passphrase of the safety tests " + b"n" * 40
KEYS = [bytes([i]) * 64 for i in (0x11, 0x22, 0x33)]
IVS = [bytes([i]) * 16 for i in (0x44, 0x55, 0x66)]


def hexes(values: Sequence[bytes]) -> list[str]:
    return [v.hex() for v in values]


class Adapter:
    """``python -m pgkms_independent.adapter``, one JSON line each way (ADP_01)."""

    def __init__(self, prefix: Sequence[str] = ()) -> None:
        self.proc = subprocess.Popen(
            [*prefix, sys.executable, "-m", "pgkms_independent.adapter"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._next = 0
        self._buffer = b""

    def send(self, op: str, **fields: object) -> int:
        self._next += 1
        request = {"id": self._next, "op": op, **fields}
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(request).encode() + b"\n")
        self.proc.stdin.flush()
        return self._next

    def receive(self, wait: float = 30.0) -> dict[str, Any]:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + wait
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no answer from the adapter within {wait} s")
            poller = select.poll()
            poller.register(fd, select.POLLIN)
            if poller.poll(left * 1000):
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise EOFError("the adapter closed its output")
                self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        response: dict[str, Any] = json.loads(line)
        return response

    def call(self, op: str, wait: float = 30.0, **fields: object) -> dict[str, Any]:
        sent = self.send(op, **fields)
        response = self.receive(wait)
        assert response["id"] == sent
        return response

    def peak_rss_kib(self) -> int:
        """The adapter's peak resident set (VmHWM), while it is alive."""
        peak = peak_rss_kib(self.proc.pid)
        assert peak is not None, "the adapter's /proc status has no VmHWM line"
        return peak

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                pass
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def __enter__(self) -> Adapter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def code(response: dict[str, Any]) -> str | None:
    """The error code of a response, None for a success."""
    if response["ok"]:
        return None
    return str(response["error"]["code"])


_HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.lockf(fd, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


class LockHolder:
    """Another process holding ``PGDATA/pg_cryptokeys.lock`` for ``seconds`` (CONC_02)."""

    def __init__(self, datadir: Path, seconds: float) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _HOLDER, str(datadir / LOCK_FILE), str(seconds)],
            stdout=subprocess.PIPE,
            start_new_session=True,
        )
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline() == b"held\n"

    def __enter__(self) -> LockHolder:
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def live_processes_with(marker: str) -> list[int]:
    """PIDs of processes (zombies excluded) whose command line contains ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if marker in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def wait_until_gone(marker: str, within: float = 2.0) -> list[int]:
    """The processes still alive with ``marker`` after up to ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        alive = live_processes_with(marker)
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.05)
