"""The harness side of the adapter protocol: start an IUT, talk to it, survive it.

An implementation under test is a stranger's program. It may crash, hang, print garbage, write
to stdout from a debug statement, ignore EOF, never read its input, answer with a line of a
gigabyte, flood stderr, or leave a daemon behind that called ``setsid()`` and holds its pipes.
``AdapterClient`` turns each of those into a typed ``AdapterFailure`` that carries the tail of
the IUT's stderr, bounds every wait (per request: ``timeout``; on close: ``CLOSE_BOUND_S``),
bounds its memory (``pipes.MAX_RESPONSE_LINE``, ``pipes.STDERR_TAIL_BYTES``), and on close kills
the IUT's whole process family (``processes``), so a run never hangs and never leaves processes
behind (ADP_01).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import time
from collections import deque
from collections.abc import Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from pgkms_conformance.protocol.pipes import Overlong, Pipes
from pgkms_conformance.protocol.processes import (
    MARKER_VARIABLE,
    Family,
    become_subreaper,
    kill_family,
)

Json = dict[str, Any]

PROTOCOL_VERSION = 1
# close(): how long the IUT may take to exit after ``shutdown`` and EOF, how long the kill of its
# process family may take, and how long its root gets to be reaped after SIGKILL. Their sum
# bounds close() whatever the IUT does.
SHUTDOWN_GRACE_S = 2.0
KILL_DEADLINE_S = 2.0
REAP_WAIT_S = 1.0
CLOSE_BOUND_S = SHUTDOWN_GRACE_S + KILL_DEADLINE_S + REAP_WAIT_S
# call_many(): requests in flight at once. The adapter protocol lets the harness send up to this
# many requests before reading their answers, which come strictly in request order (spec:
# Adapter protocol). Sending them together saves a round trip through both processes each.
DEFAULT_WINDOW = 32


# One encoder for every request: ``json.dumps`` with other than its default options builds a
# new encoder per call, a third of its cost on the harness's thousands of small requests.
_ENCODE = json.JSONEncoder(separators=(",", ":")).encode


def _request_line(request_id: int, op: str, params: Json) -> bytes:
    """One request as the line the IUT reads (ADP_01), newline included."""
    return (_ENCODE({"id": request_id, "op": op, **params}) + "\n").encode()


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
    """One running IUT. Use as a context manager; ``close()`` is idempotent and bounded."""

    def __init__(self, command: Sequence[str], timeout: float = 10.0, cwd: str | None = None):
        self.command = list(command)
        self.timeout = timeout
        self._next_id = 0
        self.requests_sent = 0
        self.survivors: set[int] = set()  # members of the family still alive after close()
        self._closed = False
        become_subreaper()  # orphans of the IUT come to us, not to init (see processes)
        token = secrets.token_hex(16)
        try:
            self._proc = subprocess.Popen(
                self.command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                bufsize=0,
                cwd=cwd,
                env={**os.environ, MARKER_VARIABLE: token},
                start_new_session=True,  # its own session and group, both named by its pid
            )
        except OSError as exc:
            raise AdapterStartFailed(
                f"could not start {self.command[0]!r}: {exc.strerror}"
            ) from None
        stdin, stdout, stderr = self._proc.stdin, self._proc.stdout, self._proc.stderr
        assert stdin is not None
        assert stdout is not None
        assert stderr is not None
        self._pipes = Pipes(stdin, stdout, stderr)
        self._family = Family(self._proc.pid, token, self._pipes.inodes)

    @property
    def pid(self) -> int:
        """The IUT's process id (also its process group's): for the safety stage's RSS reading
        and signals."""
        return self._proc.pid

    @property
    def stderr_tail(self) -> list[str]:
        return self._pipes.err.lines()

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
        """Send one request and wait (at most ``timeout`` seconds in all) for its response."""
        request_id = self._next_id
        self._next_id += 1
        deadline = time.monotonic() + self.timeout
        line = _request_line(request_id, op, params)
        self._send(line, deadline, f"{op!r} (id {request_id})")
        return self._receive(request_id, op, deadline)

    def call_many(
        self, calls: Iterable[tuple[str, Json]], window: int = DEFAULT_WINDOW
    ) -> Generator[Response, None, None]:
        """The responses to ``calls`` (op and parameters each), in order, with up to ``window``
        requests in flight.

        Requests go out in batches: when half the window has been answered, the next half is
        written in one go. Each response must come within ``timeout`` of the later of its
        request's sending and the previous response, so a stalled IUT costs one timeout, as
        with ``call``. A protocol failure is raised at the response it concerns (the ones
        before it were yielded); the session then restarts the IUT. When the caller stops early,
        the answers still owed are read and dropped, so the next request meets its own answer.
        """
        if window < 1:
            raise ValueError(f"window must be at least 1, found {window}")
        pending = iter(calls)
        in_flight: deque[tuple[int, str]] = deque()
        exhausted = False
        try:
            while True:
                if not exhausted and len(in_flight) <= window // 2:
                    exhausted = self._send_batch(pending, in_flight, window - len(in_flight))
                if not in_flight:
                    return
                request_id, op = in_flight[0]
                response = self._receive(request_id, op, time.monotonic() + self.timeout)
                in_flight.popleft()
                yield response
        except GeneratorExit:
            self._drop_owed(in_flight)
            raise

    def _send_batch(
        self, pending: Iterator[tuple[str, Json]], in_flight: deque[tuple[int, str]], room: int
    ) -> bool:
        """Write up to ``room`` requests of ``pending`` at once; True when it is exhausted."""
        lines: list[bytes] = []
        exhausted = False
        while len(lines) < room:
            item = next(pending, None)
            if item is None:
                exhausted = True
                break
            op, params = item
            request_id = self._next_id
            self._next_id += 1
            lines.append(_request_line(request_id, op, params))
            in_flight.append((request_id, op))
        if lines:
            what = f"{in_flight[-1][1]!r} (id {in_flight[-1][0]}, with {len(lines) - 1} before it)"
            self._send(b"".join(lines), time.monotonic() + self.timeout, what, len(lines))
        return exhausted

    def _drop_owed(self, in_flight: deque[tuple[int, str]]) -> None:
        """Read and drop the answers still owed to requests in flight, within one ``timeout``
        in all. A failure here is left for the next request to meet: the answer it reads will
        not carry its id."""
        deadline = time.monotonic() + self.timeout
        with contextlib.suppress(AdapterFailure):
            while in_flight:
                request_id, op = in_flight.popleft()
                self._read_object(f"{op!r} (id {request_id})", deadline)

    def send_raw(self, line: str) -> Json:
        """Send a raw line (for protocol-robustness tests) and return the raw response object."""
        return self.send_raw_bytes((line if line.endswith("\n") else line + "\n").encode())

    def send_raw_bytes(self, data: bytes) -> Json:
        """Send raw bytes (a line, or not even UTF-8) and return the raw response object."""
        deadline = time.monotonic() + self.timeout
        self._send(data, deadline, "raw request")
        return self._read_object("raw request", deadline)

    def _send(self, data: bytes, deadline: float, what: str, requests: int = 1) -> None:
        try:
            sent = self._pipes.write(data, deadline)
        except OSError:
            raise self._crashed("while sending a request") from None
        if not sent:
            raise AdapterTimeout(
                f"the IUT did not read the request {what} within {self.timeout:g} s",
                self.stderr_tail,
            )
        self.requests_sent += requests

    def _read_object(self, what: str, deadline: float | None = None) -> Json:
        if deadline is None:
            deadline = time.monotonic() + self.timeout
        item = self._pipes.next_line(deadline)
        if item is None:
            if self._pipes.out.eof:
                raise self._crashed(f"while waiting for the response to {what}")
            raise AdapterTimeout(
                f"no response to {what} within {self.timeout:g} s", self.stderr_tail
            )
        if isinstance(item, Overlong):
            raise AdapterGarbage(
                f"response to {what} is longer than the harness's limit of {item.limit} bytes"
                " per line",
                self.stderr_tail,
            )
        try:
            obj = json.loads(item.decode("utf-8"))  # the protocol's lines are UTF-8 (ADP_01)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            preview = item[:80].decode("utf-8", "replace").rstrip()
            raise AdapterGarbage(
                f"response to {what} is not JSON: {preview!r}", self.stderr_tail
            ) from None
        if not isinstance(obj, dict):
            raise AdapterGarbage(f"response to {what} is not a JSON object", self.stderr_tail)
        return obj

    def _receive(self, request_id: int, op: str, deadline: float) -> Response:
        obj = self._read_object(f"{op!r} (id {request_id})", deadline)
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
        # A dead IUT's last words are the useful ones; an orphan holding stderr open cannot
        # make us wait longer than this.
        self._pipes.drain_stderr(time.monotonic() + 1.0)
        return AdapterCrashed(f"the IUT {how} {when}", self.stderr_tail)

    # -- shutdown ------------------------------------------------------------------------------
    def close(self) -> None:
        """Ask politely (``shutdown``, then EOF), then kill the whole process family.

        Bounded by ``CLOSE_BOUND_S`` whatever the IUT does: an IUT that ignores both, never reads
        its input, floods its output, or leaves descendants holding its pipes is killed, and
        its descendants with it, including those that called ``setsid()``.
        """
        if self._closed:
            return
        self._closed = True
        proc, pipes = self._proc, self._pipes
        try:
            if proc.poll() is None:
                self._ask_to_exit()
            self.survivors = kill_family(self._family, time.monotonic() + KILL_DEADLINE_S)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=REAP_WAIT_S)
        finally:
            pipes.close()

    def _ask_to_exit(self) -> None:
        """``shutdown``, then end of input; wait at most SHUTDOWN_GRACE_S for the exit."""
        proc, pipes = self._proc, self._pipes
        grace = time.monotonic() + min(self.timeout, SHUTDOWN_GRACE_S)
        shutdown = _request_line(self._next_id, "shutdown", {})
        with contextlib.suppress(OSError):
            pipes.write(shutdown, min(grace, time.monotonic() + 0.5))
        pipes.close_stdin()
        while proc.poll() is None and time.monotonic() < grace:
            # keep reading, so an IUT blocked writing its output can get to its exit
            pipes.discard_output(min(grace, time.monotonic() + 0.05))

    def __enter__(self) -> AdapterClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
