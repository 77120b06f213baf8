"""Plain ``os`` file operations, each turning an ``OSError`` into a typed failure.

Durability (DISK_07): new files are created with O_EXCL, written in full and fsynced; a
directory is fsynced after its entries change; the caller fsyncs the data directory after a key
directory appears, disappears or is renamed. Modes are set explicitly, since the umask could
otherwise remove bits (DISK_01, DISK_09).

The environment (ENV_01..ENV_04): nothing here follows a symbolic link inside the data
directory. Entries are examined with ``lstat``, key directories are listed through a descriptor
opened ``O_DIRECTORY | O_NOFOLLOW``, key files are opened ``O_NOFOLLOW | O_NONBLOCK`` and judged
by ``fstat`` on that descriptor (a FIFO never blocks, a file swapped after a check is still
caught), and at most a bound of bytes is read. Removal walks the tree iteratively through
directory descriptors and unlinks a symbolic link itself.

Exclusion (CONC_01..CONC_03): ``exclusive(datadir, timeout)`` holds the POSIX record lock on
``PGDATA/pg_cryptokeys.lock``; ``refuse_running_server`` reads ``postmaster.pid``.

Tracing (adapter capability ``fs_trace``): inside ``tracing(datadir)``, every mutating function
below appends what it did to the trace, after it succeeded, from the same code that does it, so
the trace shows exactly the calls this module makes: ``mkdir``, ``create`` (exclusive create and
write), ``fsync`` (of a file), ``fsync_dir``, ``rename``, ``unlink``, ``rmdir``; paths relative
to the data directory (``.`` for itself). The lock file is not part of the trace (ADP_05): it is
never written, and creating it changes no key directory.
"""

from __future__ import annotations

import errno
import fcntl
import os
import posixpath
import stat
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from pgkms_independent.failures import Code, ExclusionFailure, StorageFailure, StoreFailure

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


def shown(text: str) -> str:
    """``text`` fit for a one-line message: a newline or control character in an entry's name
    must not forge a line of output, so every non-printable character is escaped."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


def _reason(exc: BaseException) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__


def _guard(what: str, path: str, action: Callable[[], T]) -> T:
    try:
        return action()
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte or unencodable character
        raise StorageFailure(f"{what} {shown(path)}: {_reason(exc)}") from None


# How key directories and key files are opened (ENV_01, ENV_02): never through a link, and a
# FIFO or device never blocks the open.
DIRECTORY_OPEN_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
KEY_FILE_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISREG(mode):
        return "file"
    return "symlink" if stat.S_ISLNK(mode) else "other"


def _described(kind: str, mode: int) -> str:
    """For messages: what an entry is, by its ``st_mode``."""
    names = {
        stat.S_IFIFO: "a FIFO",
        stat.S_IFSOCK: "a socket",
        stat.S_IFCHR: "a character device",
        stat.S_IFBLK: "a block device",
    }
    if kind == "other":
        return names.get(stat.S_IFMT(mode), "a special file")
    return {"dir": "a directory", "file": "a regular file", "symlink": "a symbolic link"}[kind]


def kind_of(path: str) -> str | None:
    """``"dir"``, ``"file"``, ``"symlink"``, ``"other"``, or None when nothing is there.

    ``lstat``: a symbolic link is reported as one, never followed (ENV_01)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise StorageFailure(f"stat {shown(path)}: {_reason(exc)}") from None
    return _kind(mode)


def symlink_refused(path: str) -> StoreFailure:
    return StoreFailure(
        Code.SYMLINK_REFUSED,
        f"{shown(path)}: is a symbolic link; key directories, key files and the lock file are "
        "never followed through one, nothing was read or changed through it",
    )


def _refusal(what: str, path: str, exc: OSError, expected: str) -> Exception:
    """The failure for an ``open`` of ``path`` that failed: a symbolic link (ELOOP under
    O_NOFOLLOW) or an entry of the wrong kind gets its own code, anything else is storage."""
    try:
        mode = os.lstat(path).st_mode
    except (OSError, ValueError):
        return StorageFailure(f"{what} {shown(path)}: {_reason(exc)}")
    kind = _kind(mode)
    if kind == "symlink":
        return symlink_refused(path)
    if expected == "file" and kind != "file":
        return not_regular_file(path, kind, mode)
    return StorageFailure(f"{what} {shown(path)}: {_reason(exc)}")


def not_regular_file(path: str, kind: str, mode: int) -> StoreFailure:
    return StoreFailure(
        Code.NOT_REGULAR_FILE,
        f"{shown(path)}: expected a regular file, found {_described(kind, mode)}",
    )


def _open_directory(path: str) -> int:
    """A descriptor of the directory ``path`` itself, never of what a link points to."""
    try:
        return os.open(path, DIRECTORY_OPEN_FLAGS)
    except OSError as exc:
        raise _refusal("open directory", path, exc, "dir") from None
    except ValueError as exc:
        raise StorageFailure(f"open directory {shown(path)}: {_reason(exc)}") from None


