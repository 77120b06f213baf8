"""The reference implementation behind adapter protocol version 1: ``python -m pgkms.adapter``.

One JSON request per line on stdin, one JSON response per line on stdout (spec: Adapter
protocol, ADP_01..ADP_04). Every failure is answered with the stable error code of the spec;
nothing here may crash on bad input, and no secret goes into a message.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

from pgkms import __version__
from pgkms.bootstrap import bootstrap
from pgkms.errors import KmsError
from pgkms.fs import FileSystem, OsFileSystem
from pgkms.internal_keys import InternalKeys
from pgkms.kdf import WrapKeys, derive_kek
from pgkms.layout import (
    ENC_KEY_LEN,
    INTERNAL_KEY_LEN,
    IV_LEN,
    LOCK_TIMEOUT,
    MAC_KEY_LEN,
    PASSPHRASE_COMMAND_TIMEOUT,
    KeyId,
)
from pgkms.passphrase import Purpose, check_length, check_passphrase, run_passphrase_command
from pgkms.passphrase import substitute as substitute_command
from pgkms.randomness import RandomSource, ScriptedRandom, system_random
from pgkms.record import KeyRecord, decode_record, encode_record
from pgkms.recovery import recover_locked
from pgkms.rotation import rotate
from pgkms.secret import Secret
from pgkms.sqlwrap import pg_unwrap, pg_wrap
from pgkms.startup import startup
from pgkms.tools.fstrace import TracingFileSystem
from pgkms.tools.hexcodec import parse_lower_hex
from pgkms.tools.stopping import Stopped, stop_on_sigterm
from pgkms.upgrade import copy_keys_for_upgrade
from pgkms.wrap import unwrap, wrap

PROTOCOL_VERSION = 1
Json = dict[str, Any]


class MalformedRequest(KmsError):
    code = "malformed_request"


class UnsupportedOperation(KmsError):
    code = "unsupported_operation"


class Request:
    """Typed access to a request's fields; every accessor names the field it rejects."""

    def __init__(self, raw: Json, fs: FileSystem | None = None) -> None:
        self.raw = raw
        self.fs = fs  # the filesystem of directory ops; None: the real one (OsFileSystem)

    def _get(self, name: str, kind: type, optional: bool = False) -> Any:
        if name not in self.raw or (optional and self.raw[name] is None):
            if optional:
                return None
            raise MalformedRequest(f"field {name!r} is missing")
        value = self.raw[name]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise MalformedRequest(f"field {name!r}: expected {kind.__name__}")
        return value

    def hex(self, name: str) -> bytes:
        return _unhex(self._get(name, str), name)

    def opt_hex(self, name: str, size: int | None = None) -> bytes | None:
        value = self._get(name, str, optional=True)
        data = None if value is None else _unhex(value, name)
        if data is not None and size is not None and len(data) != size:
            raise MalformedRequest(f"field {name!r}: expected {size} bytes, found {len(data)}")
        return data

    def hex_list(
        self, name: str, count: int, size: int, optional: bool = False
    ) -> list[bytes] | None:
        value = self._get(name, list, optional=optional)
        if value is None:
            return None
        if len(value) != count or not all(isinstance(v, str) for v in value):
            raise MalformedRequest(f"field {name!r}: expected a list of {count} hex strings")
        items = [_unhex(v, f"{name}[{i}]") for i, v in enumerate(value)]
        if any(len(item) != size for item in items):
            raise MalformedRequest(f"field {name!r}: expected {size} bytes in each item")
        return items

    def text(self, name: str) -> str:
        return str(self._get(name, str))

    def flag(self, name: str) -> bool:
        value = self._get(name, bool, optional=True)
        return bool(value)

    def seconds(self, name: str, default: float, zero_allowed: bool) -> float:
        """ADP_06: an optional, finite number of seconds (``>= 0`` or ``> 0``); null: default."""
        value = self.raw.get(name)
        if value is None:
            return default
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok and math.isfinite(value) and (value >= 0 if zero_allowed else value > 0):
            return float(value)
        bound = ">= 0" if zero_allowed else "> 0"
        raise MalformedRequest(f"field {name!r}: expected a number of seconds {bound}, or null")

    def lock_timeout(self) -> float:
        return self.seconds("lock_timeout", LOCK_TIMEOUT, zero_allowed=True)

    def integer(self, name: str, optional: bool = False) -> int | None:
        value = self._get(name, int, optional=optional)
        return None if value is None else int(value)

    def purpose(self) -> Purpose:
        value = self.text("purpose")
        try:
            return Purpose(value)
        except ValueError:
            raise MalformedRequest(
                "field 'purpose': expected bootstrap, startup or rotation"
            ) from None


