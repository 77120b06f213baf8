"""Live progress: one updating line on a terminal, a line every few seconds otherwise (CI logs).

Progress shows counts only (stage, requests sent, failures so far), never a value. Counts are
per stage. In a log, a stage announces itself when it begins, reports its running count every
few seconds, and ends with a ``done`` line carrying its final count.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

_PERIOD_TTY = 0.1
_PERIOD_LOG = 5.0


class Progress:
    def __init__(self, stream: TextIO | None = None, enabled: bool = True) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.tty = enabled and self.stream.isatty()
        self.stage = ""
        self.requests = 0  # in the current stage
        self.failures = 0
        self._last = 0.0
        self._width = 0

    def begin(self, stage: str) -> None:
        self._final()
        self.stage = stage
        self.requests = self.failures = 0
        if self.enabled and not self.tty:
            self.stream.write(f"[{stage}] started\n")
            self.stream.flush()
            self._last = time.monotonic()
        else:
            self._show(force=True)

    def tick(self, n: int = 1) -> None:
        self.requests += n
        self._show()

    def failed(self) -> None:
        self.failures += 1
        self._show(force=self.tty)

    def _final(self) -> None:
        """In a log, the ending stage's final counts."""
        if self.enabled and not self.tty and self.stage:
            self.stream.write(f"[{self.stage}] done: {self._counts()}\n")
            self.stream.flush()

    def _counts(self) -> str:
        return f"{self.requests} requests, {self.failures} failed"

    def _text(self) -> str:
        return f"[{self.stage}] {self._counts()}" + ("" if self.tty else " so far")

    def done(self) -> None:
        self._final()
        if self.tty and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0

    def _show(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < (_PERIOD_TTY if self.tty else _PERIOD_LOG):
            return
        self._last = now
        text = self._text()
        if self.tty:
            pad = max(0, self._width - len(text))
            self.stream.write("\r" + text + " " * pad)
            self._width = len(text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
