"""Finding and killing every process an IUT left behind, including ones that called setsid().

``killpg`` on the IUT's process group is not enough: a descendant that calls ``setsid()`` leaves
both the group and the session, and if its parent then exits it is reparented away from the IUT,
so neither the group nor the parent chain leads to it any more. Such an orphan that keeps the
IUT's stdout or stderr open also keeps the harness's reader waiting for an end of file that
never comes. Two mechanisms together find it (ADP_01):

* the harness makes itself a *child subreaper* (Linux ``prctl(PR_SET_CHILD_SUBREAPER)``), so an
  orphaned descendant is reparented to the harness instead of to init: it stays visible in
  ``/proc`` as a child of ours, and once killed it is our zombie, which we reap, so its death is
  certain rather than assumed;
* a process belongs to an IUT's *family* if it is the IUT, shares its process group or session,
  carries the IUT's marker in its environment (a random token the client puts there; children
  inherit it), holds one of the IUT's pipes open (``/proc/<pid>/fd``), or descends from any of
  these. The marker and the pipes are unique to one IUT, so another program's processes (another
  helper's, a second IUT's) are never taken for this one's.

``kill_family`` repeats scan-and-SIGKILL until no living member is left or its deadline passes,
so a process forked between two scans is caught by the next one. A descendant that leaves the
session, clears its environment, closes the pipes and is orphaned cannot be told from an
unrelated process and is not killed; it cannot block the harness either, since it holds none of
its pipes.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

MARKER_VARIABLE = "PGKMS_CONFORMANCE_IUT"
_PR_SET_CHILD_SUBREAPER = 36


@functools.cache
def become_subreaper() -> bool:
    """Make this process the reaper of its orphaned descendants (once; False off Linux)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        return bool(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


@dataclass(frozen=True)
class ProcInfo:
    pid: int
    state: str
    ppid: int
    pgrp: int
    session: int


def _stat(pid: int) -> ProcInfo | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()  # the name (field 2) may contain spaces and ")"
    return ProcInfo(pid, fields[0], int(fields[1]), int(fields[2]), int(fields[3]))


def _processes() -> dict[int, ProcInfo]:
    out: dict[int, ProcInfo] = {}
    for name in os.listdir("/proc"):
        if name.isdigit() and (info := _stat(int(name))) is not None:
            out[info.pid] = info
    return out


def _carries_marker(pid: int, marker: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return marker in f.read(1 << 20).split(b"\0")
    except OSError:
        return False


def _holds_pipe(pid: int, pipes: frozenset[str]) -> bool:
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/{pid}/fd/{fd}") in pipes:
                return True
    return False


@dataclass(frozen=True)
class Family:
    """How to recognise one IUT's processes: its root pid, marker and pipe inodes."""

    root: int
    token: str
    pipe_inodes: frozenset[int]

    @property
    def marker(self) -> bytes:
        return f"{MARKER_VARIABLE}={self.token}".encode()

    def members(self) -> set[int]:
        """Every living process of the family (zombies excluded: they are already dead)."""
        me, uid = os.getpid(), os.getuid()
        procs = _processes()
        pipes = frozenset(f"pipe:[{ino}]" for ino in self.pipe_inodes)
        found: set[int] = set()
        for info in procs.values():
            if info.pid == me:
                continue
            if self.root in (info.pid, info.pgrp, info.session):
                found.add(info.pid)
                continue
            try:
                if os.stat(f"/proc/{info.pid}").st_uid != uid:
                    continue  # not ours to inspect, nor to kill
            except OSError:
                continue
            if _carries_marker(info.pid, self.marker) or _holds_pipe(info.pid, pipes):
                found.add(info.pid)
        children: dict[int, list[int]] = {}
        for info in procs.values():
            children.setdefault(info.ppid, []).append(info.pid)
        todo = list(found)
        while todo:
            for child in children.get(todo.pop(), ()):
                if child not in found and child != me:
                    found.add(child)
                    todo.append(child)
        return {p for p in found if (i := procs.get(p)) is not None and i.state not in "ZX"}


def kill_family(family: Family, deadline: float) -> set[int]:
    """SIGKILL every member until none is alive or ``deadline`` (monotonic) passes.

    Returns the members still alive at the deadline (empty on success). The IUT's root process
    is left for its ``Popen`` to reap; reparented orphans, our zombies now, are reaped here.
    """
    killed: set[int] = set()
    while True:
        alive = family.members()
        for pid in alive:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        killed |= alive
        _reap(killed - {family.root})
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.01)


def _reap(pids: set[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)  # only our own children (reparented orphans) succeed
