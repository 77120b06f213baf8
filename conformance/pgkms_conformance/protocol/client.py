"""The harness side of the adapter protocol: start an IUT, talk to it, survive it.

An implementation under test is a stranger's program. It may crash, hang, print garbage, write
to stdout from a debug statement, or ignore EOF. ``AdapterClient`` turns each of those into a
typed ``AdapterFailure`` that carries the tail of the IUT's stderr, enforces a per-request
timeout, and always kills the IUT's whole process group on close, so a run never hangs and never
leaves processes behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

Json = dict[str, Any]

PROTOCOL_VERSION = 1
STDERR_TAIL_LINES = 20
_EOF = object()


class AdapterFailure(Exception):
    """The IUT misbehaved at the protocol level; ``kind`` says how."""

    kind = "adapter_failure"

    def __init__(self, message: str, stderr_tail: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.stderr_tail = list(stderr_tail)


class AdapterCrashed(AdapterFailure):
    kind = "crashed"


class AdapterTimeout(AdapterFailure):
    kind = "timeout"


class AdapterGarbage(AdapterFailure):
    """A response line that is not JSON, not an object, or does not answer the request."""

    kind = "garbage"


class AdapterStartFailed(AdapterFailure):
    kind = "start_failed"


@dataclass(frozen=True)
class Response:
    ok: bool
    result: Json = field(default_factory=dict)
    error_code: str | None = None
    error_message: str | None = None


@dataclass(frozen=True)
class Hello:
    protocol: int
    implementation: str
    version: str
    capabilities: frozenset[str]


class AdapterClient:
    """One running IUT. Use as a context manager; ``close()`` is idempotent."""

    def __init__(self, command: Sequence[str], timeout: float = 10.0, cwd: str | None = None):
        self.command = list(command)
        self.timeout = timeout
        self._next_id = 0
        self._stderr: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
        self._lines: queue.Queue[object] = queue.Queue()
        self.requests_sent = 0
        try:
            self._proc = subprocess.Popen(
                self.command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=cwd,
                start_new_session=True,  # its own process group, so close() can kill it all
            )
        except OSError as exc:
            raise AdapterStartFailed(
                f"could not start {self.command[0]!r}: {exc.strerror}"
            ) from None
        threading.Thread(target=self._pump_stdout, daemon=True).start()
        self._stderr_reader = threading.Thread(target=self._pump_stderr, daemon=True)
        self._stderr_reader.start()

    # -- reader threads: the only blocking reads, so the main thread can time out -------------
    def _pump_stdout(self) -> None:
        assert self._proc.stdout is not None
        for raw in self._proc.stdout:
            self._lines.put(raw)
        self._lines.put(_EOF)

    def _pump_stderr(self) -> None:
        assert self._proc.stderr is not None
        for raw in self._proc.stderr:
            self._stderr.append(raw.decode("utf-8", "replace").rstrip("\n"))

    @property
    def pid(self) -> int:
        """The IUT's process id (also its process group's): for the safety stage's RSS reading
        and signals."""
        return self._proc.pid

    @property
    def stderr_tail(self) -> list[str]:
        return list(self._stderr)

    # -- requests ------------------------------------------------------------------------------
    def hello(self) -> Hello:
        response = self.call("hello")
        if not response.ok:
            raise AdapterGarbage(f"hello was refused: {response.error_code}", self.stderr_tail)
        r = response.result
        caps = r.get("capabilities")
        if (
            not isinstance(r.get("protocol"), int)
            or not isinstance(caps, list)
            or not all(isinstance(c, str) for c in caps)
        ):
            raise AdapterGarbage("hello response lacks protocol or capabilities", self.stderr_tail)
        if r["protocol"] != PROTOCOL_VERSION:
            raise AdapterGarbage(
                f"IUT speaks protocol {r['protocol']}, the harness speaks {PROTOCOL_VERSION}",
                self.stderr_tail,
            )
        return Hello(
            protocol=r["protocol"],
            implementation=str(r.get("implementation", "?")),
            version=str(r.get("version", "?")),
            capabilities=frozenset(caps),
        )

    def call(self, op: str, **params: Any) -> Response:
        """Send one request and wait (at most ``timeout`` seconds) for its response."""
        request_id = self._next_id
        self._next_id += 1
        line = json.dumps({"id": request_id, "op": op, **params}, separators=(",", ":"))
        self._send(line + "\n")
        return self._receive(request_id, op)

    def send_raw(self, line: str) -> Json:
        """Send a raw line (for protocol-robustness tests) and return the raw response object."""
        self._send(line if line.endswith("\n") else line + "\n")
        return self._read_object("raw request")

    def _send(self, text: str) -> None:
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(text.encode())
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise self._crashed("while sending a request") from None
        self.requests_sent += 1

    def _read_object(self, what: str) -> Json:
        try:
            item = self._lines.get(timeout=self.timeout)
        except queue.Empty:
            raise AdapterTimeout(
                f"no response to {what} within {self.timeout:g} s", self.stderr_tail
            ) from None
        if item is _EOF:
            raise self._crashed(f"while waiting for the response to {what}")
        assert isinstance(item, bytes)
        try:
            obj = json.loads(item)
        except (json.JSONDecodeError, UnicodeDecodeError):
            preview = item[:80].decode("utf-8", "replace").rstrip()
            raise AdapterGarbage(
                f"response to {what} is not JSON: {preview!r}", self.stderr_tail
            ) from None
        if not isinstance(obj, dict):
            raise AdapterGarbage(f"response to {what} is not a JSON object", self.stderr_tail)
        return obj

    def _receive(self, request_id: int, op: str) -> Response:
        obj = self._read_object(f"{op!r} (id {request_id})")
        if obj.get("id") != request_id:
            raise AdapterGarbage(
                f"response carries id {obj.get('id')!r}, expected {request_id}", self.stderr_tail
            )
        if obj.get("ok") is True and isinstance(obj.get("result"), dict):
            return Response(ok=True, result=obj["result"])
        error = obj.get("error")
        if (
            obj.get("ok") is False
            and isinstance(error, dict)
            and isinstance(error.get("code"), str)
        ):
            return Response(
                ok=False, error_code=error["code"], error_message=str(error.get("message", ""))
            )
        raise AdapterGarbage(
            f"response to {op!r} has neither a result object nor an error code", self.stderr_tail
        )

    def _crashed(self, when: str) -> AdapterCrashed:
        try:
            status = self._proc.wait(timeout=1.0)
            how = f"exited with status {status}" if status >= 0 else f"killed by signal {-status}"
        except subprocess.TimeoutExpired:
            how = "closed its stdout"
        self._stderr_reader.join(timeout=1.0)  # a dead IUT's last words are the useful ones
        return AdapterCrashed(f"the IUT {how} {when}", self.stderr_tail)

    # -- shutdown ------------------------------------------------------------------------------
    def close(self) -> None:
        """Ask politely (EOF), then kill the process group; never blocks for long."""
        proc = self._proc
        if proc.poll() is None:
            try:
                assert proc.stdin is not None
                proc.stdin.close()
            except OSError:
                pass
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=min(self.timeout, 2.0))
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # stragglers the IUT forked, too
        if proc.poll() is None:
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()

    def __enter__(self) -> AdapterClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
