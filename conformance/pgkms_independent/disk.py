"""Plain ``os`` file operations, each turning an ``OSError`` into a ``StorageFailure``.

Durability (DISK_07): new files are created with O_EXCL, written in full and fsynced; a
directory is fsynced after its entries change; the caller fsyncs the data directory after a key
directory appears, disappears or is renamed. Modes are set explicitly, since the umask could
otherwise remove bits (DISK_01, DISK_02).

Tracing (adapter capability ``fs_trace``): inside ``tracing(datadir)``, every mutating function
below appends what it did to the trace, after it succeeded, from the same code that does it, so
the trace shows exactly the calls this module makes: ``mkdir``, ``create`` (exclusive create and
write), ``fsync`` (of a file), ``fsync_dir``, ``rename``, ``unlink``, ``rmdir``; paths relative
to the data directory (``.`` for itself).
"""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from pgkms_independent.failures import StorageFailure

T = TypeVar("T")


class _Trace:
    """The operations recorded while a ``tracing`` block runs."""

    def __init__(self, datadir: str, old_datadir: str | None) -> None:
        self.datadir = posixpath.normpath(datadir)
        self.old_datadir = None if old_datadir is None else posixpath.normpath(old_datadir)
        self.entries: list[dict[str, Any]] = []

    def place(self, path: str) -> tuple[str, dict[str, str]]:
        rel = posixpath.relpath(posixpath.normpath(path), self.datadir)
        outside = rel == ".." or rel.startswith("../")
        if outside and self.old_datadir is not None:
            return posixpath.relpath(posixpath.normpath(path), self.old_datadir), {"cluster": "old"}
        return rel, {}


_active: list[_Trace] = []


@contextmanager
def tracing(datadir: str, old_datadir: str | None = None) -> Iterator[list[dict[str, Any]]]:
    """Record the mutating operations done inside the block into the list it yields."""
    trace = _Trace(datadir, old_datadir)
    _active.append(trace)
    try:
        yield trace.entries
    finally:
        _active.remove(trace)


def _note(op: str, path: str, **extra: Any) -> None:
    for trace in _active:
        rel, cluster = trace.place(path)
        trace.entries.append({"op": op, "path": rel, **extra, **cluster})


def _guard(what: str, path: str, action: Callable[[], T]) -> T:
    try:
        return action()
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte or unencodable character
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise StorageFailure(f"{what} {path}: {reason}") from None


def kind_of(path: str) -> str | None:
    """``"dir"``, ``"file"``, ``"other"``, or None when nothing is there (no symlink following)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise StorageFailure(f"stat {path}: {reason}") from None
    if stat.S_ISDIR(mode):
        return "dir"
    return "file" if stat.S_ISREG(mode) else "other"


def names_in(directory: str) -> list[str]:
    return sorted(_guard("list", directory, lambda: os.listdir(directory)))


def read_all(path: str) -> bytes:
    def action() -> bytes:
        with open(path, "rb") as handle:
            return handle.read()

    return _guard("read", path, action)


def make_dir(path: str, mode: int) -> None:
    def action() -> None:
        os.mkdir(path, mode)
        os.chmod(path, mode)

    _guard("mkdir", path, action)
    _note("mkdir", path, mode=mode)


def write_new_file(path: str, data: bytes, mode: int) -> None:
    """Create ``path`` exclusively with ``mode``, write ``data`` and fsync it."""

    def action() -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
        try:
            os.fchmod(fd, mode)
            written = 0
            while written < len(data):
                written += os.write(fd, data[written:])
            _note("create", path, mode=mode, size=len(data))
            os.fsync(fd)
            _note("fsync", path)
        finally:
            os.close(fd)

    _guard("create", path, action)


def sync_dir(path: str) -> None:
    def action() -> None:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    _guard("fsync directory", path, action)
    _note("fsync_dir", path)


def rename(source: str, target: str) -> None:
    _guard("rename", f"{source} -> {target}", lambda: os.rename(source, target))
    if _active:
        _note("rename", source, to=_active[-1].place(target)[0])


def unlink(path: str) -> None:
    _guard("unlink", path, lambda: os.unlink(path))
    _note("unlink", path)


def remove_empty_directory(path: str) -> None:
    _guard("rmdir", path, lambda: os.rmdir(path))
    _note("rmdir", path)


def remove_directory(path: str) -> None:
    """Remove ``path`` and its content, entry by entry, the directory fsynced before it goes."""
    for name in names_in(path):
        entry = os.path.join(path, name)
        if kind_of(entry) == "dir":
            remove_directory(entry)
        else:
            unlink(entry)
    sync_dir(path)
    remove_empty_directory(path)
