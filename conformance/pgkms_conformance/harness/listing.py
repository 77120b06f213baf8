"""A data directory as data: what is in it, byte for byte, with modes; and how two differ.

The listing format is the vectors' (``{"pg_cryptokeys/": {"mode": 448}, "pg_cryptokeys/0000":
{"mode": 384, "content": "<hex>"}}``: relative paths, directories end with "/"), so a scenario's
replay file and a vector describe directories the same way.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Entry:
    mode: int
    content: bytes | None  # None for a directory


Listing = dict[str, Entry]


# CONC_01: the lock file any procedure may create in PGDATA; it holds no key state, so listings
# leave it out (it is the spec's name, not an import: the harness never imports an IUT).
LOCK_FILE = "pg_cryptokeys.lock"


def read_listing(root: Path) -> Listing:
    out: Listing = {}
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        files = [n for n in filenames if base != root or n != LOCK_FILE]
        for name in dirnames:
            path = base / name
            out[path.relative_to(root).as_posix() + "/"] = Entry(_mode(path), None)
        for name in files:
            path = base / name
            out[path.relative_to(root).as_posix()] = Entry(_mode(path), path.read_bytes())
    return dict(sorted(out.items()))


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def write_listing(root: Path, listing: Listing) -> None:
    """Materialise ``listing`` under ``root`` (which must exist), modes exactly as given."""
    for rel, entry in sorted(listing.items()):
        path = root / rel.rstrip("/")
        if entry.content is None:
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(entry.content)
        os.chmod(path, entry.mode)
    # Directories last-mode-wins: re-apply, children may have been created after the chmod.
    for rel, entry in listing.items():
        if entry.content is None:
            os.chmod(root / rel.rstrip("/"), entry.mode)


def to_json(listing: Listing) -> dict[str, dict[str, object]]:
    """The vectors' listing JSON (content as hex): for replay files only, never for reports."""
    out: dict[str, dict[str, object]] = {}
    for rel, entry in listing.items():
        item: dict[str, object] = {"mode": entry.mode}
        if entry.content is not None:
            item["content"] = entry.content.hex()
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
    for rel in sorted(set(expected) | set(found)):
        want, got = expected.get(rel), found.get(rel)
        if want is None:
            out.append((change_rule, f"{rel} exists but should not"))
            continue
        if got is None:
            out.append((change_rule, f"{rel} is missing"))
            continue
        if want.mode != got.mode:
            rule = _mode_rule(rel, want)
            out.append((rule, f"{rel} has mode {got.mode:04o}, expected {want.mode:04o}"))
        if want.content is None or got.content is None:
            if (want.content is None) != (got.content is None):
                out.append((change_rule, f"{rel}: a file where a directory belongs, or back"))
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
    return "DISK_01" if entry.content is None else "DISK_02"
