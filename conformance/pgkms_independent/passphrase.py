"""The cluster passphrase: running the command (PASS_01..PASS_03) and the length rules.

PASS_01: the passphrase is the command's standard output, byte for byte; a trailing newline is
part of it. The command runs under ``/bin/sh -c`` with stdin from /dev/null and stderr thrown
away (a confused command might print the passphrase there).
"""

from __future__ import annotations

import re
import subprocess
from enum import StrEnum

from pgkms_independent.codec import PASSPHRASE_CEILING, PASSPHRASE_FLOOR, PROMPT
from pgkms_independent.failures import Code, PassphraseFailure
from pgkms_independent.hidden import Hidden


class Purpose(StrEnum):
    BOOTSTRAP = "bootstrap"
    STARTUP = "startup"
    ROTATION = "rotation"


_ESCAPE = re.compile(r"%([p%])")


def expand(command: str) -> str:
    """PASS_02: ``%p`` -> the prompt, ``%%`` -> ``%``, scanning left to right; other ``%x`` and
    a lone trailing ``%`` stay as they are (the 2020 copy cut the command at ``%p``, DEV_PROMPT).
    """
    return _ESCAPE.sub(lambda m: PROMPT if m.group(1) == "p" else "%", command)


def apply_length_rules(output: bytes, total: int, purpose: Purpose) -> Hidden:
    """PASS_04..PASS_07. ``output`` holds at least the first 1025 bytes of ``total``.

    Bootstrap and rotation accept 64..1024 bytes. Startup accepts 64 bytes or more and keeps
    the first 1024, as the 2020 patch read them (read compatibility, PASS_06).
    """
    if total < PASSPHRASE_FLOOR:
        raise PassphraseFailure(
            Code.PASSPHRASE_TOO_SHORT,
            f"passphrase is {total} bytes; at least {PASSPHRASE_FLOOR} are required",
        )
    if total > PASSPHRASE_CEILING and purpose is not Purpose.STARTUP:
        raise PassphraseFailure(
            Code.PASSPHRASE_TOO_LONG,
            f"passphrase is {total} bytes; at most {PASSPHRASE_CEILING} are allowed "
            f"for {purpose.value}",
        )
    return Hidden(output[:PASSPHRASE_CEILING])


def effective(passphrase: bytes, purpose: Purpose) -> Hidden:
    """The length rules applied to passphrase bytes already in hand."""
    return apply_length_rules(passphrase, len(passphrase), purpose)


def run_command(command: str) -> tuple[bytes, int]:
    """PASS_01, PASS_03: run the command; return its first 1025 output bytes and the total size.

    The output is drained to the end (so the writer never dies of SIGPIPE) but only a bounded
    prefix is kept.
    """
    try:
        child = subprocess.Popen(
            ["/bin/sh", "-c", expand(command)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the command
        reason = exc.strerror if isinstance(exc, OSError) else "invalid command string"
        raise PassphraseFailure(
            Code.PASSPHRASE_COMMAND_FAILED, f"passphrase command could not start: {reason}"
        ) from None
    assert child.stdout is not None
    kept = bytearray()
    total = 0
    with child.stdout:
        for chunk in iter(lambda: child.stdout.read(8192), b""):  # type: ignore[union-attr]
            total += len(chunk)
            if len(kept) <= PASSPHRASE_CEILING:
                kept += chunk[: PASSPHRASE_CEILING + 1 - len(kept)]
    status = child.wait()
    if status < 0:
        raise PassphraseFailure(
            Code.PASSPHRASE_COMMAND_FAILED, f"passphrase command was killed by signal {-status}"
        )
    if status > 0:
        raise PassphraseFailure(
            Code.PASSPHRASE_COMMAND_FAILED, f"passphrase command exited with status {status}"
        )
    return bytes(kept), total


def acquire(command: str, purpose: Purpose) -> Hidden:
    """Run the command and apply the rules for ``purpose``: the whole of PASS_01..PASS_07."""
    output, total = run_command(command)
    return apply_length_rules(output, total, purpose)
