"""The filesystem interface: every effect the protocols have on disk goes through it.

Bootstrap, startup, rotation and recovery never touch ``os`` directly. They talk to a
``FileSystem``, so that the crash-state explorer can run the very same protocol code on a
simulated filesystem that records each operation and what is durable after it (spec: Crash
model). ``OsFileSystem`` is the real one. Paths are plain strings joined with ``/``.

Errors from the OS surface as ``StorageError`` naming the operation and path, never as a raw
``OSError`` (spec ERR_01).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal, Protocol

from pgkms.errors import StorageError

Kind = Literal["file", "dir", "other"]


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
        """Names in the directory, sorted."""

    def read_file(self, path: str) -> bytes: ...

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


def parent(path: str) -> str:
    head, _, _ = path.rstrip("/").rpartition("/")
    return head or "."


@contextmanager
def _os_errors(operation: str, path: str) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        reason = exc.strerror or errno.errorcode.get(exc.errno or 0, "error")
        raise StorageError(f"{operation} {path}: {reason}") from None
    except ValueError as exc:  # a NUL byte or an unencodable character in the path
        raise StorageError(f"{operation} {path}: {type(exc).__name__}") from None


class OsFileSystem:
    """The real filesystem, through ``os``."""

    def stat(self, path: str) -> Stat | None:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageError(f"stat {path}: {exc.strerror}") from None
        except ValueError as exc:  # a NUL byte or an unencodable character in the path
            raise StorageError(f"stat {path}: {type(exc).__name__}") from None
        kind: Kind = (
            "file" if stat.S_ISREG(st.st_mode) else "dir" if stat.S_ISDIR(st.st_mode) else "other"
        )
        return Stat(kind=kind, size=st.st_size, mode=stat.S_IMODE(st.st_mode))

    def list_dir(self, path: str) -> list[str]:
        with _os_errors("list", path):
            return sorted(os.listdir(path))

    def read_file(self, path: str) -> bytes:
        with _os_errors("read", path), open(path, "rb") as f:
            return f.read()

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
        with _os_errors("fsync", path):
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def fsync_dir(self, path: str) -> None:
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