def _unhex(value: str, name: str) -> bytes:
    """ADP_02: lowercase hex, an even number of digits, nothing else (no spaces, no prefix)."""
    data = parse_lower_hex(value)
    if data is None:
        raise MalformedRequest(f"field {name!r}: expected lowercase hex with an even length")
    return data


def _wrap_keys(req: Request) -> WrapKeys:
    enc, mac = req.hex("enc_key"), req.hex("mac_key")
    if len(enc) != ENC_KEY_LEN or len(mac) != MAC_KEY_LEN:
        raise MalformedRequest(
            f"fields 'enc_key', 'mac_key': expected {ENC_KEY_LEN} and {MAC_KEY_LEN} bytes"
        )
    return WrapKeys(enc=Secret(enc), mac=Secret(mac))


def _sql_keys(req: Request) -> InternalKeys:
    key = req.hex("sql_key")
    if len(key) != INTERNAL_KEY_LEN:
        raise MalformedRequest(f"field 'sql_key': expected {INTERNAL_KEY_LEN} bytes")
    unused = Secret(b"")
    return InternalKeys(sql=Secret(key), block=unused, wal=unused)


def _random(*groups: tuple[list[bytes] | None, int]) -> RandomSource:
    """Injected randomness for each group of draws the request carries, the OS CSPRNG for the
    groups it leaves out (e.g. ``keys`` given, ``ivs`` not: the IVs come from the CSPRNG)."""
    if all(given is None for given, _ in groups):
        return system_random
    plan: list[bytes | None] = []
    for given, count in groups:
        plan.extend(given if given is not None else [None] * count)
    draws = iter(plan)

    def source(size: int) -> bytes:
        planned = next(draws, None)
        return system_random(size) if planned is None else ScriptedRandom([planned])(size)

    return source


def op_derive_kek(req: Request) -> Json:
    kek = derive_kek(Secret(req.hex("passphrase")))
    return {"enc_key": kek.enc.reveal().hex(), "mac_key": kek.mac.reveal().hex()}


def op_wrap(req: Request) -> Json:
    keys, plaintext = _wrap_keys(req), Secret(req.hex("plaintext"))
    iv = req.opt_hex("iv", IV_LEN)
    return {"wrapped": wrap(keys, plaintext, _random((None if iv is None else [iv], 1))).hex()}


def op_unwrap(req: Request) -> Json:
    return {"plaintext": unwrap(_wrap_keys(req), req.hex("wrapped")).view().hex()}


def op_encode_record(req: Request) -> Json:
    key_id = req.integer("key_id")
    assert key_id is not None
    wrapped_key = req.hex("wrapped_key")
    if not 0 <= key_id < 2**32:
        raise MalformedRequest("field 'key_id': expected an unsigned 32-bit integer")
    try:
        record = encode_record(KeyRecord(key_id, wrapped_key))
    except ValueError as exc:
        raise MalformedRequest(f"field 'wrapped_key': {exc}") from None
    return {"record": record.hex()}


def op_decode_record(req: Request) -> Json:
    record = decode_record(req.hex("record"), req.integer("file_id", optional=True), "record")
    return {"key_id": record.key_id, "wrapped_key": record.wrapped_key.hex()}


