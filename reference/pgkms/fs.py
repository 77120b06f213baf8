"""The filesystem interface: every effect the protocols have on disk goes through it.

Chapter ``spec/chapters/environment.rst``, the rules for how the key directories are touched:
ENV_01 (never through a symbolic link), ENV_02 (never block on a special file), ENV_03 (a bounded
read of a key file) and ENV_04 (removal of any depth without recursion, ``remove_tree``).
ENV_05 (no more open than the group mode) is checked where a key set is read, in the order of
DISK_06 (``keydir.py``); the lock of CONC_01 is reached through ``FileSystem.lock`` and
implemented in ``lock.py``.

Bootstrap, startup, rotation and recovery never touch ``os`` directly. They talk to a
``FileSystem``, so that the crash-state explorer can run the very same protocol code on a
simulated filesystem that records each operation and what is durable after it (spec: Crash
model). ``OsFileSystem`` is the real one. Paths are plain strings joined with ``/``.

Errors from the OS surface as ``StorageError`` naming the operation and path, never as a raw
``OSError`` (spec ERR_01).

``OsFileSystem`` never follows a symbolic link at the end of a path and never blocks on a
special file (ENV_01, ENV_02): ``stat`` is an ``lstat``, directories are listed through a
descriptor opened with ``O_NOFOLLOW``, and files are read through one opened with
``O_NOFOLLOW | O_NONBLOCK`` whose type is checked with ``fstat``, so an entry swapped between a
check and the open is still caught. ``PGDATA`` itself may be a link (a common layout). The lock
(CONC_01) is a filesystem operation too, so that the crash explorer's simulated filesystem can
make it a no-op while running the very same procedure code.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Literal, Protocol

from pgkms import lock
from pgkms.errors import NotRegularFile, StorageError, SymlinkRefused
from pgkms.layout import KEY_FILE_READ_LIMIT
from pgkms.shown import shown

Kind = Literal["file", "dir", "symlink", "other"]


@dataclass(frozen=True)
class Stat:
    kind: Kind
    size: int
    mode: int  # permission bits only


class FileSystem(Protocol):
    """The operations the key manager needs, and nothing more."""

    def stat(self, path: str) -> Stat | None:
        """Describe ``path`` without following a final symlink; None when it does not exist."""

    def list_dir(self, path: str) -> list[str]:
        """Names in the directory, sorted; a symbolic link is refused, never followed."""

    def read_file(self, path: str) -> bytes:
        """The first ``KEY_FILE_READ_LIMIT`` bytes of a regular file (ENV_01..ENV_03): a file
        is never read whole, and a link or a special file is refused."""

    def lock(self, datadir: str, timeout: float) -> AbstractContextManager[None]:
        """CONC_01..CONC_03: hold ``datadir``'s lock (waiting up to ``timeout`` seconds) and
        check that no server runs there, for the ``with`` block."""

    def mkdir(self, path: str, mode: int) -> None:
        """Create a directory with exactly ``mode`` (not subject to the umask)."""

    def create_file(self, path: str, data: bytes, mode: int) -> None:
        """Create a new file exclusively with exactly ``mode`` and write ``data``; no fsync."""

    def fsync_file(self, path: str) -> None: ...

    def fsync_dir(self, path: str) -> None:
        """Make the directory's entries (creations, removals, renames) durable."""

    def rename(self, src: str, dst: str) -> None: ...

    def unlink(self, path: str) -> None: ...

    def rmdir(self, path: str) -> None: ...


def join(*parts: str) -> str:
    return "/".join(p.rstrip("/") for p in parts if p)


@contextmanager
def _os_errors(operation: str, path: str) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        reason = exc.strerror or errno.errorcode.get(exc.errno or 0, "error")
        raise StorageError(f"{operation} {shown(path)}: {reason}") from None
    except ValueError as exc:  # a NUL byte or an unencodable character in the path
        raise StorageError(f"{operation} {shown(path)}: {type(exc).__name__}") from None


def kind_name(kind: Kind) -> str:
    """``kind`` for a message: "found a ..."."""
    return {
        "file": "regular file",
        "dir": "directory",
        "symlink": "symbolic link",
        "other": "special file (FIFO, socket or device)",
    }[kind]


def _kind(mode: int) -> Kind:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISLNK(mode):
        return "symlink"
    return "other"