def names_in(directory: str) -> list[str]:
    """The entries of ``directory``, sorted, listed through an O_NOFOLLOW descriptor (ENV_01)."""
    fd = _open_directory(directory)
    try:
        return sorted(_guard("list", directory, lambda: os.listdir(fd)))
    finally:
        os.close(fd)


def permission_bits(path: str) -> int:
    """The permission bits of the directory ``path``, from ``fstat`` of its own descriptor."""
    fd = _open_directory(path)
    try:
        return stat.S_IMODE(_guard("stat", path, lambda: os.fstat(fd)).st_mode)
    finally:
        os.close(fd)


@dataclass(frozen=True, repr=False)
class KeyFile:
    """What ``read_key_file`` found: at most ``limit`` bytes, the real size, the mode bits."""

    data: bytes
    size: int
    mode: int

    def __repr__(self) -> str:  # the content may be a wrapped key: never shown
        return f"KeyFile(<{len(self.data)} bytes>, size={self.size}, mode={self.mode:o})"


def read_key_file(path: str, limit: int) -> KeyFile:
    """ENV_02, ENV_03: open without following a link or blocking, insist on a regular file
    (judged on the opened descriptor), read at most ``limit`` bytes whatever the file's size."""
    try:
        fd = os.open(path, KEY_FILE_OPEN_FLAGS)
    except OSError as exc:
        raise _refusal("open", path, exc, "file") from None
    except ValueError as exc:
        raise StorageFailure(f"open {shown(path)}: {_reason(exc)}") from None
    try:
        info = _guard("stat", path, lambda: os.fstat(fd))
        if not stat.S_ISREG(info.st_mode):
            raise not_regular_file(path, _kind(info.st_mode), info.st_mode)
        data = _guard("read", path, lambda: _read_up_to(fd, limit))
        return KeyFile(data, info.st_size, stat.S_IMODE(info.st_mode))
    finally:
        os.close(fd)