def op_substitute(req: Request) -> Json:
    return {"command": substitute_command(req.text("command"))}


def op_run_passphrase_command(req: Request) -> Json:
    command, purpose = req.text("command"), req.purpose()
    timeout = req.seconds("timeout", PASSPHRASE_COMMAND_TIMEOUT, zero_allowed=False)
    output = run_passphrase_command(command, timeout)
    return {"passphrase": check_length(output, purpose).reveal().hex()}


def op_check_passphrase(req: Request) -> Json:
    passphrase, purpose = req.hex("passphrase"), req.purpose()
    return {"passphrase": check_passphrase(passphrase, purpose).reveal().hex()}


class _Disk:
    """The filesystem of one request: ``OsFileSystem``, traced when the request asks for it
    (``trace_fs``, ADP_05); ``result`` adds the trace to the operation's result."""

    def __init__(self, req: Request, datadir: str, old_datadir: str | None = None) -> None:
        base = req.fs or OsFileSystem()
        self.tracer = (
            TracingFileSystem(base, datadir, old_datadir) if req.flag("trace_fs") else None
        )
        self.fs: FileSystem = self.tracer or base

    def result(self, result: Json) -> Json:
        return result if self.tracer is None else {**result, "fs_trace": self.tracer.trace}


def op_bootstrap(req: Request) -> Json:
    datadir, passphrase = req.text("datadir"), Secret(req.hex("passphrase"))
    keys = req.hex_list("keys", len(KeyId), INTERNAL_KEY_LEN, optional=True)
    ivs = req.hex_list("ivs", len(KeyId), IV_LEN, optional=True)
    random = _random((keys, len(KeyId)), (ivs, len(KeyId)))
    disk = _Disk(req, datadir)
    bootstrap(datadir, passphrase, disk.fs, random=random, lock_timeout=req.lock_timeout())
    return disk.result({})


def op_startup(req: Request) -> Json:
    datadir = req.text("datadir")
    passphrase = Secret(req.hex("passphrase"))
    disk = _Disk(req, datadir)
    keys = startup(datadir, passphrase, disk.fs, lock_timeout=req.lock_timeout())
    return disk.result({"keys": [k.reveal().hex() for k in keys.by_id().values()]})


def op_rotate(req: Request) -> Json:
    datadir, old, new = req.text("datadir"), req.hex("old_passphrase"), req.hex("new_passphrase")
    random = _random((req.hex_list("ivs", len(KeyId), IV_LEN, optional=True), len(KeyId)))
    disk = _Disk(req, datadir)
    rotate(datadir, Secret(old), Secret(new), disk.fs, random, lock_timeout=req.lock_timeout())
    return disk.result({})


def op_recover(req: Request) -> Json:
    datadir, passphrase = req.text("datadir"), Secret(req.hex("passphrase"))
    disk = _Disk(req, datadir)
    kek = derive_kek(check_passphrase(passphrase.reveal(), Purpose.STARTUP))
    decision = recover_locked(disk.fs, datadir, kek, req.lock_timeout())
    return disk.result({"decision": decision.value})


def op_upgrade_keys(req: Request) -> Json:
    """UPG_01: the old cluster's key records, checked under ``passphrase``, into the new one."""
    old, new = req.text("old_datadir"), req.text("new_datadir")
    passphrase = Secret(req.hex("passphrase"))
    disk = _Disk(req, new, old)
    copy_keys_for_upgrade(old, new, passphrase, disk.fs, lock_timeout=req.lock_timeout())
    return disk.result({})


def op_sql_wrap(req: Request) -> Json:
    keys, plaintext = _sql_keys(req), Secret(req.hex("plaintext"))
    iv = req.opt_hex("iv", IV_LEN)
    return {"wrapped": pg_wrap(keys, plaintext, _random((None if iv is None else [iv], 1))).hex()}


