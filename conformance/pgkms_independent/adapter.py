"""Adapter protocol v1 for the independent implementation: ``python -m pgkms_independent.adapter``.

ADP_01: one JSON request per line on stdin, one JSON response per line on stdout, nothing else
on stdout. ADP_02: bytes travel as lowercase hex. ADP_03: failures carry a stable code. ADP_04:
``hello`` announces the protocol version and capabilities.

Each operation declares its parameters in ``PARAMETERS`` (name -> ``Param``); a request is
checked against that declaration completely (names, types, hex, sizes) before the operation
runs, so a malformed request never has an effect on disk.

ADP_06: ``lock_timeout`` on the procedures that may change the key directories, ``timeout`` on
``run_passphrase_command``; capabilities ``concurrency`` (CONC_01..CONC_03) and
``passphrase_timeout`` (PASS_08, PASS_09). On SIGTERM or SIGINT the adapter kills the process
group of any passphrase command it runs, then exits at once: a procedure it interrupts is left
as a crash would leave it, which recovery settles (the lock goes with the process).
"""

from __future__ import annotations

import io
import json
import math
import os
import signal
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, BinaryIO, Final, Protocol, cast

from pgkms_independent import IMPLEMENTATION_NAME, __version__, disk
from pgkms_independent.codec import (
    HALF_KEY,
    INTERNAL_KEY_SIZE,
    IV_SIZE,
    KEY_IDS,
    WRAPPED_KEY_SIZE,
    is_lower_hex,
    pack_record,
    unpack_record,
)
from pgkms_independent.entropy import Entropy, fresh
from pgkms_independent.failures import Code, Failure, ProtocolFailure
from pgkms_independent.hidden import Hidden
from pgkms_independent.keystore import Cluster
from pgkms_independent.passphrase import (
    DEFAULT_TIMEOUT,
    Purpose,
    acquire,
    effective,
    expand,
    kill_running_groups,
    stop_or_postpone,
)
from pgkms_independent.primitives import KeyPair, derive, open_sealed, seal
from pgkms_independent.sql import pg_unwrap, pg_wrap

PROTOCOL: Final = 1
Json = dict[str, Any]


@dataclass(frozen=True)
class Param:
    """One request parameter: its JSON kind, whether it may be absent/null, byte sizes."""

    kind: str  # "hex", "hex_list", "text", "int", "purpose", "flag", "seconds"
    optional: bool = False
    size: int | None = None  # exact byte length for hex (each item for hex_list)
    count: int | None = None  # exact item count for hex_list
    zero_allowed: bool = False  # for seconds: whether 0 is accepted (>= 0 rather than > 0)


def _bad(message: str) -> ProtocolFailure:
    return ProtocolFailure(Code.MALFORMED_REQUEST, message)


def _check_hex(value: object, name: str, size: int | None) -> bytes:
    if not isinstance(value, str) or not is_lower_hex(value):
        raise _bad(f"{name}: expected a lowercase hex string of even length")
    data = bytes.fromhex(value)
    if size is not None and len(data) != size:
        raise _bad(f"{name}: expected {size} bytes, found {len(data)}")
    return data


def _check(name: str, param: Param, value: object) -> object:
    if param.kind == "hex":
        return _check_hex(value, name, param.size)
    if param.kind == "hex_list":
        if not isinstance(value, list) or len(value) != param.count:
            raise _bad(f"{name}: expected a list of {param.count} hex strings")
        return [_check_hex(v, f"{name}[{i}]", param.size) for i, v in enumerate(value)]
    if param.kind == "int":
        if not isinstance(value, int) or isinstance(value, bool):
            raise _bad(f"{name}: expected an integer")
        return value
    if param.kind == "text":
        if not isinstance(value, str):
            raise _bad(f"{name}: expected a string")
        return value
    if param.kind == "flag":
        if not isinstance(value, bool):
            raise _bad(f"{name}: expected true or false")
        return value
    if param.kind == "seconds":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _bad(f"{name}: expected a number of seconds")
        low_ok = value >= 0 if param.zero_allowed else value > 0
        if not math.isfinite(value) or not low_ok:
            bound = ">= 0" if param.zero_allowed else "> 0"
            raise _bad(f"{name}: expected a finite number of seconds {bound}")
        return float(value)
    if param.kind == "purpose":
        if not isinstance(value, str) or value not in {p.value for p in Purpose}:
            raise _bad(f"{name}: expected one of bootstrap, startup, rotation")
        return Purpose(value)
    raise AssertionError(f"unknown parameter kind {param.kind}")


