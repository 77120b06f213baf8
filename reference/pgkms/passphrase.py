"""Passphrase acquisition: running ``cluster_passphrase_command``, the length rules.

Chapter ``spec/chapters/passphrase.rst``: PASS_01..PASS_11.

The passphrase is the command's raw standard output. Nothing is trimmed: ``echo secret`` yields
``secret\\n``, newline included, exactly as in the 2020 patch (PASS_01).
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum

from pgkms.errors import (
    PassphraseCommandFailed,
    PassphraseCommandTimeout,
    PassphraseTooLong,
    PassphraseTooShort,
)
from pgkms.layout import (
    PASSPHRASE_COMMAND_TIMEOUT,
    PASSPHRASE_MAX_LEN,
    PASSPHRASE_MIN_LEN,
    PASSPHRASE_PROMPT,
)
from pgkms.secret import Secret

_READ_CHUNK = 4096
_EXIT_POLL = 0.01  # seconds between checks for the command's exit, once its output is closed


class Purpose(Enum):
    """Why the passphrase is wanted: the length rules differ (PASS_04..PASS_07)."""

    BOOTSTRAP = "bootstrap"
    STARTUP = "startup"
    ROTATION = "rotation"


def substitute(command: str, prompt: str = PASSPHRASE_PROMPT) -> str:
    """PASS_02: replace ``%p`` by the prompt and ``%%`` by ``%``; keep any other ``%x`` as is.

    This is the behaviour the patch intended. Its copy of ``%p`` dropped the prompt's last
    character and cut the command there (spec deviation DEV_PROMPT).
    """
    out: list[str] = []
    i = 0
    while i < len(command):
        ch = command[i]
        nxt = command[i + 1] if i + 1 < len(command) else ""
        if ch == "%" and nxt == "p":
            out.append(prompt)
            i += 2
        elif ch == "%" and nxt == "%":
            out.append("%")
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


@dataclass(frozen=True, repr=False)
class CommandOutput:
    """What the command printed: its first ``PASSPHRASE_MAX_LEN + 1`` bytes and the full length."""

    head: Secret
    total_len: int

    def __repr__(self) -> str:
        return f"<CommandOutput: {self.total_len} bytes>"


class CommandStart:
    """Holds back a stop that arrives while a passphrase command is being started (PASS_09).

    A stop signal's handler that raises (``KeyboardInterrupt``, the tools' ``Stopped``) while
    ``subprocess.Popen`` waits for the command's exec would leave the command running with
    nobody holding its handle: no clean-up could end its group. Within ``held()``, a handler
    calls ``defer`` instead of raising; the exception is raised when the block ends, once the
    handle is kept, inside the clean-up that ends the group. Signal handlers run in the main
    thread only, so only a start in the main thread holds them back.
    """

    def __init__(self) -> None:
        self._holding = False
        self._deferred: BaseException | None = None

    def defer(self, stop: BaseException) -> bool:
        """For a signal handler: keep ``stop`` for later if a start is under way (True)."""
        if not self._holding:
            return False
        self._deferred = stop
        return True

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        self._holding = threading.current_thread() is threading.main_thread()
        try:
            yield
        finally:
            self._holding = False
            stop, self._deferred = self._deferred, None
            if stop is not None:
                raise stop


COMMAND_START = CommandStart()


def _start(command: str) -> subprocess.Popen[bytes]:
    try:
        return subprocess.Popen(
            ["/bin/sh", "-c", substitute(command)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            process_group=0,  # PASS_08: a group of its own, to kill everything it starts
        )
    except OSError as exc:
        raise PassphraseCommandFailed(
            f"could not start passphrase command: {exc.strerror}"
        ) from None
    except ValueError:  # a NUL byte or an unencodable character in the command string
        raise PassphraseCommandFailed(
            "could not start passphrase command: invalid command string"
        ) from None


def run_passphrase_command(
    command: str, timeout: float = PASSPHRASE_COMMAND_TIMEOUT
) -> CommandOutput:
    """PASS_01, PASS_03, PASS_08, PASS_09: run ``command`` (after substitution) with
    ``/bin/sh -c``, in a process group of its own, standard input ``/dev/null``.

    The whole output is consumed, so a long writer is never killed by SIGPIPE, but only its
    first ``PASSPHRASE_MAX_LEN + 1`` bytes are kept: enough to tell "too long" apart, and the
    memory used is bounded whatever the command prints. Its standard error is discarded, never
    echoed, because a misbehaving command could print the passphrase there.

    The command has finished when its standard output is closed *and* it has exited: a daemon
    it left holding the pipe keeps it running. Past ``timeout`` seconds the whole group is
    killed (``passphrase_command_timeout``). Whatever way this function is left (a result, an
    error, ``KeyboardInterrupt``, the CLI's SIGTERM exception), the group is killed and the
    command reaped first, so nothing it started outlives the request.
    """
    proc: subprocess.Popen[bytes] | None = None
    try:
        with COMMAND_START.held():
            proc = _start(command)
        deadline = time.monotonic() + timeout
        head, total = _read_to_eof(proc, deadline, timeout)
        _wait_for_exit(proc, deadline, timeout)
    finally:
        if proc is not None:
            _end_group(proc)
    status = proc.returncode
    if status != 0:
        how = f"was killed by signal {-status}" if status < 0 else f"exited with status {status}"
        raise PassphraseCommandFailed(f"passphrase command {how}")
    return CommandOutput(head=Secret(bytes(head)), total_len=total)


def _timed_out(timeout: float) -> PassphraseCommandTimeout:
    return PassphraseCommandTimeout(
        f"passphrase command did not finish within {timeout:g} s; its process group was killed"
    )


def _read_to_eof(
    proc: subprocess.Popen[bytes], deadline: float, timeout: float
) -> tuple[bytearray, int]:
    """Read the command's standard output until every writer has closed it, or the deadline."""
    assert proc.stdout is not None
    head = bytearray()
    total = 0
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(left):
                raise _timed_out(timeout)
            chunk = os.read(proc.stdout.fileno(), _READ_CHUNK)
            if not chunk:
                return head, total
            total += len(chunk)
            room = PASSPHRASE_MAX_LEN + 1 - len(head)
            if room > 0:
                head += chunk[:room]


def _wait_for_exit(proc: subprocess.Popen[bytes], deadline: float, timeout: float) -> None:
    """Wait for the command to exit, without reaping it: while it is a zombie its PID (the
    group's id) cannot be reused, so ``_end_group`` cannot signal a stranger's group."""
    while True:
        if os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
            return
        left = deadline - time.monotonic()
        if left <= 0:
            raise _timed_out(timeout)
        time.sleep(min(_EXIT_POLL, left))


def _end_group(proc: subprocess.Popen[bytes]) -> None:
    """PASS_09: kill the whole group, reap the command and close the pipe, signals held off
    meanwhile so that a SIGTERM or Ctrl-C arriving now cannot cut the clean-up short."""
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


def check_length(output: CommandOutput, purpose: Purpose) -> Secret:
    """PASS_04..PASS_07: apply the length rules for ``purpose`` and return the passphrase.

    Bootstrap and rotation reject over-long output (the patch silently cut it to 1024 bytes,
    spec deviation DEV_TRUNCATE); startup keeps cutting, because keys the patch wrapped under a
    cut passphrase must still open (read compatibility). Every purpose rejects fewer than 64
    bytes: the patch never wrote keys under such a passphrase, so refusing costs nothing and
    names the problem instead of reporting a wrong passphrase.
    """
    if output.total_len < PASSPHRASE_MIN_LEN:
        raise PassphraseTooShort(
            f"passphrase: expected at least {PASSPHRASE_MIN_LEN} bytes, found {output.total_len}"
        )
    if output.total_len > PASSPHRASE_MAX_LEN:
        if purpose is not Purpose.STARTUP:
            raise PassphraseTooLong(
                f"passphrase: expected at most {PASSPHRASE_MAX_LEN} bytes, found {output.total_len}"
            )
        return Secret(output.head.reveal()[:PASSPHRASE_MAX_LEN])
    return output.head


def check_passphrase(passphrase: bytes, purpose: Purpose) -> Secret:
    """The length rules applied to passphrase bytes obtained some other way (API, adapter)."""
    head = passphrase[: PASSPHRASE_MAX_LEN + 1]
    return check_length(CommandOutput(Secret(head), len(passphrase)), purpose)


def acquire_passphrase(
    command: str, purpose: Purpose, timeout: float = PASSPHRASE_COMMAND_TIMEOUT
) -> Secret:
    """Run the command and apply the length rules: the whole of passphrase acquisition."""
    return check_length(run_passphrase_command(command, timeout), purpose)