def op_sql_unwrap(req: Request) -> Json:
    return {"plaintext": pg_unwrap(_sql_keys(req), req.hex("wrapped")).view().hex()}


Handler = Callable[[Request], Json]

# op -> (the fields it accepts besides "id" and "op", its handler)
OPERATIONS: dict[str, tuple[frozenset[str], Handler]] = {
    "derive_kek": (frozenset({"passphrase"}), op_derive_kek),
    "wrap": (frozenset({"enc_key", "mac_key", "plaintext", "iv"}), op_wrap),
    "unwrap": (frozenset({"enc_key", "mac_key", "wrapped"}), op_unwrap),
    "encode_record": (frozenset({"key_id", "wrapped_key"}), op_encode_record),
    "decode_record": (frozenset({"record", "file_id"}), op_decode_record),
    "substitute": (frozenset({"command"}), op_substitute),
    "run_passphrase_command": (
        frozenset({"command", "purpose", "timeout"}),
        op_run_passphrase_command,
    ),
    "check_passphrase": (frozenset({"passphrase", "purpose"}), op_check_passphrase),
    "bootstrap": (
        frozenset({"datadir", "passphrase", "keys", "ivs", "trace_fs", "lock_timeout"}),
        op_bootstrap,
    ),
    "startup": (frozenset({"datadir", "passphrase", "trace_fs", "lock_timeout"}), op_startup),
    "rotate": (
        frozenset(
            {"datadir", "old_passphrase", "new_passphrase", "ivs", "trace_fs", "lock_timeout"}
        ),
        op_rotate,
    ),
    "recover": (frozenset({"datadir", "passphrase", "trace_fs", "lock_timeout"}), op_recover),
    "upgrade_keys": (
        frozenset({"old_datadir", "new_datadir", "passphrase", "trace_fs", "lock_timeout"}),
        op_upgrade_keys,
    ),
    "sql_wrap": (frozenset({"sql_key", "plaintext", "iv"}), op_sql_wrap),
    "sql_unwrap": (frozenset({"sql_key", "wrapped"}), op_sql_unwrap),
}


# Feature flags (ADP_04): randomness injection; the filesystem trace (ADP_05); several adapter
# processes on one data directory (CONC_01..CONC_03) and the passphrase command's timeout
# (PASS_08, PASS_09), both ADP_06.
FEATURES = ("inject_randomness", "fs_trace", "concurrency", "passphrase_timeout")


def hello() -> Json:
    return {
        "protocol": PROTOCOL_VERSION,
        "implementation": "pgkms-reference",
        "version": __version__,
        "capabilities": [*OPERATIONS, *FEATURES],
    }


def _reject_extra_fields(raw: Json, allowed: frozenset[str]) -> None:
    if raw.keys() <= allowed:
        return
    extra = sorted(set(raw) - allowed)
    raise MalformedRequest(f"unknown field(s): {', '.join(extra)}")


# The fields each operation accepts, "id" and "op" included (_reject_extra_fields).
_ALLOWED = {op: fields | {"id", "op"} for op, (fields, _) in OPERATIONS.items()}
_ALLOWED["hello"] = _ALLOWED["shutdown"] = frozenset({"id", "op"})


def parse_line(line: str | bytes) -> Json | MalformedRequest:
    """One request line as a JSON object, or the error its answer reports."""
    try:
        # strict UTF-8: no BOM, no UTF-16/32 auto-detection as json.loads(bytes) would do
        raw = json.loads(line.decode("utf-8") if isinstance(line, bytes) else line)
    except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError, deep nesting
        return MalformedRequest("request is not valid JSON")
    if not isinstance(raw, dict):
        return MalformedRequest("request is not a JSON object")
    return raw


def handle_line(line: str | bytes, fs: FileSystem | None = None) -> tuple[Json, bool]:
    """Answer one request line; the flag says whether the session should end. ``fs`` is for
    callers in process (the harness's oracle): the adapter itself uses the real filesystem."""
    return answer(parse_line(line), fs)


