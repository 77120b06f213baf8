"""A data directory as data: what is in it, byte for byte, with modes; and how two differ.

The listing format is the vectors' (``{"pg_cryptokeys/": {"mode": 448}, "pg_cryptokeys/0000":
{"mode": 384, "content": "<hex>"}}``: relative paths, directories end with "/"), so a scenario's
replay file and a vector describe directories the same way.

The directories read here were written by the IUT, so they are read as ``safefs`` reads: never
through a symbolic link, never opening a special file, never reading a file whole past
``MAX_FILE_BYTES`` (ADP_01, and the harness's side of ENV_01 .. ENV_03). Such entries are kept
in the listing by kind (``symlink``, ``other``, a file ``too_large`` to read, ``unread``) so a
comparison reports them; a data directory that is itself no longer a directory is the single
entry ``"."``. ``remove_tree`` is how the harness removes what an IUT wrote.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pgkms_conformance.ids import LOCK_FILE_NAME as LOCK_FILE
from pgkms_conformance.safefs import MAX_FILE_BYTES, remove_tree, walk

__all__ = [
    "MAX_FILE_BYTES",
    "ROOT",
    "Entry",
    "Listing",
    "differences",
    "read_listing",
    "remove_tree",
    "to_json",
    "write_listing",
]

ROOT = "."  # the key under which a data directory that is not a directory is listed


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


def read_listing(root: Path) -> Listing:
    """Everything under ``root``, without following links or blocking (see module doc)."""
    out: Listing = {}
    for node in walk(root):
        if node.rel == LOCK_FILE:
            continue
        kind = node.kind
        if kind == "file" and node.content is None:
            kind = "too_large"
        out[node.rel] = Entry(node.mode, node.content, kind, node.size, node.target)
    return dict(sorted(out.items()))


def write_listing(root: Path, listing: Listing) -> None:
    """Materialise ``listing`` under ``root`` (which must exist), modes exactly as given.

    Only directories and files read whole can be made again; other entries (links, special
    files, unread ones) come only from an IUT's directory, whose step has failed already, and
    are left out rather than recreated.
    """
    made = {rel: e for rel, e in listing.items() if e.kind in ("dir", "file") and rel != ROOT}
    for rel, entry in sorted(made.items()):
        path = root / rel.rstrip("/")
        if entry.content is None:
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(entry.content)
        os.chmod(path, entry.mode)
    # Directories last-mode-wins: re-apply, children may have been created after the chmod.
    for rel, entry in made.items():
        if entry.content is None:
            os.chmod(root / rel.rstrip("/"), entry.mode)


def to_json(listing: Listing) -> dict[str, dict[str, object]]:
    """The vectors' listing JSON (content as hex): for replay files only, never for reports."""
    out: dict[str, dict[str, object]] = {}
    for rel, entry in listing.items():
        item: dict[str, object] = {"mode": entry.mode}
        if entry.content is not None:
            item["content"] = entry.content.hex()
        elif not entry.is_dir:
            item["kind"] = entry.kind  # not a listing a vector could hold: says what was there
        out[rel] = item
    return out


def differences(
    expected: Listing, found: Listing, exact: bool, content_rule: str, change_rule: str
) -> list[tuple[str, str]]:
    """(requirement, what differs) for each difference; report-safe (names, modes, sizes only).

    ``exact``: compare file contents byte for byte (deterministic operations); otherwise compare
    only the structure a random re-wrap keeps (names, modes, sizes, record ids). Entries present
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
            rule = _mode_rule(rel, want)
            out.append((rule, f"{rel} has mode {got.mode:04o}, expected {want.mode:04o}"))
        if want.content is None or got.content is None:
            continue
        if exact and want.content != got.content:
            out.append((content_rule, f"{rel}: content differs ({len(got.content)} bytes)"))
        elif not exact:
            if len(want.content) != len(got.content):
                out.append(
                    ("DISK_03", f"{rel} is {len(got.content)} bytes, expected {len(want.content)}")
                )
            elif want.content[:4] != got.content[:4]:
                out.append(("DISK_03", f"{rel}: record id bytes differ"))
    return out


def _mode_rule(rel: str, entry: Entry) -> str:
    return "DISK_01" if entry.is_dir else "DISK_02"
