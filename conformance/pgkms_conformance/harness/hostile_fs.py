"""Hostile data directories, and how the harness looks at them without being hurt by them.

A naive reader that reads every file whole and follows symbolic links would, on a FIFO,
block; on a link to ``/dev/zero`` it would never end, and ``shutil.rmtree`` recurses (1,100
nested directories exceed Python's limit). The helpers here never follow a link, never open
anything but a small regular file, and walk iteratively (ENV_01 .. ENV_04 apply to the harness
too).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from pgkms_conformance import scratch
from pgkms_conformance.ids import LOCK_FILE_NAME

KD: Final = "pg_cryptokeys"
TMP: Final = "pg_cryptokeys_tmp"
LOCK: Final = LOCK_FILE_NAME
PIDFILE: Final = "postmaster.pid"
SMALL: Final = 4096  # files up to this size are compared byte for byte


@dataclass(frozen=True)
class Node:
    kind: str  # "dir", "file", "link", "fifo", "other"
    mode: int
    size: int
    content: bytes | None = None  # small regular files only
    target: str | None = None  # symbolic links only


Snapshot = dict[str, Node]


def _node(path: str) -> Node:
    st = os.lstat(path)
    mode = stat.S_IMODE(st.st_mode)
    if stat.S_ISLNK(st.st_mode):
        return Node("link", mode, 0, target=os.readlink(path))
    if stat.S_ISDIR(st.st_mode):
        return Node("dir", mode, 0)
    if stat.S_ISFIFO(st.st_mode):
        return Node("fifo", mode, 0)
    if not stat.S_ISREG(st.st_mode):
        return Node("other", mode, 0)
    content = None
    if st.st_size <= SMALL:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        try:
            content = os.read(fd, SMALL + 1)
        finally:
            os.close(fd)
    return Node("file", mode, st.st_size, content)


def snapshot(root: Path, only: tuple[str, ...] | None = None) -> Snapshot:
    """Every entry under ``root`` (or under its top-level entries named in ``only``), keyed by
    relative path; iterative, links recorded and never followed."""
    out: Snapshot = {}
    pending: list[str] = []
    for name in sorted(os.listdir(root)):
        if only is None or name in only:
            pending.append(name)
    while pending:
        rel = pending.pop()
        full = os.path.join(root, rel)
        try:
            node = _node(full)
        except FileNotFoundError:
            continue
        out[rel] = node
        if node.kind == "dir":
            with contextlib.suppress(OSError):
                pending += [os.path.join(rel, n) for n in os.listdir(full)]
    return dict(sorted(out.items()))


def key_dirs(root: Path) -> Snapshot:
    """The key directories only: what a refused procedure must leave unchanged."""
    return snapshot(root, (KD, TMP))


def changes(before: Snapshot, after: Snapshot) -> list[str]:
    """What differs, report-safe: names, kinds, modes and sizes, never contents."""
    out = []
    for rel in sorted(set(before) | set(after)):
        old, new = before.get(rel), after.get(rel)
        if old is None:
            out.append(f"{rel} appeared")
        elif new is None:
            out.append(f"{rel} disappeared")
        elif old != new:
            out.append(
                f"{rel} changed ({old.kind} {old.mode:04o} {old.size} B -> "
                f"{new.kind} {new.mode:04o} {new.size} B)"
            )
    return out


def remove_tree(path: Path) -> None:
    """Remove ``path`` whatever it holds, iteratively, never following a link; best effort."""
    if not os.path.lexists(path):
        return
    if not stat.S_ISDIR(os.lstat(path).st_mode):
        with contextlib.suppress(OSError):
            os.unlink(path)
        return
    stack = [str(path)]
    while stack:
        top = stack[-1]
        with contextlib.suppress(OSError):
            os.chmod(top, 0o700)
        try:
            entries = list(os.scandir(top))
        except OSError:
            stack.pop()
            continue
        subdirs = [e.path for e in entries if e.is_dir(follow_symlinks=False)]
        for entry in entries:
            if not entry.is_dir(follow_symlinks=False):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
        if subdirs:
            stack += subdirs
            continue
        with contextlib.suppress(OSError):
            os.rmdir(top)
        stack.pop()


def nested(root: Path, depth: int) -> None:
    """``depth`` nested directories ``d/d/d/...`` under ``root`` (relative steps: no PATH_MAX)."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir("d", 0o700, dir_fd=fd)
            inner = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = inner
    finally:
        os.close(fd)


def copy_tree(src: Path, dst: Path) -> None:
    """A plain copy of a small, well-formed key directory (modes kept)."""
    shutil.copytree(src, dst, symlinks=True)


class SafeWorkspace:
    """Temporary directories of one stage; ``close`` removes them even when an IUT left a
    1,100-deep tree or a FIFO behind."""

    def __init__(self, prefix: str = "pgkms-safety-", in_memory: bool = True) -> None:
        self.root = scratch.mkdtemp(prefix, in_memory)
        self._n = 0
        self._guard = threading.Lock()  # checks run in threads share the workspace

    def fresh(self, name: str = "d") -> Path:
        with self._guard:
            self._n += 1
            n = self._n
        path = self.root / f"{name}{n}"
        path.mkdir(mode=0o700)
        return path

    def close(self) -> None:
        remove_tree(self.root)