def _read_up_to(fd: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    got = 0
    while got < limit:
        chunk = os.read(fd, limit - got)
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def read_all(path: str) -> bytes:
    """A whole small file through the bounded reader (a key record is 132 bytes)."""
    return read_key_file(path, 1 << 16).data


def make_dir(path: str, mode: int) -> None:
    def action() -> None:
        os.mkdir(path, mode)
        fd = os.open(path, DIRECTORY_OPEN_FLAGS)  # the mode set on what was made, not a link
        try:
            os.fchmod(fd, mode)
        finally:
            os.close(fd)

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
    """ENV_04, ENV_01: remove the directory ``path`` and everything in it.

    Iterative, so depth costs no stack; at most two descriptors are open at a time, so depth
    costs no descriptors either. Every operation is relative to a descriptor opened
    ``O_NOFOLLOW``: a symbolic link inside is unlinked itself and never followed, and ``path``
    itself being a link is refused. Each directory's entries go in ascending name order, then
    the directory is fsynced, then removed (ROT_05, REC_03). Climbing back uses ``..`` of the
    descriptor, checked against the parent remembered on the way down, so a directory moved
    during the walk stops it instead of leading it elsewhere.
    """
    fd = _open_directory(path)
    walk = _Walk(fd, path)
    try:
        walk.run()
    except OSError as exc:
        raise StorageFailure(f"{walk.doing} {shown(walk.target)}: {_reason(exc)}") from None
    finally:
        os.close(walk.fd)
    remove_empty_directory(path)


class _Walk:
    """The state of one ``remove_directory``: the open descriptor, its path, the way back up,
    and the operation under way (for the message if the OS refuses it)."""

    def __init__(self, fd: int, path: str) -> None:
        self.fd = fd
        self.where = path
        self.parents: list[tuple[str, int, int]] = []  # (child's name, parent st_dev, st_ino)
        self.doing = "list"
        self.target = path

    def _at(self, doing: str, target: str) -> None:
        self.doing, self.target = doing, target

    def run(self) -> None:
        while True:
            if self._empty_or_descend():
                continue
            self.sync_here()
            if not self.parents:
                return
            self._climb_and_remove()

    def sync_here(self) -> None:
        """DISK_07: the emptied directory's removals made durable before it goes."""
        self._at("fsync directory", self.where)
        os.fsync(self.fd)
        _note("fsync_dir", self.where)

    def _empty_or_descend(self) -> bool:
        """Unlink every non-directory here; True once it descended into a subdirectory."""
        self._at("list", self.where)
        for name in sorted(os.listdir(self.fd)):
            entry = posixpath.join(self.where, name)
            self._at("stat", entry)
            if not stat.S_ISDIR(os.stat(name, dir_fd=self.fd, follow_symlinks=False).st_mode):
                self._at("unlink", entry)
                os.unlink(name, dir_fd=self.fd)  # a symbolic link goes itself (ENV_01)
                _note("unlink", entry)
                continue
            here = os.fstat(self.fd)
            self._at("open directory", entry)
            child = os.open(name, DIRECTORY_OPEN_FLAGS, dir_fd=self.fd)
            os.close(self.fd)
            self.fd, self.where = child, entry
            self.parents.append((name, here.st_dev, here.st_ino))
            return True
        return False

    def _climb_and_remove(self) -> None:
        name, dev, ino = self.parents.pop()
        up = posixpath.dirname(self.where)
        self._at("open directory", up)
        parent = os.open("..", DIRECTORY_OPEN_FLAGS, dir_fd=self.fd)
        os.close(self.fd)
        self.fd, self.where = parent, up
        info = os.fstat(self.fd)
        if (info.st_dev, info.st_ino) != (dev, ino):
            raise StorageFailure(f"remove {shown(up)}: the directory moved during removal")
        gone = posixpath.join(up, name)
        self._at("rmdir", gone)
        os.rmdir(name, dir_fd=self.fd)
        _note("rmdir", gone)


# -- exclusion (CONC_01..CONC_03) ----------------------------------------------------------------
LOCK_FILE: Final = "pg_cryptokeys.lock"
LOCK_FILE_MODE: Final = 0o600
DEFAULT_LOCK_TIMEOUT: Final = 10.0  # seconds (environment chapter: "lock timeout")
LOCK_RETRY_INTERVAL: Final = 0.05  # CONC_02: at least every 100 ms
_LOCK_FLAGS: Final = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


@dataclass
class _Held:
    fd: int
    depth: int


# The locks this process holds, by the real path of their data directory. A POSIX record lock
# belongs to the process and is released when *any* descriptor of the file is closed, so the
# lock file is opened once per outermost hold and a nested hold (rotation's own startup and
# recovery) only counts: no second descriptor, no self-deadlock, no early release.
_held: dict[str, _Held] = {}


def _open_lock_file(path: str) -> int:
    try:
        fd = os.open(path, _LOCK_FLAGS, LOCK_FILE_MODE)
    except OSError as exc:
        raise _refusal("open lock file", path, exc, "file") from None
    except ValueError as exc:
        raise StorageFailure(f"open lock file {shown(path)}: {_reason(exc)}") from None
    try:
        info = os.fstat(fd)
    except OSError as exc:
        os.close(fd)
        raise StorageFailure(f"stat lock file {shown(path)}: {_reason(exc)}") from None
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise not_regular_file(path, _kind(info.st_mode), info.st_mode)
    return fd


def _wait_for_lock(fd: int, path: str, timeout: float) -> None:
    """CONC_02: try, and retry every LOCK_RETRY_INTERVAL until ``timeout`` seconds passed."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except OSError as exc:
            if exc.errno not in (errno.EACCES, errno.EAGAIN):
                raise StorageFailure(f"lock {shown(path)}: {_reason(exc)}") from None
        left = deadline - time.monotonic()
        if left <= 0:
            raise ExclusionFailure(
                Code.KEY_DIRECTORY_LOCKED,
                f"{shown(path)}: another process held the lock for more than {timeout:g} s; "
                "nothing was changed",
            )
        time.sleep(min(LOCK_RETRY_INTERVAL, left))


@contextmanager
def exclusive(datadir: str, timeout: float = DEFAULT_LOCK_TIMEOUT) -> Iterator[None]:
    """CONC_01, CONC_02: hold the lock of ``datadir`` for the block (re-entrant in-process).

    The lock file is created if missing (mode 0600) and never removed: removing it would let two
    processes lock two different files of the same name."""
    path = os.path.join(datadir, LOCK_FILE)
    key = _guard("resolve", datadir, lambda: os.path.realpath(datadir))
    held = _held.get(key)
    if held is not None:
        held.depth += 1
        try:
            yield
        finally:
            held.depth -= 1
        return
    fd = _open_lock_file(path)
    try:
        _wait_for_lock(fd, path, timeout)
        _held[key] = _Held(fd, 1)
        try:
            yield
        finally:
            del _held[key]
    finally:
        os.close(fd)  # releases the lock


POSTMASTER_PID: Final = "postmaster.pid"
_PID_MAX: Final = 2**31 - 1
_PID_READ_LIMIT: Final = 4096


def _first_line_pid(path: str) -> int | None:
    """The PID on the first line of ``path``, or None when it cannot be read or parsed."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except (OSError, ValueError):
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        head = os.read(fd, _PID_READ_LIMIT)
    except OSError:
        return None
    finally:
        os.close(fd)
    first = head.split(b"\n", 1)[0].strip()
    if not first.isdigit():
        return None
    pid = int(first)
    return pid if 0 < pid <= _PID_MAX else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, under another user; anything else: assume it lives
        return True
    return True


def refuse_running_server(datadir: str) -> None:
    """CONC_03: fail with server_running when ``postmaster.pid`` names a live process or cannot
    be read or parsed; a PID of a process that no longer exists is stale and ignored."""
    path = os.path.join(datadir, POSTMASTER_PID)
    if kind_of(path) is None:
        return
    pid = _first_line_pid(path)
    if pid is None:
        raise ExclusionFailure(
            Code.SERVER_RUNNING,
            f"{shown(path)}: exists but its first line is not a readable PID; remove it once "
            "sure that no server runs on this data directory",
        )
    if _alive(pid):
        raise ExclusionFailure(
            Code.SERVER_RUNNING,
            f"{shown(path)}: process {pid} is running; stop the server first",
        )
