"""The reference adapter, altered for the safety stage's tests: ``python safety_adapter.py MODE``.

limited      claims neither ``concurrency`` nor ``passphrase_timeout`` (their checks must be
             unsupported, never passed)
no_lock      claims ``concurrency`` but takes no lock and ignores postmaster.pid
hang_command claims ``passphrase_timeout`` but runs the command in a session of its own with
             no timeout, and leaves it running when killed (the harness must end it itself)
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

from pgkms import lock
from pgkms.tools import adapter


def limited() -> None:
    hello = adapter.hello

    def without() -> dict[str, Any]:
        answer = hello()
        caps = [c for c in answer["capabilities"] if c not in ("concurrency", "passphrase_timeout")]
        return {**answer, "capabilities": caps}

    adapter.hello = without


def no_lock() -> None:
    @contextlib.contextmanager
    def hold(datadir: str, timeout: float) -> Iterator[None]:
        yield

    lock.hold = hold


def hang_command() -> None:
    handler = adapter.OPERATIONS["run_passphrase_command"]

    def run(request: Any) -> dict[str, Any]:
        done = subprocess.run(  # no timeout, and a session the adapter's group kill misses
            ["/bin/sh", "-c", request.raw["command"]],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            check=False,
        )
        return {"passphrase": done.stdout.hex()}

    adapter.OPERATIONS["run_passphrase_command"] = (handler[0], run)


if __name__ == "__main__":
    {"limited": limited, "no_lock": no_lock, "hang_command": hang_command}[sys.argv[1]]()
    adapter.serve(sys.stdin.buffer, sys.stdout.buffer)
