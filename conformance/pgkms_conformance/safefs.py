"""Reading and removing directories an IUT wrote, as the harness must: never through a link.

The directories the harness hands an IUT come back in any state a hostile or broken program can
leave: a key file that is a symbolic link to ``/dev/zero`` or a FIFO, a file of gigabytes, a
tree a thousand levels deep, directories of mode ``0000``, or the data directory itself swapped
for a symbolic link to somewhere else. The harness reads them with the same discipline the spec
asks of an implementation (ENV_01 .. ENV_04): every step relative to a directory descriptor
opened ``O_DIRECTORY | O_NOFOLLOW``, files opened ``O_NOFOLLOW | O_NONBLOCK`` and typed with
``fstat`` on that descriptor, reads bounded, walks iterative. A symbolic link is reported as
such (with its target text) and never followed; a special file is reported as "other", never
read; a file over ``MAX_FILE_BYTES`` is reported by size. Removal unlinks a link itself, never
its target, and makes directories writable on the way (by descriptor, so a swap cannot redirect
the ``chmod``).
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# A key file is 132 bytes; the largest file a vector's listing holds is a few KiB. 1 MiB is far
# above anything legitimate and still cheap to hold.
MAX_FILE_BYTES = 1024 * 1024
# Deeper than any key directory by far; deeper levels are listed as unread directories. The
# walk keeps one descriptor per level, so this also bounds the descriptors it holds.
MAX_DEPTH = 64
# Removal keeps one descriptor per level too; ENV_04's test trees are 1,100 deep.
MAX_REMOVE_DEPTH = 4096

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


@dataclass(frozen=True)
class Node:
    """One entry found under a root, described without following or blocking."""

    rel: str  # relative path, "/"-separated; "." for the root itself
    kind: str  # "dir", "file", "symlink", "other" (FIFO, socket, device) or "unread"
    mode: int  # permission bits (of the link itself for a symlink)
    size: int = 0  # bytes of a file (its st_size, even when not read)
    content: bytes | None = None  # a regular file's bytes, if at most MAX_FILE_BYTES
    target: str = ""  # a symlink's target text (never resolved)


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISLNK(mode):
        return "symlink"
    return "other"


def _read_file(name: str, dir_fd: int, rel: str, max_bytes: int) -> Node:
    try:
        fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
    except OSError:
        return Node(rel, "unread", 0)  # vanished, or swapped for a link between listing and open
    try:
        st = os.fstat(fd)
        mode = stat.S_IMODE(st.st_mode)
        if not stat.S_ISREG(st.st_mode):
            return Node(rel, _kind(st.st_mode), mode)
        if st.st_size > max_bytes:
            return Node(rel, "file", mode, st.st_size)
        chunks: list[bytes] = []
        total = 0
        while total <= max_bytes:  # the file may grow while we read it
            chunk = os.read(fd, max_bytes + 1 - total)
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > max_bytes:
            return Node(rel, "file", mode, total)
        return Node(rel, "file", mode, total, b"".join(chunks))
    except OSError:
        return Node(rel, "unread", 0)
    finally:
        os.close(fd)


def walk(root: Path, max_bytes: int = MAX_FILE_BYTES, max_depth: int = MAX_DEPTH) -> Iterator[Node]:
    """Every entry under ``root``, parents before children, names sorted; ``root`` itself is
    reported as a single node ``"."`` when it is not a directory (a symlink, say)."""
    try:
        st = os.lstat(root)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        target = os.readlink(root) if stat.S_ISLNK(st.st_mode) else ""
        yield Node(".", _kind(st.st_mode), stat.S_IMODE(st.st_mode), st.st_size, target=target)
        return
    try:
        top = os.open(root, _DIR_FLAGS)
    except OSError:
        yield Node(".", "unread", stat.S_IMODE(st.st_mode))
        return
    stack: list[tuple[int, str, Iterator[str]]] = [(top, "", _names(top))]
    try:
        while stack:
            dir_fd, prefix, names = stack[-1]
            name = next(names, None)
            if name is None:
                os.close(dir_fd)
                stack.pop()
                continue
            rel = prefix + name
            try:
                st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            except OSError:
                continue  # vanished since the listing
            mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISLNK(st.st_mode):
                with contextlib.suppress(OSError):
                    target = os.readlink(name, dir_fd=dir_fd)
                    yield Node(rel, "symlink", mode, target=target)
                    continue
                yield Node(rel, "symlink", mode)
            elif stat.S_ISDIR(st.st_mode):
                if len(stack) >= max_depth:
                    yield Node(rel + "/", "unread", mode)
                    continue
                try:
                    sub = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
                except OSError:
                    yield Node(rel + "/", "unread", mode)  # unreadable, or swapped for a link
                    continue
                yield Node(rel + "/", "dir", mode)
                stack.append((sub, rel + "/", _names(sub)))
            elif stat.S_ISREG(st.st_mode):
                yield _read_file(name, dir_fd, rel, max_bytes)
            else:
                yield Node(rel, "other", mode)  # never opened: a FIFO would block, a device lie
    finally:
        for dir_fd, _, _ in stack:
            os.close(dir_fd)


def _names(dir_fd: int) -> Iterator[str]:
    try:
        return iter(sorted(os.listdir(dir_fd)))
    except OSError:
        return iter(())


def remove_tree(path: Path) -> bool:
    """Remove ``path`` and everything under it, never following a symbolic link: a link (even
    one standing where the directory was) is unlinked itself. Iterative, any depth up to
    ``MAX_REMOVE_DEPTH``; directories of mode 0000 are made writable by descriptor first.
    True if ``path`` is gone afterwards."""
    with contextlib.suppress(FileNotFoundError):
        st = os.lstat(path)
        if not stat.S_ISDIR(st.st_mode):
            os.unlink(path)
            return True
        parent = os.open(path.parent, _DIR_FLAGS)
        try:
            _remove_in(parent, path.name)
        finally:
            os.close(parent)
    return not os.path.lexists(path)


def _remove_in(parent_fd: int, name: str) -> None:
    """Remove directory ``name`` under ``parent_fd``: depth-first with a stack of descriptors.
    A directory that could not be emptied is not entered twice (no endless loop)."""
    fd = _open_for_removal(parent_fd, name)
    if fd is None:
        return
    stack: list[tuple[int, int, str]] = [(parent_fd, fd, name)]  # (parent fd, own fd, name)
    entered: set[tuple[int, int]] = set()
    while stack:
        up, fd, own = stack[-1]
        st = os.fstat(fd)
        entered.add((st.st_dev, st.st_ino))
        descended = False
        for entry in _listing(fd):
            try:
                est = os.stat(entry, dir_fd=fd, follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(est.st_mode):
                if (est.st_dev, est.st_ino) in entered or len(stack) >= MAX_REMOVE_DEPTH:
                    continue
                sub = _open_for_removal(fd, entry)
                if sub is not None:
                    stack.append((fd, sub, entry))
                    descended = True
                    break
            with contextlib.suppress(OSError):
                os.unlink(entry, dir_fd=fd)
        if descended:
            continue
        stack.pop()
        os.close(fd)
        with contextlib.suppress(OSError):
            os.rmdir(own, dir_fd=up)


def _open_for_removal(parent_fd: int, name: str) -> int | None:
    """A descriptor of directory ``name``, made writable and searchable; None for anything
    else (a link, a file: the caller unlinks it)."""
    try:
        fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except PermissionError:
        # Mode 0000: fix the mode through an O_PATH descriptor of the directory itself (its
        # /proc/self/fd name reaches that inode, never a link swapped in by name).
        try:
            path_fd = os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent_fd)
        except OSError:
            return None
        try:
            os.chmod(f"/proc/self/fd/{path_fd}", 0o700)
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
        except OSError:
            return None
        finally:
            os.close(path_fd)
    except OSError:
        return None
    with contextlib.suppress(OSError):
        os.fchmod(fd, 0o700)  # a read-only directory's entries can then be removed
    return fd


def _listing(dir_fd: int) -> list[str]:
    try:
        return os.listdir(dir_fd)
    except OSError:
        return []
