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
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

from pgkms_conformance.ids import LOCK_FILE_NAME as LOCK_FILE
from pgkms_conformance.safefs import remove_tree, walk

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


def snapshot(root: Path) -> Listing:
    """The listing of everything under ``root``, read as ``safefs`` reads an IUT's directory:
    symbolic links are not followed, special files not opened, files over ``MAX_FILE_BYTES``
    not read. Those are reported as entries with no content and a ``kind`` ("symlink",
    "other", "file" with its ``size``, "unread"), so a comparison notices them."""
    out: Listing = {}
    for node in walk(root):
        if node.rel == LOCK_FILE:
            continue  # CONC_01: any procedure may create it; it holds no key state
        entry: dict[str, Any] = {"mode": node.mode}
        if node.content is not None:
            entry["content"] = node.content.hex()
        elif node.kind != "dir":
            entry["kind"] = node.kind
            if node.kind == "file":
                entry["size"] = node.size
        out[node.rel] = entry
    return dict(sorted(out.items()))


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
            remove_tree(self._base)  # never through a link the operation may have left
            self._base = None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._cleanup()
