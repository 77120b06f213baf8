"""Processes the safety and concurrency stages start besides the session's IUT, and how they are
found, measured and ended again.

Every extra IUT process is started through ``env PGKMS_HARNESS_TAG=<tag>``: the tag is inherited
by everything it starts (passphrase commands, daemons that left their process group), so the
harness can tell whether any of them is still alive and kill them all at the end, whatever the
IUT did (PASS_08, PASS_09). The tag is a random token, never a secret of the run.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Final

from pgkms_conformance.protocol.client import AdapterClient, AdapterFailure, Hello

TAG_VARIABLE: Final = "PGKMS_HARNESS_TAG"


def new_tag() -> str:
    return secrets.token_hex(8)


def tagged(command: Sequence[str], tag: str) -> list[str]:
    """``command`` run with the tag in its environment (``env`` execs it: the pid is kept)."""
    return ["env", f"{TAG_VARIABLE}={tag}", *command]


def tagged_pids(tag: str) -> list[int]:
    """Live processes (zombies excluded) whose environment carries ``tag``."""
    needle = f"{TAG_VARIABLE}={tag}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0") and alive(int(entry.name)):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def kill_tagged(tag: str, within: float = 2.0) -> None:
    """SIGKILL every process carrying ``tag``, and wait (a little) until they are gone."""
    pids = tagged_pids(tag)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + within
    for pid in pids:
        wait_gone(pid, max(0.0, deadline - time.monotonic()))


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie awaiting its reaper counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_gone(pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def _children() -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        out.setdefault(ppid, []).append(int(entry.name))
    return out


def peak_rss_kib(pid: int | str = "self") -> int | None:
    """``VmHWM`` (the peak resident set of the process's address space) in KiB, or None when its
    status cannot be read. Unlike ``ru_maxrss`` it is not inherited across ``execve``."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return None


def tree_peak_rss_kib(root: int) -> int | None:
    """The sum of ``VmHWM`` (peak resident set) over ``root`` and its live descendants, in KiB;
    None when ``root``'s own status cannot be read (no procfs, another user's process)."""
    children = _children()
    total, pending, root_read = 0, [root], False
    while pending:
        pid = pending.pop()
        pending += children.get(pid, [])
        peak = peak_rss_kib(pid)
        if peak is not None:
            total += peak
            root_read = root_read or pid == root
    return total if root_read else None


class SpareIut:
    """One more IUT process, beside the session's: for requests that may hang or kill it, and for
    the concurrency stage. ``close`` ends it and everything it started."""

    def __init__(self, command: Sequence[str], timeout: float, wrapper: Sequence[str] = ()):
        self.tag = new_tag()
        self.client = AdapterClient([*wrapper, *tagged(command, self.tag)], timeout=timeout)
        self.hello: Hello | None = None

    def start(self) -> Hello:
        self.hello = self.client.hello()
        return self.hello

    @property
    def pid(self) -> int:
        return self.client.pid

    def close(self) -> None:
        # Everything tagged dies first, the IUT included: a process that left the IUT's group
        # (a passphrase command in a session of its own) may hold the IUT's stderr open, and
        # the client's close would then wait on that pipe forever.
        kill_tagged(self.tag)
        self.client.close()
        kill_tagged(self.tag)


@contextlib.contextmanager
def spare_iut(
    command: Sequence[str], timeout: float, wrapper: Sequence[str] = ()
) -> Iterator[SpareIut]:
    """A started spare IUT (hello answered); AdapterFailure from the start propagates."""
    spare = SpareIut(command, timeout, wrapper)
    try:
        spare.start()
        yield spare
    finally:
        spare.close()


# -- a lock held by another process --
_HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
fcntl.lockf(fd, fcntl.LOCK_EX)
sys.stdout.write("locked\\n"); sys.stdout.flush()
hold = float(sys.argv[2])
if hold < 0:
    sys.stdin.read()
else:
    time.sleep(hold)
"""


class LockHolder:
    """A helper process holding the POSIX record lock of CONC_01 on ``path`` (``fcntl.lockf``
    from another process: record locks are per process, so the harness's own would not conflict
    with an IUT that happened to share it). ``hold`` < 0: until ``release``."""

    def __init__(self, path: Path, hold: float = -1.0) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _HOLDER, str(path), str(hold)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if line != b"locked\n":
            self.release()
            raise AdapterFailure("the harness's lock holder could not take the lock")

    def release(self) -> None:
        with contextlib.suppress(OSError):
            if self._proc.stdin is not None:
                self._proc.stdin.close()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()

    def __enter__(self) -> LockHolder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def reaped_pid() -> int:
    """The pid of a child that has exited and been reaped: a stale ``postmaster.pid`` (CONC_03)."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def with_timeout(client: AdapterClient, seconds: float) -> contextlib.AbstractContextManager[None]:
    """Temporarily bound ``client``'s per-request wait (a hang is then a quick failure)."""

    @contextlib.contextmanager
    def bounded() -> Iterator[None]:
        before = client.timeout
        client.timeout = seconds
        try:
            yield
        finally:
            client.timeout = before

    return bounded()
