"""Syscall observation (``--trace-syscalls``): what an IUT really asks of the kernel, from strace.

The ``fs_trace`` capability (ADP_05) is the IUT's own account of its filesystem calls. This
module needs no cooperation: it runs the IUT's adapter under ``strace -f`` and turns the system
calls made on a request's data directories into the same trace entries (``mkdir``, ``create``,
``fsync``, ``fsync_dir``, ``rename``, ``unlink``, ``rmdir``), which the durability judgement and
the crash explorer then read exactly as they read ``fs_trace``.

What each system call means for durability (the crash model's rules, spec: Crash model):

* ``openat``/``open``/``creat`` with ``O_CREAT`` on a path under a data directory starts a
  *create*; the ``write``/``pwrite64``/``writev`` calls on it add to its size; the entry is
  emitted at its first ``fsync``/``fdatasync`` or ``close``, whichever comes first (the
  open-then-write rule: a file created by an open and then written is one ``create``).
* ``fsync`` of a descriptor opened on a directory is ``fsync_dir`` (it makes that directory's
  entries durable); on a file it is ``fsync``. ``fdatasync`` of a file is ``fsync`` (Linux
  flushes the size of a file it extended; neither makes the file's directory entry durable).
  ``fdatasync`` of a directory is not a durability point this model knows.
* ``sync_file_range`` makes nothing durable (no metadata, no device cache flush): it is ignored,
  so an IUT that relies on it is judged as one that never synced.
* ``chmod``/``fchmod`` change permissions only: ignored for durability.
* Anything else that changes a file under a data directory (``ftruncate``, a write to a file
  this request did not create, ``mmap`` with ``PROT_WRITE`` and ``MAP_SHARED``,
  ``copy_file_range``, ``sendfile``, ``link``, ``symlink``, ``fdatasync`` of a directory), and
  ``io_uring`` or ``sync``/``syncfs`` anywhere, is *unknown*: the trace carries its name, and
  the durability requirements of that request are "not judged", never passed.

Requests are told apart by the adapter protocol's own rhythm: the harness sends one request on
a traced session and waits for its answer, so a request's system calls are those between the
IUT's read of it from the stdin pipe and its first write to the stdout pipe.
"""

from __future__ import annotations

import os
import posixpath
import re
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from pgkms_conformance import scratch
from pgkms_conformance.harness.fstrace import TraceOp, parse_trace
from pgkms_conformance.harness.oracle import Answer
from pgkms_conformance.harness.redact import Redactor
from pgkms_conformance.ids import LOCK_FILE_NAME
from pgkms_conformance.protocol.client import AdapterClient, Response

TRACED: Final = (
    "open", "openat", "creat", "close", "read", "readv",
    "write", "pwrite64", "writev", "pwritev", "pwritev2",
    "fsync", "fdatasync", "sync_file_range", "syncfs", "sync",
    "rename", "renameat", "renameat2", "unlink", "unlinkat", "rmdir", "mkdir", "mkdirat",
    "ftruncate", "truncate", "mmap", "copy_file_range", "sendfile", "splice",
    "link", "linkat", "symlink", "symlinkat", "io_uring_setup", "io_uring_enter",
)  # fmt: skip
# Never part of a trace: the lock (spec: Concurrency and the environment) is not a key
# directory operation, and the adapter protocol leaves it out of fs_trace too.
UNTRACED_NAMES: Final = frozenset({LOCK_FILE_NAME})
WRITES: Final = frozenset({"write", "pwrite64", "writev", "pwritev", "pwritev2"})
READS: Final = frozenset({"read", "readv"})

_LINE = re.compile(r"^(?P<pid>\d+) +(?P<body>.*)$")
_CALL = re.compile(r"^(?P<name>\w+)\((?P<args>.*)\)\s+= (?P<ret>-?\d+|\?)(?P<rest>.*)$")
_UNFINISHED = re.compile(r"^(?P<name>\w+)\((?P<args>.*) <unfinished \.\.\.>$")
_RESUMED = re.compile(r"^<\.\.\. (?P<name>\w+) resumed>(?P<tail>.*)$")
_FD_PATH = re.compile(r"^-?\d+<(?P<path>.*)>$")
_PIPE = re.compile(r"^(?P<fd>\d+)<pipe:\[(?P<inode>\d+)\]>$")


class TracingUnavailable(Exception):
    """strace is missing or may not trace here; the message is the reason, for the report."""


