"""A hostile IUT, to show the harness survives it: ``python hostile_adapter.py MODE [N]``.

It answers like the reference (``pgkms.tools.adapter.handle_line``) and turns hostile according to
MODE, after N requests besides ``hello`` where that applies:
  setsid     at hello, leaves a daemon behind: a child that calls setsid() and forks a
             grandchild that keeps stdin, stdout and stderr open and sleeps; the child exits, so
             the grandchild is an orphan in a session of its own (its pid goes to $FAKE_PIDS)
  hugeline   answers with a response line of 100 MB (written in pieces, never held whole)
  stderrflood  writes stderr without a newline, endlessly, and never answers
  devzero    after each directory operation, points ``pg_cryptokeys/0000`` at /dev/zero
  swapdir    after each directory operation, replaces the data directory by a symbolic link
             to the directory named by $FAKE_CANARY
  noread     after answering hello and N requests, reads nothing more and sleeps
Every process it starts writes its pid to the file named by $FAKE_PIDS, so a test can check
that none survives the run.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from pgkms.tools.adapter import handle_line

DIR_OPS = {"bootstrap", "startup", "rotate", "recover"}


def _record_pid() -> None:
    pid_file = os.environ.get("FAKE_PIDS")
    if pid_file:
        with open(pid_file, "a") as f:
            f.write(f"{os.getpid()}\n")


def _leave_a_daemon() -> None:
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:  # the grandchild: an orphan once its parent exits, pipes held open
            _record_pid()
            time.sleep(600)
        os._exit(0)


def _send(response: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(response) + "\n")
    sys.stdout.flush()


def _huge_line() -> None:
    piece = b"a" * (1 << 20)
    out = sys.stdout.buffer
    for _ in range(100):
        out.write(piece)
    out.write(b"\n")
    out.flush()


def _flood_stderr() -> None:
    piece = b"x" * (1 << 16)
    err = sys.stderr.buffer
    while True:
        err.write(piece)
        err.flush()


def _after(mode: str, raw: dict[str, Any]) -> None:
    """What the directory modes do to the data directory after a directory operation."""
    datadir = raw.get("datadir")
    if raw.get("op") not in DIR_OPS or not isinstance(datadir, str):
        return
    root = Path(datadir)
    if mode == "devzero":
        key = root / "pg_cryptokeys" / "0000"
        if key.parent.is_dir() and not key.is_symlink():
            key.unlink(missing_ok=True)
            key.symlink_to("/dev/zero")
    elif mode == "swapdir" and root.is_dir() and not root.is_symlink():
        shutil.rmtree(root)
        root.symlink_to(os.environ["FAKE_CANARY"], target_is_directory=True)


def main() -> None:
    mode = sys.argv[1]
    budget = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    _record_pid()
    served = 0
    for line in sys.stdin:
        try:
            raw = json.loads(line)
        except json.JSONDecodeError:
            raw = {}
        op = raw.get("op")
        if op == "hello" and mode == "setsid":
            _leave_a_daemon()
        if op != "hello" and served >= budget:
            if mode == "hugeline":
                _huge_line()
                continue
            if mode == "stderrflood":
                _flood_stderr()
        served += op != "hello"
        response, _ = handle_line(line)
        if response.get("ok"):
            _after(mode, raw)
        _send(response)
        if op == "shutdown":
            return
        if mode == "noread" and served >= budget:
            time.sleep(600)  # answered; from now on reads nothing, so its input pipe fills


if __name__ == "__main__":
    main()
