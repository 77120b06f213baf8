"""The ``pgkms`` command line: every command, exit codes, one-line errors, no secrets."""

from __future__ import annotations

import argparse
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from pgkms import __version__
from pgkms.errors import StorageError
from pgkms.tools import cli
from pgkms.tools.cli import build_parser

from .helpers import NEW, OLD, passphrase_command


def pgkms(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "pgkms", *args], input=stdin, capture_output=True, timeout=60
    )


@pytest.fixture
def cluster(tmp_path: Path) -> tuple[Path, str, str]:
    datadir = tmp_path / "pgdata"
    datadir.mkdir()
    old = passphrase_command(tmp_path, OLD, "old")
    new = passphrase_command(tmp_path, NEW, "new")
    done = pgkms("init", str(datadir), "--passphrase-command", old)
    assert done.returncode == 0, done.stderr
    return datadir, old, new


def _assert_clean_failure(done: subprocess.CompletedProcess[bytes], code: int, needle: str) -> None:
    err = done.stderr.decode()
    assert done.returncode == code, err
    assert err.count("\n") == 1 and needle in err, err
    assert "Traceback" not in err
    for secret in (OLD, NEW):
        assert secret not in done.stdout + done.stderr


@pytest.mark.req("DISK_01", "DISK_02", "BOOT_01")
def test_init_modes_and_refusal(cluster: tuple[Path, str, str]) -> None:
    datadir, old, _ = cluster
    assert stat.S_IMODE((datadir / "pg_cryptokeys").stat().st_mode) == 0o700
    for name in ("0000", "0001", "0002"):
        assert stat.S_IMODE((datadir / "pg_cryptokeys" / name).stat().st_mode) == 0o600
    _assert_clean_failure(
        pgkms("init", str(datadir), "--passphrase-command", old), 1, "keys_already_exist"
    )


def test_full_cycle(cluster: tuple[Path, str, str]) -> None:
    datadir, old, new = cluster
    assert pgkms("verify", str(datadir), "--passphrase-command", old).returncode == 0
    wrapped = pgkms("wrap", str(datadir), "--passphrase-command", old, stdin=b"my secret passward")
    assert wrapped.returncode == 0
    text = wrapped.stdout.decode().strip()
    assert text.startswith("\\x") and len(text) == 2 + 2 * 80
    done = pgkms(
        "rotate", str(datadir), "--passphrase-command", old, "--new-passphrase-command", new
    )
    assert done.returncode == 0, done.stderr
    _assert_clean_failure(
        pgkms("verify", str(datadir), "--passphrase-command", old), 1, "wrong_passphrase"
    )
    for form in (text, text.upper().replace("\\X", "\\x")):  # PostgreSQL takes either case
        out = pgkms("unwrap", str(datadir), "--passphrase-command", new, stdin=form.encode())
        assert out.returncode == 0 and out.stdout == b"my secret passward"
    # Without \x, PostgreSQL would read bytea's escape format: other bytes. Refused.
    out = pgkms("unwrap", str(datadir), "--passphrase-command", new, stdin=text[2:].encode())
    _assert_clean_failure(out, 2, "starting with \\x")


@pytest.mark.req("SQL_02")
def test_unwrap_too_short(cluster: tuple[Path, str, str]) -> None:
    datadir, old, _ = cluster
    done = pgkms("unwrap", str(datadir), "--passphrase-command", old, stdin=b"\\x" + b"00" * 63)
    _assert_clean_failure(done, 1, "invalid wrapped key input")


def test_unwrap_bad_hex_is_usage_error(cluster: tuple[Path, str, str]) -> None:
    datadir, old, _ = cluster
    done = pgkms("unwrap", str(datadir), "--passphrase-command", old, stdin=b"\\xzz")
    _assert_clean_failure(done, 2, "hex_invalid")


@pytest.mark.req("PASS_03")
def test_failing_command(cluster: tuple[Path, str, str]) -> None:
    datadir, _, _ = cluster
    _assert_clean_failure(
        pgkms("verify", str(datadir), "--passphrase-command", "exit 4"),
        1,
        "passphrase_command_failed",
    )


