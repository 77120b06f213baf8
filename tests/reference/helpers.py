"""Helpers for the reference tests: passphrase commands, directory snapshots, a recording fs."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from pgkms.fs import OsFileSystem, Stat

OLD = b"old passphrase " + b"o" * 60  # 75 bytes
NEW = b"new passphrase " + b"n" * 60


def passphrase_command(tmp_path: Path, passphrase: bytes, name: str = "pass") -> str:
    """A shell command printing exactly ``passphrase`` (via a file: any bytes, no quoting)."""
    path = tmp_path / name
    path.write_bytes(passphrase)
    return f"cat {shlex.quote(str(path))}"


def snapshot(root: Path) -> dict[str, tuple[int, bytes]]:
    """Every path under ``root`` with its mode and content, for 'nothing changed' checks."""
    out: dict[str, tuple[int, bytes]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        # CONC_01: the lock file holds no key state
        files = [n for n in filenames if Path(dirpath) != root or n != "pg_cryptokeys.lock"]
        for name in dirnames:
            p = Path(dirpath, name)
            out[str(p.relative_to(root)) + "/"] = (p.stat().st_mode, b"")
        for name in files:
            p = Path(dirpath, name)
            out[str(p.relative_to(root))] = (p.stat().st_mode, p.read_bytes())
    return out


class RecordingFileSystem(OsFileSystem):
    """The real filesystem, logging every mutating operation as (operation, path)."""

    def __init__(self) -> None:
        self.log: list[tuple[str, str]] = []

    def stat(self, path: str) -> Stat | None:
        return super().stat(path)

    def mkdir(self, path: str, mode: int) -> None:
        self.log.append(("mkdir", path))
        super().mkdir(path, mode)

    def create_file(self, path: str, data: bytes, mode: int) -> None:
        self.log.append(("create", path))
        super().create_file(path, data, mode)

    def fsync_file(self, path: str) -> None:
        self.log.append(("fsync", path))
        super().fsync_file(path)

    def fsync_dir(self, path: str) -> None:
        self.log.append(("fsync_dir", path))
        super().fsync_dir(path)

    def rename(self, src: str, dst: str) -> None:
        self.log.append(("rename", f"{src} -> {dst}"))
        super().rename(src, dst)

    def unlink(self, path: str) -> None:
        self.log.append(("unlink", path))
        super().unlink(path)

    def rmdir(self, path: str) -> None:
        self.log.append(("rmdir", path))
        super().rmdir(path)