def probe() -> str | None:
    """None when syscall tracing works here, else the reason it does not."""
    exe = shutil.which("strace")
    if exe is None:
        return "strace is not installed (Debian package strace)"
    try:
        done = subprocess.run(
            [exe, "-f", "-qq", "-o", os.devnull, "-e", "trace=none", "true"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"strace could not run: {type(exc).__name__}"
    if done.returncode != 0:
        first = (done.stderr.strip().splitlines() or ["no message"])[0]
        return f"ptrace is not permitted here: {first[:200]}"
    return None


def strace_prefix(log: Path) -> list[str]:
    """The words put before the IUT's command: follow forks, show descriptors' paths, no data."""
    exe = shutil.which("strace")
    if exe is None:
        raise TracingUnavailable("strace is not installed (Debian package strace)")
    return [
        exe, "-f", "-qq", "-y", "-s", "0", "--seccomp-bpf",
        "-e", "signal=none", "-e", f"trace={','.join(TRACED)}", "-o", str(log),
    ]  # fmt: skip


# -- parsing strace's lines ----------------------------------------------------------------------


@dataclass(frozen=True)
class Syscall:
    pid: int
    name: str
    args: tuple[str, ...]
    ret: int | None  # None: "?" (the process died inside the call)
    ret_path: str | None  # the path strace shows for a returned descriptor (-y)

    @property
    def ok(self) -> bool:
        return self.ret is not None and self.ret >= 0


def split_args(text: str) -> tuple[str, ...]:
    """Top-level comma-separated arguments, respecting quotes, <...>, [...], {...}."""
    out: list[str] = []
    depth, quoted, escaped, start = 0, False, False, 0
    for i, ch in enumerate(text):
        if quoted:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
        elif ch in "<[{(":
            depth += 1
        elif ch in ">]})":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append(text[start:i].strip())
            start = i + 1
    tail = text[start:].strip()
    if tail:
        out.append(tail)
    return tuple(out)


def parse_lines(lines: Sequence[str]) -> Iterator[Syscall]:
    """Complete calls in the order they returned; an unfinished call is joined to its end."""
    pending: dict[int, tuple[str, str]] = {}
    for line in lines:
        m = _LINE.match(line.rstrip("\n"))
        if m is None:
            continue
        pid, body = int(m["pid"]), m["body"]
        if (u := _UNFINISHED.match(body)) is not None:
            pending[pid] = (u["name"], u["args"])
            continue
        if (r := _RESUMED.match(body)) is not None and pid in pending:
            name, head = pending.pop(pid)
            body = f"{name}({head}{r['tail']}"
        c = _CALL.match(body)
        if c is None:
            continue
        ret_path = None
        if (p := re.match(r"^<(.*)>", c["rest"].strip())) is not None:
            ret_path = p[1]
        ret = None if c["ret"] == "?" else int(c["ret"])
        yield Syscall(pid, c["name"], split_args(c["args"]), ret, ret_path)


def unquote(arg: str) -> str:
    """A path argument as strace prints it (a C string literal, possibly truncated by -s)."""
    if not (arg.startswith('"') and arg.endswith('"')):
        return arg
    body = arg[1:-1]
    return (
        bytes(body, "utf-8")
        .decode("unicode_escape")
        .encode("latin-1")
        .decode("utf-8", "surrogateescape")
    )


def fd_path(arg: str) -> str | None:
    """The path of a descriptor argument shown as ``N<path>`` (AT_FDCWD<path> too)."""
    if arg.startswith("AT_FDCWD<") and arg.endswith(">"):
        return arg[len("AT_FDCWD<") : -1]
    m = _FD_PATH.match(arg)
    return m["path"] if m else None


def resolve(dir_arg: str | None, path_arg: str) -> str:
    path = unquote(path_arg)
    if path.startswith("/") or dir_arg is None:
        return posixpath.normpath(path)
    base = fd_path(dir_arg) or "."
    return posixpath.normpath(posixpath.join(base, path))


# -- from system calls to trace entries -----------------------------------------------------------


@dataclass
class SyscallTrace:
    """One request's trace in the fs_trace vocabulary, and the calls the model does not know."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)  # "ftruncate 0000", "io_uring_enter", ...
    # Files created without O_EXCL (DISK_07 wants key files created exclusively).
    nonexclusive: list[str] = field(default_factory=list)


@dataclass
class _Create:
    mode: int
    exclusive: bool = True
    size: int = 0
    emitted: bool = False


class TraceBuilder:
    """Turns one request's system calls into trace entries relative to its data directories."""

    def __init__(self, datadir: str, old_datadir: str | None = None) -> None:
        self.roots: list[tuple[str, dict[str, str]]] = [(os.path.realpath(datadir), {})]
        if old_datadir is not None:
            self.roots.append((os.path.realpath(old_datadir), {"cluster": "old"}))
        self.trace = SyscallTrace()
        self.creates: dict[str, _Create] = {}
        self.dirs: set[str] = {root for root, _ in self.roots}
        self.handlers = self._handler_table()

    def place(self, path: str) -> tuple[str, dict[str, str]] | None:
        """``path`` relative to the data directory holding it, or None when outside them."""
        for root, extra in self.roots:
            if path == root or path.startswith(root + "/"):
                rel = posixpath.relpath(path, root)
                if posixpath.basename(rel) in UNTRACED_NAMES:
                    return None
                return rel, extra
        return None

    def _emit(self, op: str, path: str, **fields: Any) -> None:
        where = self.place(path)
        if where is not None:
            rel, extra = where
            self.trace.entries.append({"op": op, "path": rel, **fields, **extra})

    def _unknown(self, what: str, path: str | None = None) -> None:
        where = None if path is None else self.place(path)
        if path is not None and where is None:
            return
        label = what if where is None else f"{what} {where[0]}"
        if label not in self.trace.unknown:
            self.trace.unknown.append(label)

    def _flush_create(self, path: str) -> None:
        create = self.creates.get(path)
        if create is not None and not create.emitted:
            create.emitted = True
            self._emit("create", path, mode=create.mode, size=create.size)
            where = self.place(path)
            if not create.exclusive and where is not None:
                self.trace.nonexclusive.append(where[0])

    def feed(self, call: Syscall) -> None:
        if call.name.startswith("io_uring") or call.name in ("sync", "syncfs"):
            self._unknown(call.name)  # whole-filesystem or asynchronous I/O: not modelled
            return
        if not call.ok:
            return  # a failed call changed nothing
        handler = self.handlers.get(call.name)
        if handler is not None:
            handler(call)

    def _handler_table(self) -> dict[str, Any]:
        table: dict[str, Any] = dict.fromkeys(("open", "openat", "creat"), self._open)
        table.update(dict.fromkeys(WRITES, self._write))
        table.update(dict.fromkeys(("fsync", "fdatasync"), self._sync))
        table.update(dict.fromkeys(("mkdir", "mkdirat"), self._mkdir))
        table.update(dict.fromkeys(("rename", "renameat", "renameat2"), self._rename))
        table.update(dict.fromkeys(("unlink", "unlinkat", "rmdir"), self._remove))
        table.update(
            dict.fromkeys(
                ("ftruncate", "truncate", "copy_file_range", "sendfile", "splice", "mmap"),
                self._other_change,
            )
        )
        table.update(dict.fromkeys(("link", "linkat", "symlink", "symlinkat"), self._link))
        table["close"] = self._close
        return table

    def _write(self, call: Syscall) -> None:
        path = fd_path(call.args[0]) if call.args else None
        if path is None or self.place(path) is None:
            return
        create = self.creates.get(path)
        if create is not None and not create.emitted:
            create.size += call.ret or 0
        else:
            self._unknown(f"{call.name} to a file this request did not create:", path)

    def _close(self, call: Syscall) -> None:
        path = fd_path(call.args[0]) if call.args else None
        if path is not None:
            self._flush_create(path)

    def _mkdir(self, call: Syscall) -> None:
        dir_arg, rest = (None, call.args) if call.name == "mkdir" else (call.args[0], call.args[1:])
        path = resolve(dir_arg, rest[0])
        self.dirs.add(path)
        self._emit("mkdir", path, mode=int(rest[1], 8) if len(rest) > 1 else 0o777)

    def _rename(self, call: Syscall) -> None:
        args = call.args
        if call.name == "rename":
            src, dst = resolve(None, args[0]), resolve(None, args[1])
        else:
            src, dst = resolve(args[0], args[1]), resolve(args[2], args[3])
        if src in self.dirs:
            self.dirs.add(dst)
        target = self.place(dst)
        self._emit("rename", src, to=target[0] if target else dst)

    def _remove(self, call: Syscall) -> None:
        args = call.args
        if call.name == "unlinkat":
            op = "rmdir" if "AT_REMOVEDIR" in args[2] else "unlink"
            self._emit(op, resolve(args[0], args[1]))
        else:
            self._emit("rmdir" if call.name == "rmdir" else "unlink", resolve(None, args[0]))

    def _other_change(self, call: Syscall) -> None:
        """Changes the model cannot replay: the request's durability is not judged."""
        args = call.args
        if call.name == "truncate":
            self._unknown(call.name, resolve(None, args[0]))
            return
        label = call.name
        if call.name == "mmap":
            if len(args) < 5 or "PROT_WRITE" not in args[2] or "MAP_SHARED" not in args[3]:
                return  # a private or read-only mapping writes nothing back
            target, label = args[4], "mmap(PROT_WRITE, MAP_SHARED)"
        else:
            target = args[2] if call.name in ("copy_file_range", "splice") else args[0]
        path = fd_path(target)
        if path is not None:
            self._unknown(label, path)

    def _link(self, call: Syscall) -> None:
        args = call.args
        dst = args[-2] if call.name == "linkat" else args[-1]
        dir_arg = args[-3] if call.name in ("linkat", "symlinkat") else None
        self._unknown(call.name, resolve(dir_arg, dst))

    def finish(self) -> SyscallTrace:
        """The trace; a file created and never closed nor synced still counts as created."""
        for path in list(self.creates):
            self._flush_create(path)
        return self.trace

    def _open(self, call: Syscall) -> None:
        path = call.ret_path
        flags = (
            call.args[2] if call.name == "openat" else call.args[1] if len(call.args) > 1 else ""
        )
        if path is None:
            return
        if "O_DIRECTORY" in flags:
            self.dirs.add(path)
        creating = call.name == "creat" or "O_CREAT" in flags
        if creating and self.place(path) is not None and path not in self.creates:
            mode_arg = call.args[-1] if call.name != "creat" else call.args[1]
            exclusive = call.name != "creat" and "O_EXCL" in flags
            self.creates[path] = _Create(mode=int(mode_arg, 8), exclusive=exclusive)

    def _sync(self, call: Syscall) -> None:
        name, path = call.name, fd_path(call.args[0]) if call.args else None
        if path is None or self.place(path) is None:
            return
        self._flush_create(path)
        if path in self.dirs:
            if name == "fdatasync":
                self._unknown("fdatasync of a directory:", path)
            else:
                self._emit("fsync_dir", path)
        else:
            self._emit("fsync", path)


# -- reading a live log request by request ---------------------------------------------------------


class SyscallLog:
    """strace's log of one adapter process, consumed one request at a time.

    The adapter's stdin and stdout pipes are learnt from its first successful read of
    descriptor 0 and write of descriptor 1 (the hello exchange). After each answer,
    ``next_request`` waits (bounded) until the log shows the answer being written and returns
    the calls made since the request was read.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.stdin_pipe: str | None = None
        self.stdout_pipe: str | None = None

    def _new_lines(self) -> list[str]:
        try:
            with self.path.open("rb") as handle:
                handle.seek(self.offset)
                data = handle.read()
        except FileNotFoundError:
            return []
        end = data.rfind(b"\n") + 1  # only whole lines; the rest is still being written
        return data[:end].decode("utf-8", "replace").splitlines(keepends=True)

    def _pipe(self, call: Syscall) -> str | None:
        m = _PIPE.match(call.args[0]) if call.args else None
        return m["inode"] if m else None

    def next_request(self, timeout: float = 10.0) -> list[Syscall]:
        """The calls of the request just answered: from the last read of stdin up to the
        first write of the answer on stdout. Raises TimeoutError if the log never shows it."""
        deadline = time.monotonic() + timeout
        while True:
            scanned = 0
            calls: list[Syscall] = []
            for line in self._new_lines():
                scanned += len(line.encode("utf-8", "surrogateescape"))
                for call in parse_lines([line]):
                    if self._is_request_read(call):
                        calls = []  # the request arrived: what came before is not its own
                    elif self._is_answer_write(call):
                        self.offset += scanned
                        return calls
                    else:
                        calls.append(call)
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.path.name}: no answer seen in strace's log")
            time.sleep(0.005)

    def _is_request_read(self, call: Syscall) -> bool:
        pipe = self._pipe(call) if call.ok and call.name in READS else None
        if pipe is not None and self.stdin_pipe is None and call.args[0].startswith("0<"):
            self.stdin_pipe = pipe
        return pipe is not None and pipe == self.stdin_pipe

    def _is_answer_write(self, call: Syscall) -> bool:
        pipe = self._pipe(call) if call.ok and call.name in WRITES else None
        if pipe is not None and self.stdout_pipe is None and call.args[0].startswith("1<"):
            self.stdout_pipe = pipe
        return pipe is not None and pipe == self.stdout_pipe

    def skip_request(self, timeout: float = 10.0) -> None:
        """Consume a request whose calls do not matter (hello)."""
        self.next_request(timeout)


def build_trace(
    calls: Sequence[Syscall], datadir: str, old_datadir: str | None = None
) -> SyscallTrace:
    builder = TraceBuilder(datadir, old_datadir)
    for call in calls:
        builder.feed(call)
    return builder.finish()


class TracedAdapter:
    """An IUT adapter run under strace, for the requests whose system calls are judged.

    Use as a context manager. ``call`` sends one request, waits for its answer, and returns it
    with the trace of the system calls it made on ``datadir`` (and ``old_datadir``).
    """

    def __init__(self, command: Sequence[str], workdir: Path, timeout: float = 10.0) -> None:
        self.log = SyscallLog(workdir / "strace.log")
        self.timeout = timeout
        self.client = AdapterClient([*strace_prefix(self.log.path), *command], timeout=timeout)
        self.hello = self.client.hello()
        self.log.skip_request(timeout)

    def __enter__(self) -> TracedAdapter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.client.close()

    def call(
        self, op: str, datadir: str, old_datadir: str | None = None, **params: Any
    ) -> tuple[Response, SyscallTrace]:
        if old_datadir is None:
            response = self.client.call(op, datadir=datadir, **params)
        else:
            response = self.client.call(op, old_datadir=old_datadir, new_datadir=datadir, **params)
        calls = self.log.next_request(self.timeout)
        return response, build_trace(calls, datadir, old_datadir)


class NotJudged(Exception):
    """A request made system calls the crash model cannot replay; the message names them."""


class NotExclusive(Exception):
    """DISK_07: a request created a file without O_EXCL; the message names the files."""


class SyscallSource:
    """Where the durability stage takes its traces from under ``--trace-syscalls``: a second
    adapter process of the IUT, run under strace, for the requests that touch the disk.

    ``ask`` answers like the stage's own ``fs_trace`` path (an Answer and its trace ops), so the
    points, the crash exploration and the upgrade check judge a syscall trace exactly as a
    self-reported one. Its secrets go through the run's redactor like every other request's.
    """

    def __init__(self, command: Sequence[str], timeout: float, redactor: Redactor) -> None:
        self.command = list(command)
        self.timeout = timeout
        self.redactor = redactor
        self.workdir = scratch.mkdtemp(prefix="pgkms-strace-")
        self.adapter: TracedAdapter | None = None
        self.requests = 0

    def _adapter(self) -> TracedAdapter:
        if self.adapter is None:
            self.adapter = TracedAdapter(self.command, self.workdir, self.timeout)
        return self.adapter

    def ask(self, op: str, params: dict[str, Any]) -> tuple[Answer, list[TraceOp]]:
        self.redactor.add_json(params)
        fields = {k: v for k, v in params.items() if k not in ("datadir", "new_datadir")}
        datadir = str(params.get("new_datadir", params.get("datadir")))
        old = fields.pop("old_datadir", None)
        response, trace = self._adapter().call(op, datadir, old, **fields)
        self.requests += 1
        answer = Answer.from_response(response)
        self.redactor.add_json(answer.result)
        if not answer.ok:
            return answer, []
        if trace.unknown:
            raise NotJudged(f"{op}: not judged: {', '.join(trace.unknown)}")
        if trace.nonexclusive:
            raise NotExclusive(
                f"{op} created {', '.join(trace.nonexclusive)} without O_EXCL: an existing file "
                "would have been overwritten instead of refused"
            )
        return answer, parse_trace(trace.entries)

    def close(self) -> None:
        if self.adapter is not None:
            self.adapter.close()
            self.adapter = None
        shutil.rmtree(self.workdir, ignore_errors=True)