@pytest.mark.req("PASS_07")
def test_command_printing_too_little(cluster: tuple[Path, str, str]) -> None:
    datadir, _, _ = cluster
    _assert_clean_failure(
        pgkms("verify", str(datadir), "--passphrase-command", "printf abc"),
        1,
        "passphrase_too_short",
    )


def test_bad_usage_exits_2() -> None:
    done = pgkms("verify")
    assert done.returncode == 2 and "Traceback" not in done.stderr.decode()
    assert pgkms("frobnicate").returncode == 2


def test_inspect_and_recover_show_structure_never_keys(cluster: tuple[Path, str, str]) -> None:
    datadir, old, _ = cluster
    out = pgkms("inspect", str(datadir))
    assert out.returncode == 0
    text = out.stdout.decode()
    assert "0001: file, 132 bytes, mode 0600, record id 1" in text
    assert "no interrupted rotation" in text
    raw = b"".join((datadir / "pg_cryptokeys" / n).read_bytes() for n in ("0000", "0001", "0002"))
    for i in range(0, len(raw) - 8, 4):  # no 8-byte window of any key file appears, in hex
        assert raw[i : i + 8].hex() not in text
    os.mkdir(datadir / "pg_cryptokeys_tmp")
    rec = pgkms("recover", str(datadir), "--passphrase-command", old)
    assert rec.returncode == 0
    assert "discard_tmp (startup will apply)" in rec.stdout.decode()
    assert (datadir / "pg_cryptokeys_tmp").exists()
    rec = pgkms("recover", str(datadir), "--passphrase-command", old, "--apply")
    assert "discard_tmp (applied)" in rec.stdout.decode()
    assert not (datadir / "pg_cryptokeys_tmp").exists()


def test_demo_runs() -> None:
    done = pgkms("demo")
    assert done.returncode == 0, done.stderr
    assert b"[7]" in done.stdout and b"UNEXPECTED" not in done.stdout


@pytest.mark.req("UPG_01")
def test_upgrade_keys_refuses_another_passphrase(cluster: tuple[Path, str, str]) -> None:
    datadir, old, new = cluster
    target = datadir.parent / "upgraded"
    target.mkdir()
    assert pgkms("init", str(target), "--passphrase-command", new).returncode == 0
    done = pgkms(
        "upgrade-keys", str(target), "--old-datadir", str(datadir), "--passphrase-command", new
    )
    _assert_clean_failure(done, 1, "wrong_passphrase")
    target2 = datadir.parent / "upgraded2"
    target2.mkdir()
    assert pgkms("init", str(target2), "--passphrase-command", old).returncode == 0
    done = pgkms(
        "upgrade-keys", str(target2), "--old-datadir", str(datadir), "--passphrase-command", old
    )
    assert done.returncode == 0, done.stderr
    assert (target2 / "pg_cryptokeys/0001").read_bytes() == (
        datadir / "pg_cryptokeys/0001"
    ).read_bytes()


@pytest.mark.req("CONF_04", "KEY_01", "WRAP_03")
def test_production_cli_offers_no_randomness_injection(tmp_path: Path) -> None:
    """Injection lives in the adapter only: the CLI has no such option, and two clusters made by
    it with the same passphrase get different keys and IVs."""
    parser = build_parser()
    help_texts = [
        sub.format_help().lower()
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
        for sub in action.choices.values()
    ]
    assert help_texts
    for text in help_texts:
        for word in ("--iv", "--keys", "--seed", "random"):
            assert word not in text
    cmd = passphrase_command(tmp_path, OLD)
    files = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        assert pgkms("init", str(tmp_path / name), "--passphrase-command", cmd).returncode == 0
        files.append((tmp_path / name / "pg_cryptokeys/0000").read_bytes())
    assert files[0][4:36] != files[1][4:36] and files[0][36:52] != files[1][36:52]


