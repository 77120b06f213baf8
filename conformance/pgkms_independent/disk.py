"""Plain ``os`` file operations, each turning an ``OSError`` into a ``StorageFailure``.

Durability (DISK_07): new files are created with O_EXCL, written in full and fsynced; a
directory is fsynced after its entries change; the caller fsyncs the data directory after a key
directory appears, disappears or is renamed. Modes are set explicitly, since the umask could
otherwise remove bits (DISK_01, DISK_02).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from typing import TypeVar

from pgkms_independent.failures import StorageFailure

T = TypeVar("T")


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


def write_new_file(path: str, data: bytes, mode: int) -> None:
    """Create ``path`` exclusively with ``mode``, write ``data`` and fsync it."""

    def action() -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
        try:
            os.fchmod(fd, mode)
            written = 0
            while written < len(data):
                written += os.write(fd, data[written:])
            os.fsync(fd)
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


def rename(source: str, target: str) -> None:
    _guard("rename", f"{source} -> {target}", lambda: os.rename(source, target))


def remove_directory(path: str) -> None:
    """Remove ``path`` and its content, entry by entry, the directory fsynced before it goes."""
    for name in names_in(path):
        entry = os.path.join(path, name)
        if kind_of(entry) == "dir":
            remove_directory(entry)
        else:
            _guard("unlink", entry, lambda entry=entry: os.unlink(entry))  # type: ignore[misc]
    sync_dir(path)
    _guard("rmdir", path, lambda: os.rmdir(path))
