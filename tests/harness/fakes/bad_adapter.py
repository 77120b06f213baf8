"""A deliberately bad IUT for the harness's robustness tests: ``python bad_adapter.py MODE [N]``.

It answers ``hello`` (claiming every operation) and serves the reference's answers for the first
N requests after it, then misbehaves according to MODE:
  crash    writes a last word on stderr and exits 3
  hang     stops answering (after forking a child that sleeps, to check process-group cleanup;
           the child's pid goes to the file named by $FAKE_CHILD_PID)
  garbage  answers with a line that is not JSON
  wrongid  answers with another request id
  noinject a correct IUT without inject_randomness (requests carrying iv/ivs/keys are refused)
  format_only  a correct IUT of the ``format`` profile only, without inject_randomness
  notrace  a correct IUT without fs_trace (requests carrying trace_fs are refused)
  badtrace a correct IUT whose fs_trace leaves out the renames it performs (a trace that does
           not account for the disk)
  leak     never stops; every error message, and stderr, echo the request's values in hex, raw
           text and base64, and every result comes back altered (so the harness reports many
           failures, each a chance to leak); it dies on ``rotate``, secrets in its stderr tail
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from typing import Any

from pgkms.tools.adapter import handle_line


def _echo(raw: dict[str, Any]) -> str:
    parts = []
    for value in raw.values():
        if isinstance(value, str):
            parts.append(value)
            try:
                data = bytes.fromhex(value)
            except ValueError:
                continue
            parts += [data.decode("latin-1"), base64.b64encode(data).decode()]
    return " | ".join(parts)


def _alter(result: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in result.items():
        if isinstance(value, str) and value:
            out[key] = value[:-1] + ("0" if value[-1] != "0" else "1")
        else:
            out[key] = value
    return out


FORMAT_OPS = {"derive_kek", "wrap", "unwrap", "encode_record", "decode_record"}
PARTIAL = ("noinject", "format_only", "notrace", "badtrace")


def _partial(mode: str, raw: dict[str, Any], line: str) -> dict[str, Any]:
    """A correct but partial IUT: no randomness injection, or the format profile only."""
    response, _ = handle_line(line)
    op = raw.get("op")
    if op == "hello":
        caps = response["result"]["capabilities"]
        if mode == "notrace":
            caps.remove("fs_trace")
        elif mode != "badtrace":
            caps.remove("inject_randomness")
        if mode == "format_only":
            caps[:] = [c for c in caps if c in FORMAT_OPS]
        return response
    if mode == "badtrace" and response["ok"] and "fs_trace" in response["result"]:
        trace = response["result"]["fs_trace"]
        trace[:] = [entry for entry in trace if entry["op"] != "rename"]
        return response
    if mode in ("notrace", "badtrace"):
        if "trace_fs" in raw and mode == "notrace":
            return {
                "id": raw.get("id"),
                "ok": False,
                "error": {"code": "malformed_request", "message": "unknown field(s): trace_fs"},
            }
        return response
    error = None
    if not response["ok"] and response["error"]["code"] == "malformed_request":
        return response  # bad lines stay bad, whatever the op
    if mode == "format_only" and op not in FORMAT_OPS:
        error = {"code": "unsupported_operation", "message": "not implemented"}
    elif any(k in raw for k in ("iv", "ivs", "keys")):
        error = {"code": "malformed_request", "message": "randomness cannot be injected"}
    if error:
        return {"id": raw.get("id"), "ok": False, "error": error}
    return response


def main() -> None:
    mode = sys.argv[1]
    budget = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    served = 0
    response: dict[str, Any]
    for line in sys.stdin:
        try:
            raw = json.loads(line)
        except json.JSONDecodeError:
            raw = {}
        if mode in PARTIAL:
            response = _partial(mode, raw, line)
        elif raw.get("op") == "hello" or served < budget:
            response, _ = handle_line(line)
            served += raw.get("op") != "hello"
        elif mode == "crash":
            sys.stderr.write("fake IUT: segmentation fault (pretend)\n")
            sys.stderr.flush()
            sys.exit(3)
        elif mode == "hang":
            child = subprocess.Popen(["sleep", "600"])
            pid_file = os.environ.get("FAKE_CHILD_PID")
            if pid_file:
                with open(pid_file, "a") as f:
                    f.write(f"{child.pid}\n")
            sys.stderr.write("fake IUT: waiting for a lock forever\n")
            sys.stderr.flush()
            time.sleep(600)
        elif mode == "garbage":
            sys.stdout.write("Segmentation fault? no: debug output on stdout\n")
            sys.stdout.flush()
            continue
        elif mode == "wrongid":
            response = {"id": 424242, "ok": True, "result": {}}
        else:  # leak
            sys.stderr.write(f"fake IUT got: {_echo(raw)}\n")
            sys.stderr.flush()
            if raw.get("op") == "rotate":  # die with secrets in the stderr tail
                sys.exit(4)
            response, _ = handle_line(line)
            if response["ok"]:
                response["result"] = _alter(response["result"])
            else:
                response["error"]["message"] += " request was: " + _echo(raw)
        sys.stdout.write(json.dumps(response) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