def parse_params(op: str, request: Json) -> dict[str, Any]:
    """Check ``request`` against the declaration of ``op``; return the decoded parameters."""
    declared = PARAMETERS[op]
    unknown = sorted(set(request) - set(declared) - {"id", "op"})
    if unknown:
        raise _bad(f"{op}: unknown field(s) {', '.join(unknown)}")
    params: dict[str, Any] = {}
    for name, param in declared.items():
        value = request.get(name)
        if value is None:
            if not param.optional:
                raise _bad(f"{op}: field {name} is required")
            params[name] = None
            continue
        params[name] = _check(name, param, value)
    return params


def _plan(*groups: tuple[list[bytes] | None, int]) -> Entropy:
    """Injected draws for the groups given; CSPRNG draws for those left out."""
    plan: list[bytes | None] = []
    for given, count in groups:
        plan.extend(given if given is not None else [None] * count)
    return Entropy(plan)


def _iv(given: bytes | None) -> bytes:
    return given if given is not None else fresh().draw(IV_SIZE)


def _kek(p: dict[str, Any]) -> KeyPair:
    return KeyPair(Hidden(p["enc_key"]), Hidden(p["mac_key"]))


# -- operations ----------------------------------------------------------------------------------
def do_derive_kek(p: dict[str, Any]) -> Json:
    kek = derive(Hidden(p["passphrase"]))
    return {"enc_key": kek.cipher_key.expose().hex(), "mac_key": kek.mac_key.expose().hex()}


def do_wrap(p: dict[str, Any]) -> Json:
    return {"wrapped": seal(_kek(p), Hidden(p["plaintext"]), _iv(p["iv"])).hex()}


def do_unwrap(p: dict[str, Any]) -> Json:
    return {"plaintext": open_sealed(_kek(p), p["wrapped"], "wrapped value").expose().hex()}


def do_encode_record(p: dict[str, Any]) -> Json:
    if not 0 <= p["key_id"] < 2**32:
        raise _bad("key_id: expected an unsigned 32-bit integer")
    return {"record": pack_record(p["key_id"], p["wrapped_key"]).hex()}


def do_decode_record(p: dict[str, Any]) -> Json:
    record = unpack_record(p["record"], p["file_id"], "record")
    return {"key_id": record.key_id, "wrapped_key": record.wrapped_key.hex()}


def do_substitute(p: dict[str, Any]) -> Json:
    return {"command": expand(p["command"])}


def do_run_passphrase_command(p: dict[str, Any]) -> Json:
    timeout = DEFAULT_TIMEOUT if p["timeout"] is None else p["timeout"]
    return {"passphrase": acquire(p["command"], p["purpose"], timeout).expose().hex()}


def do_check_passphrase(p: dict[str, Any]) -> Json:
    return {"passphrase": effective(p["passphrase"], p["purpose"]).expose().hex()}


def _traced(p: dict[str, Any], datadir: str, run: Callable[[], Json]) -> Json:
    """Run an operation on disk; with ``trace_fs`` (capability fs_trace), add the trace of the
    disk layer's mutating calls to its result. An error answer carries no trace."""
    if not p["trace_fs"]:
        return run()
    with disk.tracing(datadir, p.get("old_datadir")) as trace:
        result = run()
    return {**result, "fs_trace": trace}


def do_bootstrap(p: dict[str, Any]) -> Json:
    entropy = _plan((p["keys"], len(KEY_IDS)), (p["ivs"], len(KEY_IDS)))

    def run() -> Json:
        Cluster(p["datadir"], p["lock_timeout"]).bootstrap(p["passphrase"], entropy)
        return {}

    return _traced(p, p["datadir"], run)


def do_startup(p: dict[str, Any]) -> Json:
    def run() -> Json:
        keys = Cluster(p["datadir"], p["lock_timeout"]).startup(p["passphrase"])
        return {"keys": [k.expose().hex() for k in keys.keys]}

    return _traced(p, p["datadir"], run)


def do_rotate(p: dict[str, Any]) -> Json:
    entropy = _plan((p["ivs"], len(KEY_IDS)))

    def run() -> Json:
        Cluster(p["datadir"], p["lock_timeout"]).rotate(
            p["old_passphrase"], p["new_passphrase"], entropy
        )
        return {}

    return _traced(p, p["datadir"], run)


def do_recover(p: dict[str, Any]) -> Json:
    return _traced(
        p,
        p["datadir"],
        lambda: {
            "decision": Cluster(p["datadir"], p["lock_timeout"]).recover_with(p["passphrase"])
        },
    )


