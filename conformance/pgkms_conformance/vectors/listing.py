"""Directory listings: how a vector describes a data directory, and how a runner makes one.

A listing maps paths relative to the data directory to entries. A directory's path ends with
``/`` and its entry is ``{"mode": m}``; a file's entry is ``{"mode": m, "content": "<hex>"}``.
``mode`` is the permission bits as a decimal integer (448 = 0o700, 384 = 0o600). The data
directory itself is not listed; an empty listing is an empty data directory.

``materialise`` writes a listing into a fresh directory (parents first, modes applied last so a
read-only directory can still be filled); ``snapshot`` reads one back; ``TempDatadir`` does both
around an operation and always removes what it made, whatever the operation left behind.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

Listing = dict[str, dict[str, Any]]


class ListingError(ValueError):
    """A listing that cannot describe a directory (absolute path, ``..``, bad entry)."""


def _check_path(rel: str) -> None:
    parts = rel.rstrip("/").split("/")
    if not rel or rel.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ListingError(f"listing path {rel!r}: expected a relative path without . or ..")


def materialise(listing: Listing, root: Path) -> None:
    """Create every entry of ``listing`` under the existing directory ``root``."""
    for rel in sorted(listing):  # sorted: a parent sorts before its children
        _check_path(rel)
        entry = listing[rel]
        path = root / rel.rstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        if rel.endswith("/"):
            path.mkdir(exist_ok=True)
        else:
            content = entry.get("content")
            if not isinstance(content, str):
                raise ListingError(f"listing path {rel!r}: a file needs hex 'content'")
            path.write_bytes(bytes.fromhex(content))
    # Modes last and deepest first, so restrictive directory modes do not block the writes above.
    for rel in sorted(listing, reverse=True):
        mode = listing[rel].get("mode")
        if mode is not None:
            os.chmod(root / rel.rstrip("/"), int(mode))


# CONC_01: the lock file any procedure may create in PGDATA (the spec's name: the runner checks
# any implementation and imports none).
LOCK_FILE = "pg_cryptokeys.lock"


def snapshot(root: Path) -> Listing:
    """The listing of everything under ``root`` (symlinks and other kinds are reported as files
    with no content, so a comparison notices them), except the lock file (CONC_01): any
    procedure may create it, and it holds no key state."""
    out: Listing = {}
    for dirpath, dirnames, filenames in os.walk(root):
        files = [n for n in filenames if Path(dirpath) != root or n != LOCK_FILE]
        for name in sorted(dirnames):
            p = Path(dirpath, name)
            out[p.relative_to(root).as_posix() + "/"] = {"mode": stat.S_IMODE(p.lstat().st_mode)}
        for name in sorted(files):
            p = Path(dirpath, name)
            st = p.lstat()
            entry: dict[str, Any] = {"mode": stat.S_IMODE(st.st_mode)}
            if stat.S_ISREG(st.st_mode):
                entry["content"] = p.read_bytes().hex()
            out[p.relative_to(root).as_posix()] = entry
    return dict(sorted(out.items()))


def _make_writable(root: Path) -> None:
    """Give the owner rwx on every directory under ``root`` so it can be removed."""
    for dirpath, dirnames, _ in os.walk(root):
        for name in dirnames:
            p = Path(dirpath, name)
            if not p.is_symlink():
                p.chmod(0o700)


class TempDatadir:
    """A fresh data directory holding ``listing``; removed on exit, whatever happened inside."""

    def __init__(self, listing: Listing) -> None:
        self._listing = listing
        self._base: Path | None = None

    def __enter__(self) -> Path:
        self._base = Path(tempfile.mkdtemp(prefix="pgkms-vec-"))
        root = self._base / "pgdata"
        root.mkdir(mode=0o700)
        try:
            materialise(self._listing, root)
        except BaseException:
            self._cleanup()
            raise
        return root

    def _cleanup(self) -> None:
        if self._base is not None:
            os.chmod(self._base, 0o700)
            _make_writable(self._base)
            shutil.rmtree(self._base, ignore_errors=True)
            self._base = None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._cleanup()
