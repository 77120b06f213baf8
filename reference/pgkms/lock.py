"""The data directory's lock and the running-server check.

Chapter ``spec/chapters/environment.rst``, section "Mutual exclusion": CONC_01..CONC_03.

Every procedure that may change the key directories holds an exclusive POSIX record lock on
``PGDATA/pg_cryptokeys.lock`` for its whole run. A record lock (``fcntl``/``lockf``), not
``flock``: on Linux the two kinds do not conflict, and the spec pins record locks so that every
conforming implementation excludes every other. The lock file is opened here and nowhere else:
closing *any* descriptor of the file would release this process's record lock. It is never
removed, because a removed lock file lets two processes lock two different files.

After taking the lock an offline tool refuses a running server: PostgreSQL's offline tools
(``pg_resetwal``, ``pg_checksums``) do the same, and a running 2020 server takes none of our
locks, so ``postmaster.pid`` is the only sign of it.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager

from pgkms.errors import (
    KeyDirectoryLocked,
    NotRegularFile,
    ServerRunning,
    StorageError,
    SymlinkRefused,
)
from pgkms.layout import LOCK_FILE, LOCK_FILE_MODE, LOCK_RETRY_INTERVAL, POSTMASTER_PID
from pgkms.shown import shown

_PID_FILE_READ_LIMIT = 4096  # the first line is all we need; never read an unbounded file
_OPEN_LOCK_FLAGS = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def _open_lock_file(path: str) -> int:
    """ENV_01, ENV_02: open (creating) the lock file, refusing a link or a special file."""
    try:
        fd = os.open(path, _OPEN_LOCK_FLAGS, LOCK_FILE_MODE)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SymlinkRefused(f"{shown(path)}: the lock file is a symbolic link") from None
        if exc.errno in (errno.EISDIR, errno.ENXIO, errno.ENODEV):
            raise NotRegularFile(f"{shown(path)}: the lock file is not a regular file") from None
        raise StorageError(f"open {shown(path)}: {exc.strerror}") from None
    except ValueError as exc:  # a NUL byte in the path
        raise StorageError(f"open {shown(path)}: {type(exc).__name__}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotRegularFile(f"{shown(path)}: the lock file is not a regular file")
    except BaseException:
        os.close(fd)
        raise
    return fd


def _acquire(fd: int, path: str, timeout: float) -> None:
    """CONC_02: try the lock every ``LOCK_RETRY_INTERVAL`` until ``timeout`` has passed."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except OSError as exc:
            if exc.errno not in (errno.EACCES, errno.EAGAIN):
                raise StorageError(f"lock {shown(path)}: {exc.strerror}") from None
        left = deadline - time.monotonic()
        if left <= 0:
            raise KeyDirectoryLocked(
                f"{shown(path)}: another process held the lock for {timeout:g} s; nothing was "
                "changed (retry when the other procedure has finished)"
            )
        time.sleep(min(LOCK_RETRY_INTERVAL, left))


def check_no_server(datadir: str) -> None:
    """CONC_03: refuse when ``postmaster.pid`` names a live process or cannot be read."""
    path = os.path.join(datadir, POSTMASTER_PID)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    except (OSError, ValueError):
        raise ServerRunning(
            f"{shown(path)} exists but cannot be read; refusing in case a server is running "
            "(remove it once sure no server uses this data directory)"
        ) from None
    try:
        head = os.read(fd, _PID_FILE_READ_LIMIT)
    except OSError:
        head = b""
    finally:
        os.close(fd)
    first = head.split(b"\n", 1)[0].strip()
    pid = int(first) if first.isdigit() and len(first) <= 10 else 0
    if not 0 < pid < 2**31:
        raise ServerRunning(
            f"{shown(path)}: first line is not a process id; refusing in case a server is "
            "running (remove it once sure no server uses this data directory)"
        )
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return  # stale: the server that wrote it is gone
    except PermissionError:
        pass  # alive, owned by someone else
    raise ServerRunning(
        f"{shown(path)}: process {pid} is running; stop the server before changing its keys"
    )


@contextmanager
def hold(datadir: str, timeout: float) -> Iterator[None]:
    """CONC_01..CONC_03: hold ``datadir``'s lock for the ``with`` block, no server running."""
    path = os.path.join(datadir, LOCK_FILE)
    fd = _open_lock_file(path)
    try:
        _acquire(fd, path, timeout)
        check_no_server(datadir)
        yield
    finally:
        os.close(fd)  # releases the lock
