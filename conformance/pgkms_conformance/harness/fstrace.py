"""An IUT's filesystem trace (capability ``fs_trace``, ADP_05) as data the crash tools understand.

``parse_trace`` turns the ``fs_trace`` list of an answer into ``TraceOp``s on the crash
explorer's simulated paths (``pgdata/...``), rejecting anything the protocol does not allow
(unknown operations, absolute paths, ``..``). ``replay`` issues the operations on a
``SimFileSystem``, optionally crashing after a number of them. ``resolve_contents`` finds the
bytes each ``create`` wrote: the trace carries sizes, not contents (contents are secrets and
the directory after the operation already holds them), so each created file is followed
through later renames to where it ends, and its bytes are read there. ``faithful`` then checks
that replaying the whole trace on the starting directory gives exactly the directory the IUT
left: a trace that does not account for the disk is itself a failure (ADP_05).
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from dataclasses import dataclass

from pgkms.errors import StorageError

from pgkms_conformance.crash.simfs import (
    ROOT,
    TRACE_OPS,
    Op,
    SimFileSystem,
    SimulatedCrash,
)
from pgkms_conformance.image import Image, Listing, thaw


class BadTrace(Exception):
    """The trace is malformed or does not account for what the IUT did (ADP_05)."""


@dataclass(frozen=True)
class TraceOp:
    kind: str  # one of ``TRACE_OPS``, as the crash explorer's ``Op``
    path: str  # simulated path: "pgdata" or "pgdata/<relative path>"
    target: str = ""  # rename destination
    mode: int = 0
    size: int = 0

    def as_op(self) -> Op:
        return Op(self.kind, self.path, self.target, self.size)

    def __str__(self) -> str:
        return str(self.as_op()).replace(ROOT + "/", "").replace(ROOT, ".")


def _sim_path(value: object, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise BadTrace(f"{where}: expected a relative path")
    norm = posixpath.normpath(value)
    if norm != value or norm.startswith("/") or norm == ".." or norm.startswith("../"):
        raise BadTrace(f"{where}: {value!r} is not a normalised path inside the data directory")
    return ROOT if norm == "." else f"{ROOT}/{norm}"


def parse_trace(raw: object, *, keep_old_cluster: bool = False) -> list[TraceOp]:
    """The trace of a successful answer; entries of ``upgrade_keys``'s old cluster are dropped
    unless ``keep_old_cluster`` (they are relative to another directory)."""
    if not isinstance(raw, list):
        raise BadTrace("fs_trace: expected a list (the IUT claims fs_trace)")
    ops: list[TraceOp] = []
    for index, item in enumerate(raw):
        where = f"fs_trace[{index}]"
        if not isinstance(item, dict) or item.get("op") not in TRACE_OPS:
            raise BadTrace(f"{where}: expected an object with op one of {', '.join(TRACE_OPS)}")
        if item.get("cluster") == "old" and not keep_old_cluster:
            continue
        kind = str(item["op"])
        mode, size = item.get("mode", 0), item.get("size", 0)
        if not isinstance(mode, int) or not isinstance(size, int) or size < 0:
            raise BadTrace(f"{where}: mode and size must be non-negative integers")
        target = _sim_path(item["to"], f"{where}.to") if kind == "rename" else ""
        ops.append(TraceOp(kind, _sim_path(item.get("path"), f"{where}.path"), target, mode, size))
    return ops


def replay(
    ops: Sequence[TraceOp],
    image: Image,
    contents: dict[int, bytes],
    crash_after: int | None = None,
) -> SimFileSystem:
    """The simulated filesystem after the operations (up to the crash, if any)."""
    fs = SimFileSystem(image, ROOT, crash_after=crash_after)
    for index, op in enumerate(ops):
        try:
            if op.kind == "mkdir":
                fs.mkdir(op.path, op.mode)
            elif op.kind == "create":
                fs.create_file(op.path, contents.get(index, bytes(op.size)), op.mode)
            elif op.kind == "fsync":
                fs.fsync_file(op.path)
            elif op.kind == "fsync_dir":
                fs.fsync_dir(op.path)
            elif op.kind == "rename":
                fs.rename(op.path, op.target)
            elif op.kind == "unlink":
                fs.unlink(op.path)
            else:
                fs.rmdir(op.path)
        except SimulatedCrash:
            break
        except StorageError as exc:
            raise BadTrace(f"operation {index + 1} ({op}) is impossible here: {exc}") from None
    return fs


def _marker(index: int, size: int) -> bytes:
    tag = f"\x00pgkms-trace-create-{index}\x00".encode()
    return (tag * (size // len(tag) + 1))[:size]


def resolve_contents(ops: Sequence[TraceOp], before: Image, after: Listing) -> dict[int, bytes]:
    """The bytes of each ``create``, read where the file ends up in ``after``.

    Each create is replayed with a distinct marker of its size; the markers found in the final
    simulated image say where each file went. A created file that does not survive to the end
    keeps zero bytes of its size (the directory no longer holds them).
    """
    markers = {
        i: _marker(i, op.size) for i, op in enumerate(ops) if op.kind == "create" and op.size
    }
    final = replay(ops, before, markers).image()
    by_marker = {m: i for i, m in markers.items() if len(m) >= 16}
    contents: dict[int, bytes] = {}
    for rel, _, content in final:
        index = by_marker.get(content) if content is not None else None
        if index is None:
            continue
        real = after.get(rel)
        if real is None or real.content is None or len(real.content) != ops[index].size:
            found = "nothing" if real is None or real.content is None else len(real.content)
            raise BadTrace(
                f"operation {index + 1} ({ops[index]}) created {ops[index].size} bytes that end "
                f"up at {rel}, which holds {found} bytes"
            )
        contents[index] = real.content
    return contents


def faithful(ops: Sequence[TraceOp], before: Image, after: Listing) -> dict[int, bytes]:
    """The creates' contents, once the trace is shown to account for ``after`` exactly."""
    contents = resolve_contents(ops, before, after)
    replayed = thaw(replay(ops, before, contents).image())
    for rel in sorted(set(replayed) | set(after)):
        want, got = replayed.get(rel), after.get(rel)
        if want == got:
            continue
        if got is None:
            raise BadTrace(f"the trace leaves {rel}, which the directory does not hold")
        if want is None:
            raise BadTrace(f"the directory holds {rel}, which the trace never made")
        if want.mode != got.mode:
            raise BadTrace(f"{rel}: mode {got.mode:04o} on disk, {want.mode:04o} in the trace")
        raise BadTrace(f"{rel}: its content on disk is not what the trace wrote")
    return contents