def test_version_and_help_are_plain_text() -> None:
    done = pgkms("--version")
    assert done.returncode == 0 and done.stdout.decode().strip() == f"pgkms {__version__}"
    top = pgkms("--help").stdout.decode()
    assert "``" not in top
    for name in ("init", "verify", "rotate", "recover", "wrap", "unwrap", "upgrade-keys"):
        assert f"    {name}" in top, name
    assert "inspect" in top and "demo" in top and "Exit status" in top
    rotate_help = " ".join(pgkms("rotate", "--help").stdout.decode().split())
    assert "--new-passphrase-command CMD shell command printing the new passphrase" in rotate_help
    assert "walk through init" in pgkms("demo", "--help").stdout.decode()


def test_init_creates_a_missing_data_directory_as_initdb_does(tmp_path: Path) -> None:
    cmd = passphrase_command(tmp_path, OLD)
    datadir = tmp_path / "absent" / "pgdata"
    done = pgkms("init", str(datadir), "--passphrase-command", cmd)
    assert done.returncode == 0, done.stderr
    assert "created the data directory (mode 0700)" in done.stdout.decode()
    assert stat.S_IMODE(datadir.stat().st_mode) == 0o700
    assert (datadir / "pg_cryptokeys" / "0002").is_file()


def test_init_reports_a_data_directory_it_cannot_create(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    cmd = passphrase_command(tmp_path, OLD)
    done = pgkms("init", str(tmp_path / "file" / "pgdata"), "--passphrase-command", cmd)
    _assert_clean_failure(done, 1, "cannot create the data directory")


@pytest.mark.parametrize("command", ["inspect", "recover"])
def test_reading_commands_refuse_a_missing_data_directory(tmp_path: Path, command: str) -> None:
    done = pgkms(command, str(tmp_path / "nonexistent"))
    _assert_clean_failure(done, 2, "does not exist; expected the cluster's data directory")
    assert done.stdout == b""
    (tmp_path / "file").write_text("x")
    done = pgkms(command, str(tmp_path / "file"))
    _assert_clean_failure(done, 2, "is not a directory")


def test_verify_says_what_it_cannot_see(cluster: tuple[Path, str, str]) -> None:
    datadir, old, _ = cluster
    done = pgkms("verify", str(datadir), "--passphrase-command", old)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.decode().splitlines()
    assert lines[0].endswith("the passphrase opens all 3 internal keys")
    assert "cannot detect a modified IV" in lines[1] and "SEC_IV" in lines[1]


@pytest.mark.req("REC_05")
def test_recover_reports_a_refused_state_as_no_valid_key_set(
    cluster: tuple[Path, str, str],
) -> None:
    datadir, _, new = cluster
    tmp = datadir / "pg_cryptokeys_tmp"
    tmp.mkdir(mode=0o700)
    before = sorted(p.name for p in datadir.iterdir())
    # Under another passphrase neither set opens: read-only and applied, the same refusal.
    done = pgkms("recover", str(datadir), "--passphrase-command", new)
    _assert_clean_failure(done, 1, "startup will refuse, nothing was changed [no_valid_key_set]")
    done = pgkms("recover", str(datadir), "--passphrase-command", new, "--apply")
    _assert_clean_failure(done, 1, "[no_valid_key_set]")
    assert sorted(p.name for p in datadir.iterdir()) == before


def test_upgrade_keys_hints_at_the_side_without_keys(cluster: tuple[Path, str, str]) -> None:
    datadir, old, _ = cluster
    empty = datadir.parent / "empty"
    empty.mkdir()
    done = pgkms(
        "upgrade-keys", str(empty), "--old-datadir", str(datadir), "--passphrase-command", old
    )
    _assert_clean_failure(done, 1, "key_directory_missing")
    assert f"run pgkms init {empty}" in done.stderr.decode()
    done = pgkms(
        "upgrade-keys", str(datadir), "--old-datadir", str(empty), "--passphrase-command", old
    )
    _assert_clean_failure(done, 1, "--old-datadir must name the cluster being upgraded")


def test_inspect_of_a_data_directory_without_keys_says_startup_fails(tmp_path: Path) -> None:
    done = pgkms("inspect", str(tmp_path))
    assert done.returncode == 0, done.stderr
    text = done.stdout.decode()
    assert "startup fails (key_directory_missing) until pgkms init creates the keys" in text
    assert "startup opens" not in text


def _flip_iv_bit(key_file: Path) -> None:
    """One bit inside the IV (after the 4-byte id and the 32-byte HMAC): SEC_IV."""
    record = bytearray(key_file.read_bytes())
    record[4 + 32] ^= 0x01
    key_file.write_bytes(bytes(record))


def test_a_key_check_file_detects_a_modified_iv(cluster: tuple[Path, str, str]) -> None:
    datadir, old, new = cluster
    kcv = datadir.parent / "kcv"
    done = pgkms("verify", str(datadir), "--passphrase-command", old, "--save-key-check", str(kcv))
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(kcv.stat().st_mode) == 0o600
    lines = kcv.read_text().splitlines()
    assert lines[0] == "pgkms-key-check/1" and [line[:2] for line in lines[1:]] == [
        "0 ",
        "1 ",
        "2 ",
    ]
    raw = b"".join((datadir / "pg_cryptokeys" / n).read_bytes() for n in ("0000", "0001", "0002"))
    for i in range(0, len(raw) - 8, 4):  # no window of any key file appears in it
        assert raw[i : i + 8].hex() not in kcv.read_text()
    # Rotation keeps the keys (KEY_02): the same file still matches under the new passphrase.
    rotate = ["rotate", str(datadir), "--passphrase-command", old]
    assert pgkms(*rotate, "--new-passphrase-command", new).returncode == 0
    done = pgkms("verify", str(datadir), "--passphrase-command", new, "--key-check", str(kcv))
    assert done.returncode == 0 and b"are the ones" in done.stdout, done.stderr
    _flip_iv_bit(datadir / "pg_cryptokeys" / "0001")
    # Without the file the flip goes unseen (SEC_IV), and verify says it cannot see it ...
    done = pgkms("verify", str(datadir), "--passphrase-command", new)
    assert done.returncode == 0 and b"cannot detect a modified IV" in done.stdout
    # ... with it, the changed block key is named.
    done = pgkms("verify", str(datadir), "--passphrase-command", new, "--key-check", str(kcv))
    _assert_clean_failure(done, 1, "key 1 (block key)")
    assert "[key_check_mismatch]" in done.stderr.decode()


def test_a_key_check_file_is_never_replaced_nor_kept_inside_pgdata(
    cluster: tuple[Path, str, str],
) -> None:
    datadir, old, _ = cluster
    verify = ["verify", str(datadir), "--passphrase-command", old]
    kcv = datadir.parent / "kcv"
    kcv.write_text("something else\n")
    _assert_clean_failure(pgkms(*verify, "--save-key-check", str(kcv)), 2, "never replaced")
    assert kcv.read_text() == "something else\n"
    _assert_clean_failure(pgkms(*verify, "--key-check", str(kcv)), 2, "not a key-check file")
    inside = datadir / "kcv"
    _assert_clean_failure(pgkms(*verify, "--save-key-check", str(inside)), 2, "outside PGDATA")
    assert not inside.exists()
    missing = datadir.parent / "missing"
    _assert_clean_failure(pgkms(*verify, "--key-check", str(missing)), 1, "cannot read")


def test_a_failed_init_removes_the_data_directory_it_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """As initdb does: a bootstrap that fails after init made the directory (here one that took
    the lock, then hit a storage error) leaves nothing init created behind."""

    def failing_bootstrap(datadir: str, *args: object, **kwargs: object) -> None:
        (Path(datadir) / "pg_cryptokeys.lock").write_bytes(b"")
        raise StorageError(f"create {datadir}/pg_cryptokeys_tmp: No space left on device")

    monkeypatch.setattr(cli, "bootstrap", failing_bootstrap)
    cmd = passphrase_command(tmp_path, OLD)
    outer = tmp_path / "new"
    assert cli.main(["init", str(outer / "pgdata"), "--passphrase-command", cmd]) == 1
    assert "No space left on device [storage_error]" in capsys.readouterr().err
    assert not outer.exists()
    # An existing data directory is not init's to remove: only what it created goes.
    existing = tmp_path / "existing"
    existing.mkdir()
    assert cli.main(["init", str(existing), "--passphrase-command", cmd]) == 1
    assert existing.is_dir()
