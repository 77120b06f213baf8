"""The IUT's three pipes, read and written without ever blocking and with bounded memory.

There are no reader threads: a thread blocked in ``read`` on a pipe that some orphan of the IUT
keeps open can be neither joined nor safely interrupted. Instead every wait for a pipe goes
through ``select`` with a deadline, in the thread that waits for the answer (a write is tried
at once, and waits only when the pipe is full). Standard output is cut into lines of at most
``MAX_RESPONSE_LINE`` bytes; a longer line is reported the moment it crosses the limit and the
rest of it is discarded as it arrives, never buffered. Standard error is kept as its last
``STDERR_TAIL_BYTES`` bytes, newline or not (ADP_01).
"""

from __future__ import annotations

import contextlib
import os
import select
import time
from collections import deque
from dataclasses import dataclass
from typing import IO, Protocol

# The largest legitimate response is a few hundred KiB (a 64 KiB plaintext wrapped, in hex, in
# the wrap and sql_wrap vectors; 100,000 bytes of passphrase-command output in hex); 16 MiB is
# fifty times that and still cheap to hold and parse.
MAX_RESPONSE_LINE = 16 * 1024 * 1024
STDERR_TAIL_BYTES = 64 * 1024
STDERR_TAIL_LINES = 20
_CHUNK = 64 * 1024


class _Sink(Protocol):
    eof: bool

    def feed(self, data: bytes) -> None: ...


@dataclass(frozen=True)
class Overlong:
    """Stands in the line queue for a response line that crossed ``MAX_RESPONSE_LINE``."""

    limit: int


class LineReader:
    """Assembles stdout into bounded lines; holds at most one chunk of complete lines."""

    def __init__(self, limit: int = MAX_RESPONSE_LINE) -> None:
        self.limit = limit
        self.lines: deque[bytes | Overlong] = deque()
        self.eof = False
        self._partial = bytearray()
        self._discarding = False  # inside an overlong line: drop bytes up to its newline

    def feed(self, data: bytes) -> None:
        if not data:
            self.eof = True
            return
        start = 0
        while start < len(data):
            newline = data.find(b"\n", start)
            end = len(data) if newline < 0 else newline
            if not self._discarding:
                self._partial += data[start:end]
                if len(self._partial) > self.limit:
                    self._partial.clear()
                    self._discarding = True
                    self.lines.append(Overlong(self.limit))
            if newline < 0:
                return
            if self._discarding:
                self._discarding = False
            else:
                self.lines.append(bytes(self._partial))
                self._partial.clear()
            start = newline + 1


class StderrTail:
    """The last ``STDERR_TAIL_BYTES`` bytes of stderr, as lines for a report."""

    def __init__(self, limit: int = STDERR_TAIL_BYTES) -> None:
        self.limit = limit
        self.eof = False
        self.dropped = 0
        self._buf = bytearray()

    def feed(self, data: bytes) -> None:
        if not data:
            self.eof = True
            return
        self._buf += data
        excess = len(self._buf) - self.limit
        if excess > 0:
            del self._buf[:excess]
            self.dropped += excess

    def lines(self) -> list[str]:
        """The tail's last lines. A line cut by the limit is left out whole (a cut line could
        begin in the middle of a secret, which the redactor would then not recognise)."""
        text = self._buf.decode("utf-8", "replace")
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        note: list[str] = []
        if self.dropped:
            lines = lines[1:]
            note = [f"[{self.dropped} earlier bytes of stderr not kept]"]
        return note + lines[-STDERR_TAIL_LINES:]


class Pipes:
    """Non-blocking ends of one IUT's stdin, stdout and stderr (unbuffered ``Popen`` files)."""

    def __init__(self, stdin: IO[bytes], stdout: IO[bytes], stderr: IO[bytes]) -> None:
        self._files = {"stdin": stdin, "stdout": stdout, "stderr": stderr}
        for f in self._files.values():
            os.set_blocking(f.fileno(), False)
        self.out = LineReader()
        self.err = StderrTail()
        self.inodes = frozenset(os.fstat(f.fileno()).st_ino for f in self._files.values())

    def _fd(self, name: str) -> int | None:
        f = self._files.get(name)
        return None if f is None or f.closed else f.fileno()

    def write(self, data: bytes, deadline: float) -> bool:
        """Write all of ``data``, reading the IUT's output meanwhile (an IUT blocked on a full
        stderr pipe stops reading its input); False if the deadline passed first. Raises
        BrokenPipeError when the IUT closed its input."""
        view = memoryview(data)
        writable = True  # try at once: a request usually fits in the pipe, and select costs
        while view:
            stdin = self._fd("stdin")
            if stdin is None:
                raise BrokenPipeError("stdin closed")
            if not writable and not self._wait(deadline, write=True):
                if time.monotonic() >= deadline:
                    return False
                continue
            with contextlib.suppress(BlockingIOError):  # full after all: wait below
                view = view[os.write(stdin, view) :]
            writable = False
        return True

    def next_line(self, deadline: float) -> bytes | Overlong | None:
        """The next stdout line; None at end of file or when the deadline passed (check
        ``out.eof`` to tell them apart)."""
        while not self.out.lines:
            if self.out.eof or time.monotonic() >= deadline:
                return None
            self._wait(deadline)
        return self.out.lines.popleft()

    def drain_stderr(self, deadline: float) -> None:
        """Read stderr until its end of file or the deadline (a dead IUT's last words)."""
        while self._fd("stderr") is not None and not self.err.eof:
            if time.monotonic() >= deadline:
                return
            self._wait(deadline, stdout=False)

    def discard_output(self, deadline: float) -> None:
        """Read whatever the IUT writes until ``deadline`` and forget the stdout lines."""
        self._wait(deadline)
        self.out.lines.clear()

    def _wait(self, deadline: float, write: bool = False, stdout: bool = True) -> bool:
        """Wait until ``deadline`` for any stream to be ready; read one chunk from each readable
        stream. True if stdin is writable."""
        streams: list[tuple[str, _Sink]] = [("stderr", self.err)]
        if stdout:
            streams.append(("stdout", self.out))
        readers = {
            fd: sink
            for name, sink in streams
            if not sink.eof and (fd := self._fd(name)) is not None
        }
        stdin = self._fd("stdin") if write else None
        writers = [stdin] if stdin is not None else []
        timeout = max(0.0, deadline - time.monotonic())
        if not readers and not writers:
            time.sleep(min(timeout, 0.01))
            return False
        try:
            readable, writable, _ = select.select(list(readers), writers, [], timeout)
        except InterruptedError:
            return False
        for fd in readable:
            try:
                data = os.read(fd, _CHUNK)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            readers[fd].feed(data)
        return bool(writable)

    def close_stdin(self) -> None:
        with contextlib.suppress(OSError):
            self._files["stdin"].close()

    def close(self) -> None:
        """Close our ends: whoever still holds the other ends gets EOF or EPIPE; we never wait."""
        for f in self._files.values():
            with contextlib.suppress(OSError):
                f.close()