class OsFileSystem:
    """The real filesystem, through ``os``."""

    def stat(self, path: str) -> Stat | None:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageError(f"stat {shown(path)}: {exc.strerror}") from None
        except ValueError as exc:  # a NUL byte or an unencodable character in the path
            raise StorageError(f"stat {shown(path)}: {type(exc).__name__}") from None
        return Stat(kind=_kind(st.st_mode), size=st.st_size, mode=stat.S_IMODE(st.st_mode))

    def list_dir(self, path: str) -> list[str]:
        fd = self._open(path, os.O_RDONLY | os.O_DIRECTORY, "list")
        try:
            with _os_errors("list", path):
                return sorted(os.listdir(fd))
        finally:
            os.close(fd)

    def read_file(self, path: str) -> bytes:
        fd = self._open(path, os.O_RDONLY | os.O_NONBLOCK, "read")
        try:
            with _os_errors("read", path):
                kind = _kind(os.fstat(fd).st_mode)
            if kind != "file":
                raise NotRegularFile(
                    f"{shown(path)}: expected a regular file, found a {kind_name(kind)}"
                )
            chunks: list[bytes] = []
            left = KEY_FILE_READ_LIMIT
            with _os_errors("read", path):
                while left > 0:
                    chunk = os.read(fd, left)
                    if not chunk:
                        break
                    chunks.append(chunk)
                    left -= len(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)

    @staticmethod
    def _open(path: str, flags: int, operation: str) -> int:
        """Open without following a final symbolic link (ENV_01): a link is refused."""
        try:
            return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise SymlinkRefused(
                    f"{shown(path)}: is a symbolic link; key directories and files are never "
                    "followed through one"
                ) from None
            if exc.errno == errno.ENXIO:  # a socket
                raise NotRegularFile(f"{shown(path)}: expected a regular file") from None
            reason = exc.strerror or errno.errorcode.get(exc.errno or 0, "error")
            raise StorageError(f"{operation} {shown(path)}: {reason}") from None
        except ValueError as exc:
            raise StorageError(f"{operation} {shown(path)}: {type(exc).__name__}") from None

    def lock(self, datadir: str, timeout: float) -> AbstractContextManager[None]:
        return lock.hold(datadir, timeout)

    def mkdir(self, path: str, mode: int) -> None:
        with _os_errors("mkdir", path):
            os.mkdir(path, mode)
            os.chmod(path, mode)  # the umask may have removed bits we asked for

    def create_file(self, path: str, data: bytes, mode: int) -> None:
        with _os_errors("create", path):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
            try:
                os.fchmod(fd, mode)
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)

    def fsync_file(self, path: str) -> None:
        fd = self._open(path, os.O_RDONLY | os.O_NONBLOCK, "fsync")
        try:
            with _os_errors("fsync", path):
                os.fsync(fd)
        finally:
            os.close(fd)

    def fsync_dir(self, path: str) -> None:
        # PGDATA itself may be a symbolic link: only key directories are opened with O_NOFOLLOW
        # (their names are checked with stat before they are ever fsynced)
        with _os_errors("fsync directory", path):
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def rename(self, src: str, dst: str) -> None:
        with _os_errors("rename", f"{src} -> {dst}"):
            os.rename(src, dst)

    def unlink(self, path: str) -> None:
        with _os_errors("unlink", path):
            os.unlink(path)

    def rmdir(self, path: str) -> None:
        with _os_errors("rmdir", path):
            os.rmdir(path)


class ForwardingFileSystem:
    """Forwards every call to ``inner``: the base for wrappers that watch or alter a few calls
    (the adapter's trace, the crash explorer's deliberately broken protocols)."""

    def __init__(self, inner: FileSystem) -> None:
        self.inner = inner

    def stat(self, path: str) -> Stat | None:
        return self.inner.stat(path)

    def list_dir(self, path: str) -> list[str]:
        return self.inner.list_dir(path)

    def read_file(self, path: str) -> bytes:
        return self.inner.read_file(path)

    def lock(self, datadir: str, timeout: float) -> AbstractContextManager[None]:
        return self.inner.lock(datadir, timeout)

    def mkdir(self, path: str, mode: int) -> None:
        self.inner.mkdir(path, mode)

    def create_file(self, path: str, data: bytes, mode: int) -> None:
        self.inner.create_file(path, data, mode)

    def fsync_file(self, path: str) -> None:
        self.inner.fsync_file(path)

    def fsync_dir(self, path: str) -> None:
        self.inner.fsync_dir(path)

    def rename(self, src: str, dst: str) -> None:
        self.inner.rename(src, dst)

    def unlink(self, path: str) -> None:
        self.inner.unlink(path)

    def rmdir(self, path: str) -> None:
        self.inner.rmdir(path)


def remove_tree(fs: FileSystem, directory: str) -> None:
    """ENV_04: remove ``directory`` and everything in it, one entry at a time, durably.

    Iterative, so no depth of nesting can exhaust the stack; a symbolic link is unlinked
    itself, never followed (ENV_01), and a directory that is a link is refused. Each
    directory's entries are removed and the directory fsynced before it goes, so a crash leaves
    either the whole directory, a durable subset of it, or nothing.
    """
    top = fs.stat(directory)
    if top is not None and top.kind == "symlink":
        raise SymlinkRefused(
            f"{shown(directory)}: is a symbolic link; nothing is removed through it"
        )
    pending: list[tuple[str, bool]] = [(directory, False)]  # (path, its entries are gone)
    while pending:
        path, emptied = pending.pop()
        if emptied:
            fs.fsync_dir(path)
            fs.rmdir(path)
            continue
        pending.append((path, True))
        for name in fs.list_dir(path):
            entry = join(path, name)
            st = fs.stat(entry)
            if st is None:
                continue
            if st.kind == "dir":
                pending.append((entry, False))
            else:
                fs.unlink(entry)
