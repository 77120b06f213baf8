"""Passphrase acquisition in the independent implementation (PASS_01..PASS_07)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from pgkms_independent.failures import Code, PassphraseFailure
from pgkms_independent.passphrase import Purpose, acquire, expand


@pytest.mark.req("PASS_02")
@pytest.mark.parametrize(
    ("command", "expanded"),
    [
        ("%p", "Enter database encryption pass phrase:"),
        ("echo '%p' done", "echo 'Enter database encryption pass phrase:' done"),
        ("%%p", "%p"),
        ("%%%p", "%Enter database encryption pass phrase:"),
        ("100%", "100%"),
        ("%x %s", "%x %s"),
    ],
)
def test_substitution(command: str, expanded: str) -> None:
    assert expand(command) == expanded


@pytest.mark.req("PASS_01")
def test_output_is_taken_raw(tmp_path: Path) -> None:
    passphrase = b" \x00\xff" * 30 + b"\n"
    (tmp_path / "p").write_bytes(passphrase)
    command = f"cat {shlex.quote(str(tmp_path / 'p'))}; echo on-stderr >&2"
    assert acquire(command, Purpose.BOOTSTRAP).expose() == passphrase


@pytest.mark.req("PASS_03", "PASS_06", "PASS_11")
def test_failures_and_startup_cut() -> None:
    for command in ("exit 1", "kill -9 $$", "/nonexistent/command"):
        with pytest.raises(PassphraseFailure) as caught:
            acquire(command, Purpose.STARTUP)
        assert caught.value.code is Code.PASSPHRASE_COMMAND_FAILED
    assert acquire("head -c 100000 /dev/zero", Purpose.STARTUP).expose() == bytes(1024)
    with pytest.raises(PassphraseFailure) as caught:
        acquire("head -c 1025 /dev/zero", Purpose.ROTATION)
    assert caught.value.code is Code.PASSPHRASE_TOO_LONG
