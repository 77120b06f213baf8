"""Passphrase acquisition (PASS_01..PASS_07) and key derivation (KDF_01)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from pgkms.errors import (
    PassphraseCommandFailed,
    PassphraseCommandTimeout,
    PassphraseTooLong,
    PassphraseTooShort,
)
from pgkms.kdf import derive_kek
from pgkms.passphrase import (
    Purpose,
    acquire_passphrase,
    check_passphrase,
    run_passphrase_command,
    substitute,
)
from pgkms.secret import Secret

from .helpers import passphrase_command

PROMPT = "Enter database encryption pass phrase:"


@pytest.mark.req("PASS_02")
@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("get %p", f"get {PROMPT}"),
        ("get '%p' now", f"get '{PROMPT}' now"),  # the 2020 patch cut the command after %p
        ("100%%", "100%"),
        ("%%p", "%p"),
        ("%%%p", f"%{PROMPT}"),
        ("%x %d %", "%x %d %"),
        ("a%", "a%"),
        ("%p%p", PROMPT + PROMPT),
        ("", ""),
    ],
)
def test_substitution(command: str, expected: str) -> None:
    assert substitute(command) == expected


@pytest.mark.req("PASS_01", "PASS_02")
def test_prompt_reaches_the_command() -> None:
    out = run_passphrase_command("printf '%s' '%p'")
    assert out.head.reveal() == PROMPT.encode()


@pytest.mark.req("PASS_01")
def test_output_is_raw_bytes_newline_included() -> None:
    out = run_passphrase_command("echo secret; printf '\\377\\000x'")
    assert out.head.reveal() == b"secret\n\xff\x00x"
    assert out.total_len == 10


@pytest.mark.req("PASS_03")
@pytest.mark.parametrize(
    ("command", "needle"), [("exit 3", "status 3"), ("kill -9 $$", "signal 9")]
)
def test_failing_command(command: str, needle: str) -> None:
    with pytest.raises(PassphraseCommandFailed, match=needle):
        run_passphrase_command(command)


@pytest.mark.req("PASS_08")
def test_hung_command_times_out() -> None:
    with pytest.raises(PassphraseCommandTimeout, match="did not finish"):
        run_passphrase_command("sleep 5", timeout=0.2)


@pytest.mark.req("PASS_01", "SEC_DIAGNOSTICS")
def test_stderr_is_not_echoed(capfd: pytest.CaptureFixture[str]) -> None:
    run_passphrase_command("echo leaked-on-stderr >&2; printf x")
    assert "leaked-on-stderr" not in capfd.readouterr().err


@pytest.mark.req("PASS_04", "PASS_07")
@pytest.mark.parametrize("purpose", list(Purpose))
def test_too_short_for_every_purpose(purpose: Purpose) -> None:
    with pytest.raises(PassphraseTooShort, match="expected at least 64 bytes, found 63"):
        check_passphrase(b"p" * 63, purpose)
    assert check_passphrase(b"p" * 64, purpose).reveal() == b"p" * 64


@pytest.mark.req("PASS_05")
@pytest.mark.parametrize("purpose", [Purpose.BOOTSTRAP, Purpose.ROTATION])
def test_too_long_rejected_when_writing(purpose: Purpose) -> None:
    assert len(check_passphrase(b"q" * 1024, purpose)) == 1024
    with pytest.raises(PassphraseTooLong, match="found 1025"):
        check_passphrase(b"q" * 1025, purpose)


@pytest.mark.req("PASS_06")
def test_too_long_cut_at_startup() -> None:
    long = bytes(range(256)) * 8  # 2048 bytes
    assert check_passphrase(long, Purpose.STARTUP).reveal() == long[:1024]


@pytest.mark.req("PASS_06", "PASS_11")
def test_long_output_is_drained_not_killed(tmp_path: Path) -> None:
    """A command printing 1 MiB must not die of SIGPIPE; startup keeps its first 1024 bytes."""
    data = bytes(range(256)) * 4096
    cmd = passphrase_command(tmp_path, data)
    assert acquire_passphrase(cmd, Purpose.STARTUP).reveal() == data[:1024]
    with pytest.raises(PassphraseTooLong, match=f"found {len(data)}"):
        acquire_passphrase(cmd, Purpose.BOOTSTRAP)


@pytest.mark.req("PASS_04")
def test_command_printing_too_little(tmp_path: Path) -> None:
    with pytest.raises(PassphraseTooShort, match="found 5"):
        acquire_passphrase("printf hello", Purpose.BOOTSTRAP)


@pytest.mark.req("KDF_01")
@pytest.mark.parametrize("passphrase", [b"x" * 64, b"secret\n" * 20, bytes(range(256)) * 4])
def test_kek_is_sha512_split(passphrase: bytes) -> None:
    digest = hashlib.sha512(passphrase).digest()
    kek = derive_kek(Secret(passphrase))
    assert kek.enc.reveal() == digest[:32]
    assert kek.mac.reveal() == digest[32:]


@pytest.mark.req("KDF_01")
def test_trailing_newline_changes_the_kek() -> None:
    assert derive_kek(Secret(b"a" * 64)) != derive_kek(Secret(b"a" * 64 + b"\n"))
