"""The ``fs_trace`` capability of the adapter protocol: a ``FileSystem`` that reports what it did.

``TracingFileSystem`` wraps the filesystem the protocols really use (``OsFileSystem`` in
production) and records each *mutating* call after it succeeded, as the protocol's trace entry
(spec: Adapter protocol, ADP_05): the operations the code issues, in order, with paths relative
to the data directory. Reads (stat, list, read) are not recorded. A call that fails is not
recorded either: it changed nothing the trace could describe, and the error answer carries no
trace.

Trace entries mirror ``FileSystem``'s mutating methods one to one:

=========  ===================  ===========================================
op         method               extra fields
=========  ===================  ===========================================
mkdir      ``mkdir``            ``mode``
create     ``create_file``      ``mode``, ``size`` (exclusive create + write)
fsync      ``fsync_file``
fsync_dir  ``fsync_dir``
rename     ``rename``           ``to``
unlink     ``unlink``
rmdir      ``rmdir``
=========  ===================  ===========================================

``upgrade_keys`` works on two data directories: its entries are relative to ``new_datadir``,
and an entry for a path under ``old_datadir`` carries ``"cluster": "old"`` and a path relative
to that one.
"""

from __future__ import annotations

import posixpath
from typing import Any

from pgkms.fs import FileSystem, ForwardingFileSystem

TraceEntry = dict[str, Any]


def relative(datadir: str, path: str) -> str:
    """``path`` relative to ``datadir``, ``'.'`` for the data directory itself."""
    return posixpath.relpath(posixpath.normpath(path), posixpath.normpath(datadir))


class TracingFileSystem(ForwardingFileSystem):
    """A ``FileSystem`` that forwards every call to ``inner`` and records the mutating ones."""

    def __init__(self, inner: FileSystem, datadir: str, old_datadir: str | None = None) -> None:
        super().__init__(inner)
        self.datadir = datadir
        self.old_datadir = old_datadir
        self.trace: list[TraceEntry] = []

    def _where(self, path: str) -> tuple[str, dict[str, str]]:
        rel = relative(self.datadir, path)
        if self.old_datadir is not None and (rel == ".." or rel.startswith("../")):
            return relative(self.old_datadir, path), {"cluster": "old"}
        return rel, {}

    def _record(self, op: str, path: str, **extra: Any) -> None:
        rel, cluster = self._where(path)
        self.trace.append({"op": op, "path": rel, **extra, **cluster})

    # writes: forwarded, then recorded
    def mkdir(self, path: str, mode: int) -> None:
        super().mkdir(path, mode)
        self._record("mkdir", path, mode=mode)

    def create_file(self, path: str, data: bytes, mode: int) -> None:
        super().create_file(path, data, mode)
        self._record("create", path, mode=mode, size=len(data))

    def fsync_file(self, path: str) -> None:
        super().fsync_file(path)
        self._record("fsync", path)

    def fsync_dir(self, path: str) -> None:
        super().fsync_dir(path)
        self._record("fsync_dir", path)

    def rename(self, src: str, dst: str) -> None:
        super().rename(src, dst)
        self._record("rename", src, to=self._where(dst)[0])

    def unlink(self, path: str) -> None:
        super().unlink(path)
        self._record("unlink", path)

    def rmdir(self, path: str) -> None:
        super().rmdir(path)
        self._record("rmdir", path)
