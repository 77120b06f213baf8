"""The cluster passphrase: running the command (PASS_01..PASS_03, PASS_08, PASS_09) and the
length rules.

PASS_01: the passphrase is the command's standard output, byte for byte; a trailing newline is
part of it. The command runs under ``/bin/sh -c`` with stdin from /dev/null and stderr thrown
away (a confused command might print the passphrase there).

PASS_08, PASS_09: the command runs in a process group of its own, bounded by a timeout; the
run is over only once standard output reached its end *and* the command exited (a daemon that
keeps the pipe open has not finished). However the run ends (success, failure, timeout, an
exception, the caller's SIGTERM), the whole group is killed before the command is reaped: the
group's id cannot be reused while its leader is an unreaped zombie, so the kill never reaches
an unrelated process.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from enum import StrEnum
from typing import Final

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


DEFAULT_TIMEOUT: Final = 60.0  # seconds (PASS_08: pg_ctl's own default wait)
_POLL_INTERVAL: Final = 0.02  # how often an exit is looked for once the output has ended
_CHUNK: Final = 65536

# The process groups of commands running now, each while its leader is not yet reaped; the
# adapter's SIGTERM handler kills these before it exits (PASS_09).
running_groups: set[int] = set()


def kill_group(pgid: int) -> None:
    """PASS_08, PASS_09: SIGKILL to every process of the command's group."""
    with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is gone
        os.killpg(pgid, signal.SIGKILL)


def kill_running_groups() -> None:
    """For a signal handler: end every command this process runs (PASS_09)."""
    for pgid in list(running_groups):
        kill_group(pgid)


# PASS_09: a command between its fork and its entry in ``running_groups`` is known to nobody;
# a stop handled in that gap would leave it running. The adapter's handler asks
# ``stop_or_postpone`` instead of stopping at once: during a spawn its stop is kept here and
# carried out right after the group is registered, when ``kill_running_groups`` reaches it.
class _Spawn:
    def __init__(self) -> None:
        self.under_way = False
        self.postponed: list[Callable[[], None]] = []

    def begin(self) -> None:
        self.under_way = threading.current_thread() is threading.main_thread()  # handlers' thread

    def end(self) -> None:
        self.under_way = False
        while self.postponed:
            self.postponed.pop(0)()


_SPAWN = _Spawn()


def stop_or_postpone(stop: Callable[[], None]) -> None:
    if _SPAWN.under_way:
        _SPAWN.postponed.append(stop)
    else:
        stop()


def _exited(pid: int) -> bool:
    """Whether ``pid`` has exited, without reaping it (so its group id stays reserved)."""
    try:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return info is not None


def _timed_out(timeout: float) -> PassphraseFailure:
    return PassphraseFailure(
        Code.PASSPHRASE_COMMAND_TIMEOUT,
        f"passphrase command did not finish within {timeout:g} s (it must exit and close its "
        "standard output); its process group was killed",
    )


def _collect(child: subprocess.Popen[bytes], timeout: float) -> tuple[bytes, int]:
    """Read the output to its end and wait for the exit, both before the deadline; keep the
    first 1025 bytes and count the rest (PASS_06)."""
    assert child.stdout is not None
    fd = child.stdout.fileno()
    deadline = time.monotonic() + timeout
    kept = bytearray()
    total = 0
    open_output = True
    poller = select.poll()  # not select(): a descriptor may be numbered beyond 1023
    poller.register(fd, select.POLLIN)
    while True:
        left = deadline - time.monotonic()
        if not open_output and _exited(child.pid):
            return bytes(kept), total
        if left <= 0:
            raise _timed_out(timeout)
        if not open_output:
            time.sleep(min(_POLL_INTERVAL, left))
            continue
        if not poller.poll(max(1, math.ceil(left * 1000))):
            continue
        chunk = os.read(fd, _CHUNK)
        if not chunk:
            open_output = False
            continue
        total += len(chunk)
        if len(kept) <= PASSPHRASE_CEILING:
            kept += chunk[: PASSPHRASE_CEILING + 1 - len(kept)]


def run_command(command: str, timeout: float = DEFAULT_TIMEOUT) -> tuple[bytes, int]:
    """PASS_01, PASS_03, PASS_08, PASS_09: run the command; return its first 1025 output bytes
    and the total size.

    The output is drained to the end (so the writer never dies of SIGPIPE) but only a bounded
    prefix is kept.
    """
    _SPAWN.begin()
    try:
        child = subprocess.Popen(
            ["/bin/sh", "-c", expand(command)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            process_group=0,  # PASS_08: a group of its own, killed as a whole
        )
        running_groups.add(child.pid)
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the command
        reason = exc.strerror if isinstance(exc, OSError) else "invalid command string"
        raise PassphraseFailure(
            Code.PASSPHRASE_COMMAND_FAILED, f"passphrase command could not start: {reason}"
        ) from None
    finally:
        _SPAWN.end()  # a stop that waited for the registration happens here
    try:
        output, total = _collect(child, timeout)
    finally:
        kill_group(child.pid)  # every exit path, success included (PASS_09)
        running_groups.discard(child.pid)
        assert child.stdout is not None
        child.stdout.close()
        status = child.wait()  # reaped only now that its group is dead
    if status < 0:
        raise PassphraseFailure(
            Code.PASSPHRASE_COMMAND_FAILED, f"passphrase command was killed by signal {-status}"
        )
    if status > 0:
        raise PassphraseFailure(
            Code.PASSPHRASE_COMMAND_FAILED, f"passphrase command exited with status {status}"
        )
    return output, total


def acquire(command: str, purpose: Purpose, timeout: float = DEFAULT_TIMEOUT) -> Hidden:
    """Run the command and apply the rules for ``purpose``: the whole of PASS_01..PASS_09."""
    output, total = run_command(command, timeout)
    return apply_length_rules(output, total, purpose)
