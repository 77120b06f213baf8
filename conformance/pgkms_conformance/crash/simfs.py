"""A simulated filesystem that records every operation and knows what a crash may take away.

Theory of operation (spec: Crash model, CRASH_01..CRASH_07). The filesystem is a table of
inodes. A directory inode has the entries a reader sees now and the entries that are durable;
the difference is a list of *pending changes*, in the order they were issued, each one atomic
(a creation, a removal, or a rename within the directory, which removes one name and sets
another in a single step). ``fsync_dir`` makes the directory's pending changes durable. A file
inode has the bytes a reader sees now and the bytes that are durable; ``fsync_file`` makes them
equal. Nothing else is ever durable: a file's fsync does not make its name durable, and a
directory's fsync does not make its own entry in its parent durable.

A crash keeps, for every directory, the durable entries plus a chosen set of its pending
changes (any subset under the default ``subset`` ordering; only a prefix, in issue order, under
``prefix``), and for every file whose data is not durable one of: the durable bytes (for a new
file: zero length), the complete new bytes, or, with ``torn``, the first half of them or as many
zero bytes. What remains is what is reachable from the root: a directory whose own entry was
lost takes its contents with it.

The protocols only rename within one directory; a rename across directories is refused rather
than modelled. Paths are ``<root>/name/...``; the root itself always exists and is durable.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Final, Literal

from pgkms.errors import StorageError
from pgkms.fs import Stat

from pgkms_conformance.image import Image, ImageEntry

Ordering = Literal["subset", "prefix"]

ROOT: Final = "pgdata"
# The mutating operations, named as the adapter protocol's ``fs_trace`` names them (ADP_05):
# ``create`` is ``FileSystem.create_file`` (create exclusively and write), ``fsync`` is
# ``FileSystem.fsync_file``; every other name is the method's own.
TRACE_OPS: Final = ("mkdir", "create", "fsync", "fsync_dir", "rename", "unlink", "rmdir")
MUTATING: Final = frozenset(TRACE_OPS)

# A disk image is ``image.Image``: the sorted (path, mode, content) entries of the tree under
# the root, directories ending in "/" with no content; canonical, hashable, comparable.

# One atomic change to a directory's entries: each name is set to an inode, or removed (None).
Change = tuple[tuple[str, int | None], ...]


@dataclass(frozen=True)
class Op:
    """One operation the protocol issued, as recorded in the trace."""

    kind: str
    path: str
    target: str = ""  # the destination of a rename
    size: int = 0  # bytes written by create

    @property
    def mutating(self) -> bool:
        return self.kind in MUTATING

    def __str__(self) -> str:
        if self.kind == "rename":
            return f"rename {self.path} -> {self.target}"
        if self.kind == "create":
            return f"create {self.path} ({self.size} bytes)"
        return f"{self.kind} {self.path}"


class SimulatedCrash(Exception):
    """The power failed before this operation: it and everything after it never happened.

    Not a ``KmsError``: protocol code must not be able to catch it as one of its own failures.
    """


@dataclass
class _File:
    mode: int
    data: bytes
    durable: bytes


@dataclass
class _Dir:
    mode: int
    entries: dict[str, int]
    durable: dict[str, int]
    pending: list[tuple[Change, Op]]


@dataclass(frozen=True)
class CrashState:
    """A disk image a crash can leave, and what the crash took away to leave it."""

    image: Image
    lost: tuple[str, ...] = ()  # directory changes discarded
    torn: tuple[str, ...] = ()  # files whose unsynced data came back incomplete

    @property
    def severity(self) -> int:
        return len(self.lost) + len(self.torn)


def _torn_forms(durable: bytes, data: bytes, torn: bool) -> list[tuple[bytes, str]]:
    """CRASH_04: what a file whose data is not durable may hold after a crash, and a label."""
    forms = [(data, ""), (durable, "zero-length" if not durable else "previous content")]
    if torn and data:
        forms.append((data[: len(data) // 2], f"partial ({len(data) // 2} of {len(data)} bytes)"))
        forms.append((bytes(len(data)), f"zero-filled ({len(data)} bytes)"))
    seen: set[bytes] = set()
    unique = []
    for content, label in forms:
        if content not in seen:
            seen.add(content)
            unique.append((content, label))
    return unique


class SimFileSystem:
    """A ``pgkms.fs.FileSystem`` in memory, recording operations and their durability.

    ``crash_after``: the number of mutating operations allowed; the next one raises
    ``SimulatedCrash`` instead of happening (None: never crash).
    """

    def __init__(
        self, image: Iterable[ImageEntry] = (), root: str = ROOT, crash_after: int | None = None
    ) -> None:
        self.root = root
        self.crash_after = crash_after
        self.trace: list[Op] = []
        self.mutations = 0
        self._inodes: dict[int, _File | _Dir] = {}
        self._root = self._new(_Dir(0o700, {}, {}, []))
        for path, mode, content in sorted(image, key=lambda e: e[0].rstrip("/").count("/")):
            parts = path.rstrip("/").split("/")
            parent = self._dir_at(parts[:-1], "load", path)
            node: _File | _Dir = (
                _Dir(mode, {}, {}, []) if content is None else _File(mode, content, content)
            )
            ino = self._new(node)
            parent.entries[parts[-1]] = ino
            parent.durable[parts[-1]] = ino

    # --- inode bookkeeping -------------------------------------------------------------------

    def _new(self, node: _File | _Dir) -> int:
        ino = len(self._inodes)
        self._inodes[ino] = node
        return ino

    def _parts(self, path: str, operation: str) -> list[str]:
        parts = path.split("/")
        if parts[0] != self.root or any(p in {"", ".", ".."} for p in parts[1:]):
            raise StorageError(f"{operation} {path}: outside the simulated data directory")
        return parts[1:]

    def _lookup(self, parts: list[str]) -> int | None:
        ino = self._root
        for name in parts:
            node = self._inodes[ino]
            if not isinstance(node, _Dir) or name not in node.entries:
                return None
            ino = node.entries[name]
        return ino

    def _dir_at(self, parts: list[str], operation: str, path: str) -> _Dir:
        ino = self._lookup(parts)
        node = None if ino is None else self._inodes[ino]
        if not isinstance(node, _Dir):
            raise StorageError(f"{operation} {path}: no such directory")
        return node

    def _split(self, path: str, operation: str) -> tuple[_Dir, str]:
        parts = self._parts(path, operation)
        if not parts:
            raise StorageError(f"{operation} {path}: the root cannot be changed")
        return self._dir_at(parts[:-1], operation, path), parts[-1]

    def _node(self, path: str, operation: str) -> _File | _Dir:
        ino = self._lookup(self._parts(path, operation))
        if ino is None:
            raise StorageError(f"{operation} {path}: no such file or directory")
        return self._inodes[ino]

    def _mutate(self, op: Op) -> None:
        """Count a mutating operation, crashing instead when the budget is spent."""
        if self.crash_after is not None and self.mutations >= self.crash_after:
            raise SimulatedCrash(str(op))
        self.mutations += 1
        self.trace.append(op)

    @staticmethod
    def _change(directory: _Dir, change: Change, op: Op) -> None:
        for name, ino in change:
            if ino is None:
                directory.entries.pop(name, None)
            else:
                directory.entries[name] = ino
        directory.pending.append((change, op))

    # --- reads -------------------------------------------------------------------------------

    def stat(self, path: str) -> Stat | None:
        self.trace.append(Op("stat", path))
        ino = self._lookup(self._parts(path, "stat"))
        if ino is None:
            return None
        node = self._inodes[ino]
        if isinstance(node, _Dir):
            return Stat(kind="dir", size=0, mode=node.mode)
        return Stat(kind="file", size=len(node.data), mode=node.mode)

    def list_dir(self, path: str) -> list[str]:
        self.trace.append(Op("list_dir", path))
        node = self._node(path, "list")
        if not isinstance(node, _Dir):
            raise StorageError(f"list {path}: not a directory")
        return sorted(node.entries)

    def read_file(self, path: str) -> bytes:
        self.trace.append(Op("read_file", path))
        node = self._node(path, "read")
        if not isinstance(node, _File):
            raise StorageError(f"read {path}: is a directory")
        return node.data

    def lock(self, datadir: str, timeout: float) -> AbstractContextManager[None]:
        """CONC_01: one simulated process, so nothing to exclude; the lock file is not part of
        the key directories' state and is neither traced nor imaged."""
        return nullcontext()

    # --- writes ------------------------------------------------------------------------------

    def mkdir(self, path: str, mode: int) -> None:
        parent, name = self._split(path, "mkdir")
        if name in parent.entries:
            raise StorageError(f"mkdir {path}: file exists")
        op = Op("mkdir", path)
        self._mutate(op)
        self._change(parent, ((name, self._new(_Dir(mode, {}, {}, []))),), op)

    def create_file(self, path: str, data: bytes, mode: int) -> None:
        parent, name = self._split(path, "create")
        if name in parent.entries:
            raise StorageError(f"create {path}: file exists")
        op = Op("create", path, size=len(data))
        self._mutate(op)
        self._change(parent, ((name, self._new(_File(mode, bytes(data), b""))),), op)

    def fsync_file(self, path: str) -> None:
        node = self._node(path, "fsync")
        if not isinstance(node, _File):
            raise StorageError(f"fsync {path}: is a directory")
        self._mutate(Op("fsync", path))
        node.durable = node.data

    def fsync_dir(self, path: str) -> None:
        node = self._node(path, "fsync directory")
        if not isinstance(node, _Dir):
            raise StorageError(f"fsync directory {path}: not a directory")
        self._mutate(Op("fsync_dir", path))
        node.durable = dict(node.entries)
        node.pending = []

    def rename(self, src: str, dst: str) -> None:
        src_parent, src_name = self._split(src, "rename")
        dst_parent, dst_name = self._split(dst, "rename")
        if src_parent is not dst_parent:
            raise StorageError(f"rename {src} -> {dst}: across directories, outside the model")
        if src_name not in src_parent.entries:
            raise StorageError(f"rename {src} -> {dst}: no such file or directory")
        moving = src_parent.entries[src_name]
        if dst_name in dst_parent.entries:
            replaced = self._inodes[dst_parent.entries[dst_name]]
            if isinstance(replaced, _Dir) and (
                replaced.entries or not isinstance(self._inodes[moving], _Dir)
            ):
                raise StorageError(f"rename {src} -> {dst}: destination is a non-empty directory")
        op = Op("rename", src, target=dst)
        self._mutate(op)
        self._change(src_parent, ((src_name, None), (dst_name, moving)), op)

    def unlink(self, path: str) -> None:
        parent, name = self._split(path, "unlink")
        if name not in parent.entries or isinstance(self._inodes[parent.entries[name]], _Dir):
            raise StorageError(f"unlink {path}: no such file")
        op = Op("unlink", path)
        self._mutate(op)
        self._change(parent, ((name, None),), op)

    def rmdir(self, path: str) -> None:
        parent, name = self._split(path, "rmdir")
        node = self._inodes.get(parent.entries.get(name, -1))
        if not isinstance(node, _Dir):
            raise StorageError(f"rmdir {path}: no such directory")
        if node.entries:
            raise StorageError(f"rmdir {path}: directory not empty")
        op = Op("rmdir", path)
        self._mutate(op)
        self._change(parent, ((name, None),), op)

    # --- images ------------------------------------------------------------------------------

    def _walk(self, entries: dict[int, dict[str, int]]) -> Iterator[tuple[int, str, _File | _Dir]]:
        """Every inode reachable from the root through ``entries``, with its path (directories
        end with ``/``)."""
        stack = [(self._root, "")]
        while stack:
            ino, prefix = stack.pop()
            for name, child in entries[ino].items():
                node = self._inodes[child]
                if isinstance(node, _Dir):
                    yield child, f"{prefix}{name}/", node
                    stack.append((child, f"{prefix}{name}/"))
                else:
                    yield child, f"{prefix}{name}", node

    def _image(self, entries: dict[int, dict[str, int]], contents: dict[int, bytes]) -> Image:
        out: list[ImageEntry] = [
            (path, node.mode, None if isinstance(node, _Dir) else contents[ino])
            for ino, path, node in self._walk(entries)
        ]
        return tuple(sorted(out))

    def image(self) -> Image:
        """What a reader sees now."""
        return self._image(
            {i: n.entries for i, n in self._inodes.items() if isinstance(n, _Dir)},
            {i: n.data for i, n in self._inodes.items() if isinstance(n, _File)},
        )

    def durable_image(self) -> Image:
        """What survives a crash that loses every effect it may lose (without tearing)."""
        return self._image(
            {i: n.durable for i, n in self._inodes.items() if isinstance(n, _Dir)},
            {i: n.durable for i, n in self._inodes.items() if isinstance(n, _File)},
        )

    def crash_states(self, ordering: Ordering = "subset", torn: bool = True) -> list[CrashState]:
        """Every distinct image a crash now can leave (CRASH_01..CRASH_05), least damage first.

        Each image is reported once, with the smallest set of losses that produces it.
        """
        base_entries = {ino: n.durable for ino, n in self._inodes.items() if isinstance(n, _Dir)}
        dirs = [(ino, n) for ino, n in self._inodes.items() if isinstance(n, _Dir) and n.pending]
        best: dict[Image, CrashState] = {}
        for choice in itertools.product(*(_dir_outcomes(d, ordering) for _, d in dirs)):
            entries = dict(base_entries)
            lost: list[str] = []
            for (ino, _), (kept_entries, lost_ops) in zip(dirs, choice, strict=True):
                entries[ino] = kept_entries
                lost.extend(lost_ops)
            for state in self._file_outcomes(entries, tuple(lost), torn):
                known = best.get(state.image)
                if known is None or _rank(state) < _rank(known):
                    best[state.image] = state
        return sorted(best.values(), key=_rank)

    def _file_outcomes(
        self, entries: dict[int, dict[str, int]], lost: tuple[str, ...], torn: bool
    ) -> Iterator[CrashState]:
        reachable = [
            (ino, path)
            for ino, path, node in self._walk(entries)
            if isinstance(node, _File) and node.data != node.durable
        ]
        contents = {i: n.durable for i, n in self._inodes.items() if isinstance(n, _File)}
        options = []
        for ino, _ in reachable:
            node = self._inodes[ino]
            assert isinstance(node, _File)
            options.append(_torn_forms(node.durable, node.data, torn))
        for pick in itertools.product(*options):
            torn_labels = []
            for (ino, path), (content, label) in zip(reachable, pick, strict=True):
                contents[ino] = content
                if label:
                    torn_labels.append(f"{path}: {label}")
            yield CrashState(self._image(entries, contents), lost, tuple(sorted(torn_labels)))


def _dir_outcomes(
    directory: _Dir, ordering: Ordering
) -> list[tuple[dict[str, int], tuple[str, ...]]]:
    """CRASH_03: the entries a crash may leave in one directory, with the changes it lost."""
    n = len(directory.pending)
    if ordering == "prefix":
        kept_sets = [tuple(range(k)) for k in range(n + 1)]
    else:
        kept_sets = [tuple(i for i in range(n) if mask >> i & 1) for mask in range(1 << n)]
    outcomes = []
    for kept in kept_sets:
        entries = dict(directory.durable)
        for i in kept:
            for name, ino in directory.pending[i][0]:
                if ino is None:
                    entries.pop(name, None)
                else:
                    entries[name] = ino
        lost = tuple(str(op) for i, (_, op) in enumerate(directory.pending) if i not in kept)
        outcomes.append((entries, lost))
    return outcomes


def _rank(state: CrashState) -> tuple[int, tuple[str, ...], tuple[str, ...], Image]:
    return (state.severity, state.lost, state.torn, state.image)