def do_upgrade_keys(p: dict[str, Any]) -> Json:
    def run() -> Json:
        old = Cluster(p["old_datadir"], p["lock_timeout"])
        Cluster(p["new_datadir"], p["lock_timeout"]).adopt_keys_of(old, p["passphrase"])
        return {}

    return _traced(p, p["new_datadir"], run)


def do_sql_wrap(p: dict[str, Any]) -> Json:
    return {"wrapped": pg_wrap(Hidden(p["sql_key"]), Hidden(p["plaintext"]), _iv(p["iv"])).hex()}


def do_sql_unwrap(p: dict[str, Any]) -> Json:
    return {"plaintext": pg_unwrap(Hidden(p["sql_key"]), p["wrapped"]).expose().hex()}


_KEY_HALF = Param("hex", size=HALF_KEY)
_IV = Param("hex", optional=True, size=IV_SIZE)
_IVS = Param("hex_list", optional=True, size=IV_SIZE, count=len(KEY_IDS))
_TRACE = Param("flag", optional=True)  # capability fs_trace (ADP_05)
_LOCK_TIMEOUT = Param("seconds", optional=True, zero_allowed=True)  # ADP_06, CONC_02

PARAMETERS: Final[dict[str, dict[str, Param]]] = {
    "derive_kek": {"passphrase": Param("hex")},
    "wrap": {"enc_key": _KEY_HALF, "mac_key": _KEY_HALF, "plaintext": Param("hex"), "iv": _IV},
    "unwrap": {"enc_key": _KEY_HALF, "mac_key": _KEY_HALF, "wrapped": Param("hex")},
    "encode_record": {"key_id": Param("int"), "wrapped_key": Param("hex", size=WRAPPED_KEY_SIZE)},
    "decode_record": {"record": Param("hex"), "file_id": Param("int", optional=True)},
    "substitute": {"command": Param("text")},
    "run_passphrase_command": {
        "command": Param("text"),
        "purpose": Param("purpose"),
        "timeout": Param("seconds", optional=True),  # ADP_06, PASS_08
    },
    "check_passphrase": {"passphrase": Param("hex"), "purpose": Param("purpose")},
    "bootstrap": {
        "datadir": Param("text"),
        "passphrase": Param("hex"),
        "keys": Param("hex_list", optional=True, size=INTERNAL_KEY_SIZE, count=len(KEY_IDS)),
        "ivs": _IVS,
        "trace_fs": _TRACE,
        "lock_timeout": _LOCK_TIMEOUT,
    },
    "startup": {
        "datadir": Param("text"),
        "passphrase": Param("hex"),
        "trace_fs": _TRACE,
        "lock_timeout": _LOCK_TIMEOUT,
    },
    "rotate": {
        "datadir": Param("text"),
        "old_passphrase": Param("hex"),
        "new_passphrase": Param("hex"),
        "ivs": _IVS,
        "trace_fs": _TRACE,
        "lock_timeout": _LOCK_TIMEOUT,
    },
    "recover": {
        "datadir": Param("text"),
        "passphrase": Param("hex"),
        "trace_fs": _TRACE,
        "lock_timeout": _LOCK_TIMEOUT,
    },
    "upgrade_keys": {
        "old_datadir": Param("text"),
        "new_datadir": Param("text"),
        "passphrase": Param("hex"),
        "trace_fs": _TRACE,
        "lock_timeout": _LOCK_TIMEOUT,
    },
    "sql_wrap": {
        "sql_key": Param("hex", size=INTERNAL_KEY_SIZE),
        "plaintext": Param("hex"),
        "iv": _IV,
    },
    "sql_unwrap": {"sql_key": Param("hex", size=INTERNAL_KEY_SIZE), "wrapped": Param("hex")},
}

HANDLERS: Final[dict[str, Callable[[dict[str, Any]], Json]]] = {
    "derive_kek": do_derive_kek,
    "wrap": do_wrap,
    "unwrap": do_unwrap,
    "encode_record": do_encode_record,
    "decode_record": do_decode_record,
    "substitute": do_substitute,
    "run_passphrase_command": do_run_passphrase_command,
    "check_passphrase": do_check_passphrase,
    "bootstrap": do_bootstrap,
    "startup": do_startup,
    "rotate": do_rotate,
    "recover": do_recover,
    "upgrade_keys": do_upgrade_keys,
    "sql_wrap": do_sql_wrap,
    "sql_unwrap": do_sql_unwrap,
}


