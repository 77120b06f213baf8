"""Helpers for the reference tests: passphrase commands, directory snapshots, a recording fs."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
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


def run_pgkms(
    *args: str,
    stdin: bytes = b"",
    timeout: float = 60,
    env: dict[str, str] | None = None,
    prefix: tuple[str, ...] = (),
) -> subprocess.CompletedProcess[bytes]:
    """``pgkms ARGS`` as a real process (optionally under ``prefix``, e.g. strace), bounded."""
    return subprocess.run(
        [*prefix, sys.executable, "-m", "pgkms", *args],
        input=stdin,
        capture_output=True,
        timeout=timeout,
        env=env,
    )


def error_code(done: subprocess.CompletedProcess[bytes]) -> str | None:
    """The ``[code]`` of a one-line CLI error, None on success."""
    if done.returncode == 0:
        return None
    err = done.stderr.decode("utf-8", "replace")
    assert "Traceback" not in err, err
    assert err.count("\n") == 1, err
    return err.rstrip("\n").rsplit("[", 1)[-1].rstrip("]")


def make_cluster(tmp_path: Path, name: str = "pgdata") -> tuple[Path, str, str]:
    """A data directory bootstrapped under OLD, and the commands printing OLD and NEW."""
    datadir = tmp_path / name
    datadir.mkdir()
    old = passphrase_command(tmp_path, OLD, "old")
    new = passphrase_command(tmp_path, NEW, "new")
    done = run_pgkms("init", str(datadir), "--passphrase-command", old)
    assert done.returncode == 0, done.stderr
    return datadir, old, new


def opens_under(datadir: Path, command: str) -> bool:
    """Does ``pgkms verify`` under ``command`` succeed (it runs startup, recovery included)?"""
    return run_pgkms("verify", str(datadir), "--passphrase-command", command).returncode == 0


def group_gone(pgid: int) -> bool:
    """No live process of the process group ``pgid`` is left. A killed grandchild is a zombie
    until PID 1 reaps it, which this machine's init does only every second or so: a zombie
    runs nothing and holds nothing, so it counts as gone."""
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat_file.read_text()
        except OSError:  # exited meanwhile
            continue
        # pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses
        state, _ppid, pgrp = text[text.rindex(")") + 2 :].split()[:3]
        if int(pgrp) == pgid and state not in {"Z", "X"}:
            return False
    return True
