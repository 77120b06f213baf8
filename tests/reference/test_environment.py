"""A hostile data directory: links, special files, huge files, deep trees, loose modes, odd
names and odd locales, each answered with a typed error in bounded time (ENV_01..ENV_05).

Every CLI run has a timeout, so a hang fails the test instead of blocking the suite.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from pgkms.errors import SymlinkRefused
from pgkms.fs import OsFileSystem, remove_tree
from pgkms.kdf import derive_kek
from pgkms.recovery import recover
from pgkms.secret import Secret

from ..peak_memory import module_command_reporting_peak, reported_peak_kib
from .helpers import OLD, error_code, make_cluster, opens_under, run_pgkms, snapshot

BOUND_S = 10  # every hostile input must be answered well within this
MAX_RSS_KIB = 100 * 1024


def _canary(tmp_path: Path) -> tuple[Path, dict[str, tuple[int, bytes]]]:
    canary = tmp_path / "canary"
    canary.mkdir()
    (canary / "precious").write_bytes(b"must survive")
    (canary / "sub").mkdir()
    (canary / "sub" / "also").write_bytes(b"this too")
    return canary, snapshot(canary)


def _verify(datadir: Path, command: str) -> tuple[str | None, float]:
    started = time.monotonic()
    done = run_pgkms("verify", str(datadir), "--passphrase-command", command, timeout=BOUND_S)
    return error_code(done), time.monotonic() - started


@pytest.mark.req("ENV_01", "REC_05")
@pytest.mark.parametrize("command", ["verify", "rotate", "recover --apply", "init"])
def test_a_symlinked_tmp_directory_is_refused_and_its_target_kept(
    tmp_path: Path, command: str
) -> None:
    datadir, old, new = make_cluster(tmp_path)
    canary, intact = _canary(tmp_path)
    (datadir / "pg_cryptokeys_tmp").symlink_to(canary)
    before = snapshot(datadir)
    name, *flags = command.split()
    args = [name, str(datadir), "--passphrase-command", old, *flags]
    if name == "rotate":
        args += ["--new-passphrase-command", new]
    done = run_pgkms(*args, timeout=BOUND_S)
    expected = "keys_already_exist" if name == "init" else "symlink_refused"
    assert error_code(done) == expected
    assert snapshot(canary) == intact
    assert snapshot(datadir) == before
    assert (datadir / "pg_cryptokeys_tmp").is_symlink()


@pytest.mark.req("ENV_01", "REC_05")
def test_a_symlinked_key_directory_beside_a_valid_tmp_is_refused(tmp_path: Path) -> None:
    datadir, old, _ = make_cluster(tmp_path)
    canary, intact = _canary(tmp_path)
    (datadir / "pg_cryptokeys").rename(datadir / "pg_cryptokeys_tmp")  # a valid lone tmp
    (datadir / "pg_cryptokeys").symlink_to(canary)
    before = snapshot(datadir)
    code, took = _verify(datadir, old)
    assert code == "symlink_refused" and took < BOUND_S
    assert snapshot(canary) == intact
    assert snapshot(datadir) == before


@pytest.mark.req("ENV_01")
def test_recovery_refuses_a_symlinked_tmp_in_process(tmp_path: Path) -> None:
    datadir, _, _ = make_cluster(tmp_path)
    canary, intact = _canary(tmp_path)
    (datadir / "pg_cryptokeys_tmp").symlink_to(canary)
    with pytest.raises(SymlinkRefused):
        recover(OsFileSystem(), str(datadir), derive_kek(Secret(OLD)))
    with pytest.raises(SymlinkRefused):
        remove_tree(OsFileSystem(), str(datadir / "pg_cryptokeys_tmp"))
    assert snapshot(canary) == intact


@pytest.mark.req("ENV_01", "ENV_04")
def test_removal_unlinks_links_inside_a_tree_without_following_them(tmp_path: Path) -> None:
    datadir, old, _ = make_cluster(tmp_path)
    canary, intact = _canary(tmp_path)
    tmp = datadir / "pg_cryptokeys_tmp"
    tmp.mkdir(mode=0o700)
    (tmp / "0000").symlink_to(canary / "precious")
    (tmp / "linkdir").symlink_to(canary)
    (tmp / "dangling").symlink_to(tmp_path / "nowhere")
    code, _ = _verify(datadir, old)
    assert code is None  # the current set is valid: the odd tmp is discarded
    assert not tmp.exists()
    assert snapshot(canary) == intact


@pytest.mark.req("ENV_02")
def test_a_fifo_key_file_is_refused_without_blocking(tmp_path: Path) -> None:
    datadir, old, _ = make_cluster(tmp_path)
    key = datadir / "pg_cryptokeys" / "0001"
    key.unlink()
    os.mkfifo(key, 0o600)
    code, took = _verify(datadir, old)
    assert code == "not_regular_file" and took < BOUND_S
    inspected = run_pgkms("inspect", str(datadir), timeout=BOUND_S)
    assert inspected.returncode == 0 and b"not_regular_file" in inspected.stdout


@pytest.mark.req("ENV_01", "ENV_03")
def test_a_key_file_linked_to_dev_zero_is_refused(tmp_path: Path) -> None:
    datadir, old, _ = make_cluster(tmp_path)
    key = datadir / "pg_cryptokeys" / "0002"
    key.unlink()
    key.symlink_to("/dev/zero")
    code, took = _verify(datadir, old)
    assert code == "symlink_refused" and took < BOUND_S
    inspected = run_pgkms("inspect", str(datadir), timeout=BOUND_S)
    assert inspected.returncode == 0 and b"symlink_refused" in inspected.stdout


@pytest.mark.req("ENV_03", "DISK_03")
def test_a_3_gib_sparse_key_file_is_read_with_a_bound(tmp_path: Path) -> None:
    datadir, old, _ = make_cluster(tmp_path)
    key = datadir / "pg_cryptokeys" / "0000"
    with key.open("r+b") as f:
        f.truncate(3 * 1024**3)
    peak = tmp_path / "peak_kib"
    command = module_command_reporting_peak(
        peak, "pgkms", "verify", str(datadir), "--passphrase-command", old
    )
    done = subprocess.run(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=BOUND_S, check=False
    )  # a hang fails the test, never blocks it
    assert done.returncode == 1
    assert b"[record_size_invalid]" in done.stderr
    assert b"found 3221225472" in done.stderr  # the real size, not the bounded read's
    # The child's own peak (VmHWM), not ru_maxrss, which inherits this pytest's: an unbounded
    # read would be over 3 GiB.
    assert reported_peak_kib(peak) < MAX_RSS_KIB


@pytest.mark.req("ENV_04", "REC_03")
def test_1100_nested_directories_in_tmp_are_discarded(tmp_path: Path) -> None:
    datadir, old, _ = make_cluster(tmp_path)
    deep = datadir / "pg_cryptokeys_tmp"
    level = deep
    for _ in range(1 + 1100):  # os.makedirs recurses per level: build it by hand
        level.mkdir(mode=0o700)
        level = level / "d"
    (deep / "d" / "file").write_bytes(b"x")
    code, took = _verify(datadir, old)
    assert code is None and took < BOUND_S
    assert not deep.exists()
    assert opens_under(datadir, old)


@pytest.mark.req("ENV_05")
@pytest.mark.parametrize(
    ("target", "mode", "accepted"),
    [
        ("pg_cryptokeys/0000", 0o666, False),
        ("pg_cryptokeys/0001", 0o604, False),
        ("pg_cryptokeys", 0o777, False),
        ("pg_cryptokeys", 0o755, False),
        ("pg_cryptokeys/0002", 0o640, True),  # group access, as the 2020 patch allowed
        ("pg_cryptokeys", 0o750, True),
    ],
)
def test_modes_beyond_the_group_mode_are_refused(
    tmp_path: Path, target: str, mode: int, accepted: bool
) -> None:
    datadir, old, _ = make_cluster(tmp_path)
    os.chmod(datadir / target, mode)
    before = snapshot(datadir)
    code, _ = _verify(datadir, old)
    assert code == (None if accepted else "permissions_too_open")
    assert snapshot(datadir) == before


@pytest.mark.req("ENV_05", "REC_02")
def test_a_loose_tmp_is_invalid_to_recovery(tmp_path: Path) -> None:
    datadir, old, _ = make_cluster(tmp_path)
    shutil.copytree(datadir / "pg_cryptokeys", datadir / "pg_cryptokeys_tmp")
    os.chmod(datadir / "pg_cryptokeys_tmp" / "0001", 0o666)
    code, _ = _verify(datadir, old)
    assert code is None  # pg_cryptokeys is valid; the loose copy is discarded
    assert not (datadir / "pg_cryptokeys_tmp").exists()


@pytest.mark.req("ERR_01", "ENV_01")
def test_a_newline_in_an_entry_name_cannot_forge_a_line(tmp_path: Path) -> None:
    datadir, old, _ = make_cluster(tmp_path)
    (datadir / "pg_cryptokeys" / "0000\npgkms: all good [ok]").write_bytes(b"")
    done = run_pgkms("verify", str(datadir), "--passphrase-command", old, timeout=BOUND_S)
    assert error_code(done) == "unexpected_file"  # error_code checks: exactly one line
    assert b"0000\\npgkms: all good" in done.stderr
    inspected = run_pgkms("inspect", str(datadir), timeout=BOUND_S)
    assert inspected.returncode == 0
    assert not any(line.startswith(b"pgkms: all good") for line in inspected.stdout.splitlines())


@pytest.mark.req("ERR_01")
def test_raw_bytes_on_unwrap_stdin_under_strict_utf8(tmp_path: Path) -> None:
    datadir, old, _ = make_cluster(tmp_path)
    env = {**os.environ, "PYTHONIOENCODING": "utf-8:strict", "LC_ALL": "C.UTF-8"}
    for stdin in (b"\xff\xfe\x80", b"\\x\xc3\x28", bytes(range(256))):
        done = run_pgkms("unwrap", str(datadir), "--passphrase-command", old, stdin=stdin, env=env)
        assert done.returncode == 2
        assert error_code(done) == "hex_invalid"


@pytest.mark.req("ERR_01")
def test_inspect_under_an_ascii_locale_with_odd_names(tmp_path: Path) -> None:
    datadir, _, _ = make_cluster(tmp_path)
    os.mkdir(datadir / "pg_cryptokeys_tmp", 0o700)
    (datadir / "pg_cryptokeys_tmp" / "caf\u00e9").write_bytes(b"")
    os.close(os.open(os.fsencode(datadir / "pg_cryptokeys_tmp") + b"/\xff\xfe", os.O_CREAT, 0o600))
    env = {**os.environ, "PYTHONIOENCODING": "ascii", "LC_ALL": "C"}
    done = run_pgkms("inspect", str(datadir), env=env, timeout=BOUND_S)
    assert done.returncode == 0, done.stderr
    assert b"Traceback" not in done.stderr
    assert b"read-only: no lock taken" in done.stdout
    done = run_pgkms("verify", str(datadir), "--passphrase-command", "false", env=env)
    assert error_code(done) == "passphrase_command_failed"
