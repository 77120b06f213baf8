"""Where the harness makes the directories it hands an IUT: in memory when the machine allows.

A default run makes and removes about a thousand small data directories (every vector with a
listing, every scenario, durability and safety step). On a disk file system each file and
directory created costs the kernel a journalled inode. Measured on the project's 2-core machine
(ext4 against tmpfs): the vector stage's 352 directory images took 1.4 s of CPU against 0.3 s,
and a whole default run 5.9-7.0 s of harness CPU against 5.3 s, the IUT about 1 s less. What the
harness judges there does not depend on the medium: crash states are images the harness writes
from a simulated file system, never the leftovers of a real power cut, and every check of what
the IUT left reads the directory back. So the scratch directories go to a memory file system
when there is a usable one, and an explicit choice of the user (``TMPDIR``) always wins.

One exception: the concurrency stage's stress rounds, which find a missing lock by racing
processes, stay on the disk. Its file operations are what open the race windows: against the
``no_lock`` mutant, 30 rounds broke the invariants 47-73 times and lost 2-8 key sets on ext4, but
10-15 times and 0-1 on tmpfs.

Replay files are not scratch: they are left for the user, in the usual temporary directory.
"""

from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path

# The memory file system Linux mounts for POSIX shared memory (glibc's shm_open lives there).
MEMORY_FS = Path("/dev/shm")  # noqa: S108 (only ever a parent for mkdtemp: random name, 0700)
# Less free space than this (a container's default /dev/shm is 64 MiB) and the disk is used:
# a run's directories are small, but an IUT may write more than it should.
MIN_FREE_BYTES = 256 * 1024 * 1024
MOUNTS = Path("/proc/self/mounts")


def scratch_dir() -> str | None:
    """The directory to make scratch directories under (``tempfile.mkdtemp(dir=...)``): None,
    tempfile's own choice, when the user chose one (``TMPDIR``, or ``tempfile.tempdir`` set by
    the program); else ``MEMORY_FS`` when it is usable (``memory_fs_usable``)."""
    if tempfile.tempdir is not None or os.environ.get("TMPDIR"):
        return None
    return str(MEMORY_FS) if memory_fs_usable() else None


def mkdtemp(prefix: str, in_memory: bool = True) -> Path:
    """A fresh private (0700) scratch directory; the caller removes it. ``in_memory=False``:
    in tempfile's own place, for checks that race processes against each other (module doc)."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir=scratch_dir() if in_memory else None))


@functools.cache
def memory_fs_usable() -> bool:
    """Is ``MEMORY_FS`` a tmpfs mount this process can create directories in, that allows
    running programs from it (a check may put a program there) and has room?"""
    options = _mount_options(MEMORY_FS)
    if options is None or "noexec" in options:
        return False
    if not os.access(MEMORY_FS, os.W_OK | os.X_OK):
        return False
    try:
        free = os.statvfs(MEMORY_FS)
    except OSError:
        return False
    return free.f_bavail * free.f_frsize >= MIN_FREE_BYTES


def _mount_options(mount_point: Path) -> set[str] | None:
    """The options of the tmpfs mounted at ``mount_point`` (the last such mount wins, as the
    kernel's does), or None when there is none or the mount table cannot be read."""
    try:
        table = MOUNTS.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    options: set[str] | None = None
    for line in table.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[1] == str(mount_point):
            options = set(fields[3].split(",")) if fields[2] == "tmpfs" else None
    return options
