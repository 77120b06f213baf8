"""An adapter doing the reference's rotation that reports the 2020 patch's durability.

The disk ends as the reference leaves it (fsyncs change no entry), but the rotation's trace
says what the 2020 code does (facts file, "Passphrase rotation"): an extra fsync of the still
empty ``pg_cryptokeys_tmp`` right after ``mkdir``, and no fsync of ``PGDATA`` after the removal
of ``pg_cryptokeys`` nor after the rename. Every other answer is the reference's.
Usage: ``durability_2020.py``; the harness must fail ROT_05 and ROT_06 and pass ROT_04.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from pgkms.tools.adapter import handle_line

Json = dict[str, Any]


def as_2020(trace: list[Json]) -> list[Json]:
    out: list[Json] = []
    for entry in trace:
        after_removal = out and out[-1]["op"] in ("rmdir", "rename")
        if entry == {"op": "fsync_dir", "path": "."} and after_removal:
            continue  # DEV_FSYNC: PGDATA never fsynced after the rmdir or the rename
        out.append(entry)
        if entry["op"] == "mkdir" and entry["path"] == "pg_cryptokeys_tmp":
            out.append({"op": "fsync_dir", "path": "pg_cryptokeys_tmp"})  # still empty
    return out


def main() -> None:
    for line in sys.stdin.buffer:
        if not line.strip():
            continue
        response, done = handle_line(line)
        request = json.loads(line)
        result = response.get("result")
        if request.get("op") == "rotate" and isinstance(result, dict) and "fs_trace" in result:
            result["fs_trace"] = as_2020(result["fs_trace"])
        sys.stdout.buffer.write(json.dumps(response, separators=(",", ":")).encode() + b"\n")
        sys.stdout.buffer.flush()
        if done:
            return


if __name__ == "__main__":
    main()
