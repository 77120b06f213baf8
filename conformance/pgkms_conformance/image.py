"""A data directory as data: the one description vectors, harness, crash explorer and trace
replay share, its JSON form, how it is written to disk and read back, and how two compare.

A *listing* maps paths relative to the data directory to ``Entry`` values. A directory's path
ends with ``/``; a regular file carries its bytes. The data directory itself is not listed (an
empty listing is an empty data directory), except when it is no longer a directory at all: then
the listing is the single entry ``"."`` (``ROOT``) saying what stands there.

JSON form (the vectors' ``datadir``, replay files): ``{"pg_cryptokeys/": {"mode": 448},
"pg_cryptokeys/0000": {"mode": 384, "content": "<hex>"}}``; ``mode`` is the permission bits as
a decimal integer. An entry read from an IUT's directory that is neither a directory nor a file
read whole says so with ``kind`` (and ``size`` for a file too large to read), never with its
bytes or a link's target.

An *image* is the same listing frozen into a sorted tuple of ``(path, mode, content)``: what the
simulated filesystem holds and produces, hashable so crash states can be deduplicated.

Reading a directory (``snapshot``) goes through ``safefs.walk``: never through a symbolic link,
never opening a special file, never reading a file past ``MAX_FILE_BYTES`` (ADP_01, and the
harness's side of ENV_01 .. ENV_03). The lock file (CONC_01) is left out: any procedure may
create it and it holds no key state.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from pgkms_conformance import scratch
from pgkms_conformance.ids import LOCK_FILE_NAME as LOCK_FILE
from pgkms_conformance.safefs import MAX_FILE_BYTES, remove_tree, walk

__all__ = [
    "MAX_FILE_BYTES",
    "ROOT",
    "Entry",
    "Image",
    "ImageEntry",
    "Listing",
    "ListingError",
    "ListingJson",
    "Shape",
    "TempDatadir",
    "differences",
    "freeze",
    "from_json",
    "materialise",
    "remove_tree",
    "shape",
    "snapshot",
    "thaw",
    "to_json",
]

ROOT = "."  # the key under which a data directory that is not a directory is listed
RECORD_ID_BYTES = 4  # DISK_03: a key record starts with its id; the rest is random under a wrap

# The frozen form: sorted (path, mode, content or None for a directory) triples.
ImageEntry = tuple[str, int, bytes | None]
Image = tuple[ImageEntry, ...]
ListingJson = dict[str, dict[str, Any]]


class ListingError(ValueError):
    """A listing that cannot describe a directory (absolute path, ``..``, bad entry)."""


@dataclass(frozen=True)
class Shape:
    """What an entry shows when its bytes depend on random draws: kind, mode, size and, for a
    key record, its id (the first bytes, which no draw changes)."""

    kind: str
    mode: int
    size: int
    head: bytes


@dataclass(frozen=True)
class Entry:
    mode: int
    content: bytes | None  # a regular file's bytes; None for a directory or anything unread
    kind: str = ""  # "dir", "file", "symlink", "other", "too_large", "unread"; "" = by content
    size: int = 0  # the file's size (also when too large to read)
    target: str = ""  # a symbolic link's target text, never resolved

    def __post_init__(self) -> None:
        if not self.kind:
            object.__setattr__(self, "kind", "dir" if self.content is None else "file")
        if self.content is not None and not self.size:
            object.__setattr__(self, "size", len(self.content))

    @property
    def is_dir(self) -> bool:
        return self.kind == "dir"

    @property
    def shape(self) -> Shape:
        head = b"" if self.content is None else self.content[:RECORD_ID_BYTES]
        return Shape(self.kind, self.mode, self.size, head)

    def describe(self) -> str:
        """What this entry is, for a message (never its bytes)."""
        return {
            "dir": "a directory",
            "file": "a file",
            # not its target: the text is the IUT's and could carry anything, a secret included
            "symlink": "a symbolic link (not followed)",
            "other": "a special file (FIFO, device or socket)",
            "too_large": f"a file of {self.size} bytes (over {MAX_FILE_BYTES}, not read)",
            "unread": "an entry that could not be read",
        }.get(self.kind, self.kind)


Listing = dict[str, Entry]


# -- JSON form ----------------------------------------------------------------------------------
def _check_path(rel: str) -> None:
    parts = rel.rstrip("/").split("/")
    if not rel or rel.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ListingError(f"listing path {rel!r}: expected a relative path without . or ..")


def from_json(listing: ListingJson) -> Listing:
    """The listing a JSON form describes; ``ListingError`` names the first entry that cannot
    describe a directory entry (a path outside the directory, a file without hex content)."""
    out: Listing = {}
    for rel, item in listing.items():
        _check_path(rel)
        mode = item.get("mode")
        if not isinstance(mode, int) or isinstance(mode, bool) or not 0 <= mode <= 0o7777:
            raise ListingError(f"listing path {rel!r}: 'mode' must be permission bits")
        if rel.endswith("/"):
            out[rel] = Entry(mode, None)
            continue
        content = item.get("content")
        if not isinstance(content, str):
            raise ListingError(f"listing path {rel!r}: a file needs hex 'content'")
        try:
            out[rel] = Entry(mode, bytes.fromhex(content))
        except ValueError:
            raise ListingError(f"listing path {rel!r}: 'content' is not hex") from None
    return out


def to_json(listing: Listing) -> ListingJson:
    """The JSON form, content as hex. Entries that are not a directory or a file read whole
    carry their ``kind`` (and a too large file its ``size``): not a listing a vector could
    hold, but it says what was there."""
    out: ListingJson = {}
    for rel, entry in listing.items():
        item: dict[str, Any] = {"mode": entry.mode}
        if entry.content is not None:
            item["content"] = entry.content.hex()
        elif not entry.is_dir:
            item["kind"] = entry.kind
            if entry.kind == "too_large":
                item["size"] = entry.size
        out[rel] = item
    return out


# -- the frozen form ----------------------------------------------------------------------------
def freeze(listing: Listing) -> Image:
    return tuple(sorted((rel, entry.mode, entry.content) for rel, entry in listing.items()))


def thaw(image: Image) -> Listing:
    return {rel: Entry(mode, content) for rel, mode, content in image}


# -- on disk --------------------------------------------------------------------------------------
def materialise(listing: Listing, root: Path) -> None:
    """Create every directory and file of ``listing`` under the existing directory ``root``,
    modes exactly as given.

    Parents are made first and modes applied last, deepest first, so a read-only directory can
    still be filled. Entries that are neither a directory nor a file read whole (links, special
    files, unread ones) come only from an IUT's directory, whose step has failed already; they
    are left out rather than recreated.
    """
    made = {rel: e for rel, e in listing.items() if e.kind in ("dir", "file") and rel != ROOT}
    base = str(root)
    present = {""}  # the directories made so far, "" being root; saves a mkdir per entry
    for rel in sorted(made):  # sorted: a parent sorts before its children
        _check_path(rel)
        entry = made[rel]
        name = rel.rstrip("/")
        parent = name.rpartition("/")[0]
        if parent not in present:  # a listing need not list every directory it fills
            os.makedirs(os.path.join(base, parent), exist_ok=True)
            while parent not in present:
                present.add(parent)
                parent = parent.rpartition("/")[0]
        path = os.path.join(base, name)
        if entry.content is None:
            if name not in present:
                os.mkdir(path)
                present.add(name)
        else:
            _write_new(path, entry.content)
    for rel in sorted(made, reverse=True):
        os.chmod(os.path.join(base, rel.rstrip("/")), made[rel].mode)


def _write_new(path: str, content: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        view = memoryview(content)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def snapshot(root: Path) -> Listing:
    """Everything under ``root``, read without following links or blocking (module doc)."""
    out: Listing = {}
    for node in walk(root):
        if node.rel == LOCK_FILE:
            continue
        kind = node.kind
        if kind == "file" and node.content is None:
            kind = "too_large"
        out[node.rel] = Entry(node.mode, node.content, kind, node.size, node.target)
    return dict(sorted(out.items()))


class TempDatadir:
    """A fresh data directory holding ``listing``; removed on exit, whatever happened inside
    (never through a link the operation may have left)."""

    def __init__(self, listing: Listing) -> None:
        self._listing = listing
        self._base: Path | None = None

    def __enter__(self) -> Path:
        self._base = scratch.mkdtemp(prefix="pgkms-vec-")
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
            remove_tree(self._base)
            self._base = None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._cleanup()


# -- comparison -----------------------------------------------------------------------------------
def shape(listing: Listing) -> dict[str, Shape]:
    """Every entry's ``Shape``: what two listings must share when their bytes come from
    different random draws."""
    return {rel: entry.shape for rel, entry in sorted(listing.items())}


def differences(
    expected: Listing, found: Listing, exact: bool, content_rule: str, change_rule: str
) -> list[tuple[str, str]]:
    """(requirement, what differs) for each difference; report-safe (names, modes, sizes only).

    ``exact``: compare file contents byte for byte (deterministic operations); otherwise compare
    only the ``Shape`` a random re-wrap keeps (names, modes, sizes, record ids). Entries present
    in one listing only are charged to ``change_rule`` (e.g. START_04 after a refused startup,
    ROT_06 when a rotation leaves its temporary directory), wrong bytes to ``content_rule``.
    """
    out: list[tuple[str, str]] = []
    if ROOT in found:
        what = found[ROOT].describe()
        return [(change_rule, f"the data directory was replaced by {what}")]
    for rel in sorted(set(expected) | set(found)):
        want, got = expected.get(rel), found.get(rel)
        if want is None:
            out.append((change_rule, f"{rel} exists but should not"))
            continue
        if got is None:
            out.append((change_rule, f"{rel} is missing"))
            continue
        if want.kind != got.kind:
            out.append((change_rule, f"{rel} is {got.describe()}, expected {want.describe()}"))
            continue
        if want.mode != got.mode:
            rule = "DISK_01" if want.is_dir else "DISK_09"
            out.append((rule, f"{rel} has mode {got.mode:04o}, expected {want.mode:04o}"))
        if want.content is None or got.content is None:
            continue
        if exact and want.content != got.content:
            out.append((content_rule, f"{rel}: content differs ({len(got.content)} bytes)"))
        elif not exact:
            a, b = want.shape, got.shape
            if a.size != b.size:
                out.append(("DISK_03", f"{rel} is {b.size} bytes, expected {a.size}"))
            elif a.head != b.head:
                out.append(("DISK_03", f"{rel}: record id bytes differ"))
    return out