def answer(request: Json | MalformedRequest, fs: FileSystem | None = None) -> tuple[Json, bool]:
    """``handle_line`` once the line is parsed (``parse_line``)."""
    request_id: Any = None
    try:
        if isinstance(request, MalformedRequest):
            raise request
        request_id = request.get("id")
        if not isinstance(request_id, int) or isinstance(request_id, bool):
            request_id = None
            raise MalformedRequest("field 'id': expected an integer")
        op = request.get("op")
        if not isinstance(op, str):
            raise MalformedRequest("field 'op': expected a string")
        if op in ("hello", "shutdown"):
            _reject_extra_fields(request, _ALLOWED[op])
            result = hello() if op == "hello" else {}
            return {"id": request_id, "ok": True, "result": result}, op == "shutdown"
        if op not in OPERATIONS:
            raise UnsupportedOperation(f"operation {op!r} is not supported")
        _reject_extra_fields(request, _ALLOWED[op])  # before any effect on disk
        result = OPERATIONS[op][1](Request(request, fs))
        return {"id": request_id, "ok": True, "result": result}, False
    except KmsError as exc:
        error = {"code": exc.code, "message": exc.message}
    except Exception as exc:  # the adapter must answer, whatever happened
        error = {"code": "internal_error", "message": type(exc).__name__}
    return {"id": request_id, "ok": False, "error": error}, False


# Operations that compute in memory, in time bounded by their input's size: no directory, no
# command, no lock. Answers to such requests that arrived together go out in one write (one
# system call instead of one per answer: a third of the CPU time of a small pipelined request);
# an answer is never held back while another kind of request runs.
QUICK_OPERATIONS = frozenset(
    {"hello", "derive_kek", "wrap", "unwrap", "encode_record", "decode_record", "substitute",
     "check_passphrase", "sql_wrap", "sql_unwrap"}
)  # fmt: skip
_ENCODE = json.JSONEncoder(separators=(",", ":")).encode
READ_SIZE = 64 * 1024


def _arrivals(stdin: BinaryIO) -> Iterator[list[bytes]]:
    """The request lines of ``stdin``, in lists of those that arrived together (one read)."""
    fd, partial = stdin.fileno(), bytearray()
    while chunk := os.read(fd, READ_SIZE):
        partial += chunk
        if b"\n" in chunk:
            *lines, rest = partial.split(b"\n")
            partial = rest
            yield [bytes(line) for line in lines]
    if partial:  # a last line without its newline is still a request
        yield [bytes(partial)]


def serve(stdin: BinaryIO, stdout: BinaryIO) -> None:
    """Read raw bytes: a line that is not UTF-8 is a malformed request, whatever the locale
    (a text-mode stdin would either crash on it or pass it on with surrogate escapes)."""
    held: list[bytes] = []

    def write_held() -> None:
        if held:
            stdout.write(b"".join(held))
            stdout.flush()
            held.clear()

    for lines in _arrivals(stdin):
        for line in lines:
            if not line.strip():
                continue
            request = parse_line(line)
            quick = isinstance(request, dict) and request.get("op") in QUICK_OPERATIONS
            if held and not quick:
                write_held()
            response, done = answer(request)
            held.append(_ENCODE(response).encode("ascii") + b"\n")
            if done:
                write_held()
                return
        write_held()


def main() -> None:
    """Serve until end of input. SIGTERM and Ctrl-C end the session through the clean-up code,
    so a passphrase command still running is killed with its group first (ADP_06, PASS_09)."""
    with stop_on_sigterm():
        try:
            serve(sys.stdin.buffer, sys.stdout.buffer)
        except Stopped:
            raise SystemExit(128 + signal.SIGTERM) from None
        except KeyboardInterrupt:
            raise SystemExit(128 + signal.SIGINT) from None


if __name__ == "__main__":
    main()
