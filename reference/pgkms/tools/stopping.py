"""SIGTERM as an exception, so that a stopped process leaves through its clean-up code (PASS_09).

Python turns SIGINT into ``KeyboardInterrupt``; SIGTERM kills the process outright by default,
which would leave a running passphrase command (in a process group of its own, so the signal
never reaches it) behind. ``stop_on_sigterm`` makes SIGTERM raise ``Stopped`` instead: every
``finally`` on the way out runs, the passphrase command's included, which kills its group.
``Stopped`` is not an ``Exception``, so no handler for ordinary failures can swallow it.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from pgkms.passphrase import COMMAND_START


class Stopped(BaseException):
    """The process was asked to stop (SIGTERM)."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by signal {signum}")
        self.signum = signum


def _raise_stopped(signum: int, _frame: FrameType | None) -> None:
    stop = Stopped(signum)
    if not COMMAND_START.defer(stop):  # a command being started: raised once it is held
        raise stop


def _raise_interrupt(_signum: int, _frame: FrameType | None) -> None:
    stop = KeyboardInterrupt()
    if not COMMAND_START.defer(stop):
        raise stop


@contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """Within the block, SIGTERM raises ``Stopped`` and SIGINT ``KeyboardInterrupt`` (in the
    main thread), each held back while a passphrase command is being started
    (``pgkms.passphrase.CommandStart``)."""
    previous = signal.signal(signal.SIGTERM, _raise_stopped)
    # Only Python's own SIGINT handler is replaced: an ignored SIGINT stays ignored.
    replace_int = signal.getsignal(signal.SIGINT) is signal.default_int_handler
    if replace_int:
        signal.signal(signal.SIGINT, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        if replace_int:
            signal.signal(signal.SIGINT, signal.default_int_handler)