def hello_result() -> Json:
    return {
        "protocol": PROTOCOL,
        "implementation": IMPLEMENTATION_NAME,
        "version": __version__,
        "capabilities": [
            *HANDLERS,
            "inject_randomness",
            "fs_trace",
            "concurrency",
            "passphrase_timeout",
        ],
    }


def _decode_request(line: bytes) -> Json:
    try:
        request = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _bad("the request line is not UTF-8 JSON") from None
    if not isinstance(request, dict):
        raise _bad("the request is not a JSON object")
    return request


# The operations that may wait (on a lock, a passphrase command, the disk) rather than only
# compute: before one of them runs, the answers written so far are flushed (see ``serve``).
MAY_WAIT: Final = frozenset(
    {"run_passphrase_command", "bootstrap", "startup", "rotate", "recover", "upgrade_keys"}
)


def _nothing() -> None:
    return None


def answer(line: bytes, before_waiting: Callable[[], None] = _nothing) -> tuple[Json, bool]:
    """The response to one request line, and whether the session ends after it.
    ``before_waiting`` is called once the request is valid, just before an operation of
    ``MAY_WAIT`` runs."""
    request_id: int | None = None
    try:
        request = _decode_request(line)
        raw_id = request.get("id")
        if not isinstance(raw_id, int) or isinstance(raw_id, bool):
            raise _bad("id: expected an integer")
        request_id = raw_id
        op = request.get("op")
        if not isinstance(op, str):
            raise _bad("op: expected a string")
        if op in ("hello", "shutdown"):
            extra = sorted(set(request) - {"id", "op"})
            if extra:
                raise _bad(f"{op}: unknown field(s) {', '.join(extra)}")
            result = hello_result() if op == "hello" else {}
            return {"id": request_id, "ok": True, "result": result}, op == "shutdown"
        if op not in HANDLERS:
            raise ProtocolFailure(Code.UNSUPPORTED_OPERATION, f"operation {op!r} is not supported")
        params = parse_params(op, request)
        if op in MAY_WAIT:
            before_waiting()
        result = HANDLERS[op](params)
        return {"id": request_id, "ok": True, "result": result}, False
    except Failure as failure:
        error = {"code": failure.code.value, "message": failure.message}
    except Exception as exc:  # the session must survive anything; the type name is not secret
        error = {"code": Code.INTERNAL_ERROR.value, "message": type(exc).__name__}
    return {"id": request_id, "ok": False, "error": error}, False


_COMPACT: Final = json.JSONEncoder(separators=(",", ":"))


class _Chunked(Protocol):
    """A buffered binary input (``sys.stdin.buffer``): ``read1`` returns what one read gives."""

    def read1(self, size: int = -1, /) -> bytes: ...


def _chunks_of_lines(stream: _Chunked) -> Iterable[list[bytes]]:
    """Complete lines of ``stream``, grouped by the read that completed them; a trailing line
    without a newline comes last, at end of input."""
    carry: list[bytes] = []
    while block := stream.read1(1 << 16):
        *done, tail = block.split(b"\n")
        if done:
            done[0] = b"".join([*carry, done[0]])
            carry = []
            yield done
        if tail:
            carry.append(tail)
    if carry:
        yield [b"".join(carry)]


def serve(stream: _Chunked, out: BinaryIO) -> None:
    """ADP_01: one compact JSON line per request, in order. Answers to requests that came in
    one read are written together, one system call for all, which the protocol allows; they
    are flushed before the next read (the harness may be waiting for them) and before any
    operation that may wait (``MAY_WAIT``), so none is held back behind a slow one."""
    unsent = bytearray()

    def flush() -> None:
        if unsent:
            out.write(unsent)
            out.flush()
            unsent.clear()

    for lines in _chunks_of_lines(stream):
        for line in lines:
            if not line.strip():
                continue
            response, finished = answer(line, before_waiting=flush)
            unsent += _COMPACT.encode(response).encode("ascii") + b"\n"
            if finished:
                flush()
                return
        flush()


def _stop(signum: int, frame: object) -> None:
    """ADP_06, PASS_09: asked to stop, end any passphrase command's group, then exit (once a
    command being spawned is registered: ``stop_or_postpone``)."""

    def stop() -> None:
        kill_running_groups()
        os._exit(128 + signum)

    stop_or_postpone(stop)


def main() -> None:
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    # At run time ``sys.stdin.buffer`` is an ``io.BufferedReader`` (typeshed: ``BinaryIO``).
    serve(cast(io.BufferedReader, sys.stdin.buffer), sys.stdout.buffer)


if __name__ == "__main__":
    main()
