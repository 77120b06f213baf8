"""Describe a data directory's key state without any passphrase, and without key material.

What can be judged without the passphrase is structure: which directories exist, which files,
their sizes, modes and record ids. Whether a key set *opens* needs the passphrase, so the
recovery outlook here says what each possible decision depends on.

Inspection is read-only and takes no lock (CONC_01 covers procedures that may change the key
directories): a procedure running meanwhile may change what it shows, and the output says so.
It follows no symbolic link and never blocks on a special file (ENV_01, ENV_02): it goes
through the same ``FileSystem`` as the procedures, and reads only regular files.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pgkms.errors import KmsError
from pgkms.fs import FileSystem, join
from pgkms.keydir import read_key_set
from pgkms.layout import KEY_DIR, KEY_FILE_NAMES, KEY_TMP_DIR, RECORD_ID_LEN, RECORD_LEN
from pgkms.shown import shown

NO_LOCK_NOTE = "(read-only: no lock taken; a procedure running now may change what is shown)"


@dataclass(frozen=True)
class EntryReport:
    name: str
    kind: str
    size: int
    mode: int
    record_id: int | None  # the id field, when the entry is a file long enough to hold one


@dataclass(frozen=True)
class DirReport:
    path: str
    exists: bool
    mode: int | None = None
    kind: str = "dir"
    entries: list[EntryReport] = field(default_factory=list)
    problem: KmsError | None = None  # the first structural problem, None for a complete set

    @property
    def complete(self) -> bool:
        return self.exists and self.problem is None


def inspect_dir(fs: FileSystem, directory: str) -> DirReport:
    st = fs.stat(directory)
    if st is None:
        return DirReport(path=directory, exists=False)
    entries = []
    if st.kind == "dir":
        for name in fs.list_dir(directory):
            est = fs.stat(join(directory, name))
            if est is None:
                continue
            entries.append(
                EntryReport(name, est.kind, est.size, est.mode, _record_id(fs, directory, name))
                if est.kind == "file" and est.size >= RECORD_ID_LEN
                else EntryReport(name, est.kind, est.size, est.mode, None)
            )
    problem: KmsError | None = None
    try:
        read_key_set(fs, directory)
    except KmsError as exc:
        problem = exc
    return DirReport(directory, True, st.mode, st.kind, entries, problem)


def _record_id(fs: FileSystem, directory: str, name: str) -> int | None:
    try:
        head = fs.read_file(join(directory, name))[:RECORD_ID_LEN]
    except KmsError:  # replaced by a link or a FIFO since the stat: show no id
        return None
    return int.from_bytes(head, "little") if len(head) == RECORD_ID_LEN else None


def describe(fs: FileSystem, datadir: str) -> list[str]:
    """Human-readable lines for ``pgkms inspect`` and ``pgkms recover``."""
    lines: list[str] = []
    reports = [inspect_dir(fs, join(datadir, d)) for d in (KEY_DIR, KEY_TMP_DIR)]
    for rep in reports:
        if not rep.exists:
            lines.append(f"{shown(rep.path)}: absent")
            continue
        assert rep.mode is not None
        what = {"dir": "directory", "symlink": "symbolic link (not followed)"}.get(
            rep.kind, rep.kind
        )
        lines.append(f"{shown(rep.path)}: {what}, mode {rep.mode:04o}")
        for e in rep.entries:
            rid = "" if e.record_id is None else f", record id {e.record_id}"
            size_note = "" if e.size == RECORD_LEN else f" (a key record is {RECORD_LEN})"
            lines.append(
                f"  {shown(e.name)}: {e.kind}, {e.size} bytes{size_note}, mode {e.mode:04o}{rid}"
            )
        verdict = (
            "complete key set" if rep.problem is None else f"not a complete key set: {rep.problem}"
        )
        lines.append(f"  {verdict}")
    current, tmp = reports
    lines.append(rotation_outlook(current, tmp))
    lines.append(NO_LOCK_NOTE)
    return lines


def rotation_outlook(current: DirReport, tmp: DirReport) -> str:
    """What startup will do with this state (REC_01..REC_05), as far as structure can tell."""
    if not tmp.exists and not current.exists:
        return (
            f"rotation state: no interrupted rotation; no {KEY_DIR} either: startup fails "
            "(key_directory_missing) until pgkms init creates the keys"
        )
    if not tmp.exists:
        return "rotation state: no interrupted rotation; startup opens " + KEY_DIR
    if not tmp.complete and not current.complete:
        return (
            "rotation state: interrupted; neither directory holds a complete key set, "
            "startup will refuse (no_valid_key_set) and change nothing"
        )
    if not tmp.complete:
        return (
            f"rotation state: interrupted early; startup keeps {KEY_DIR} if it opens under the "
            f"configured passphrase and removes {KEY_TMP_DIR}"
        )
    if not current.complete:
        return (
            f"rotation state: interrupted late; startup adopts {KEY_TMP_DIR} if it opens under "
            "the configured passphrase (the new one)"
        )
    return (
        f"rotation state: interrupted with both sets complete; startup keeps {KEY_DIR} if it "
        f"opens under the configured passphrase, otherwise adopts {KEY_TMP_DIR} if that opens"
    )


__all__ = ["KEY_FILE_NAMES", "DirReport", "EntryReport", "describe", "inspect_dir"]
