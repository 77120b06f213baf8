"""Replay files: the one place where the harness writes secret values, on purpose.

A failing property is written as JSON lines to feed to the adapter as is (``your-adapter <
FILE``: a ``hello`` line, then the shrunk request). A failing scenario step is written as one
JSON object: the data directory before the step (a vector-style listing) and the request to
send once that listing is materialised. The console and the reports name these files and show
only lengths and hash prefixes.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pgkms_conformance.harness.oracle import Request


class ReplayWriter:
    def __init__(self, directory: str | None) -> None:
        self._requested = directory
        self.directory: Path | None = None

    def _dir(self) -> Path:
        if self.directory is None:
            if self._requested:
                self.directory = Path(self._requested)
                self.directory.mkdir(parents=True, exist_ok=True)
            else:  # created only when something failed, and left for the user
                self.directory = Path(tempfile.mkdtemp(prefix="pgkms-replays-"))
        return self.directory

    def _path(self, name: str, suffix: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "case"
        path = self._dir() / f"{safe}{suffix}"
        n = 1
        while path.exists():
            n += 1
            path = self._dir() / f"{safe}-{n}{suffix}"
        return path

    def requests(self, name: str, requests: Sequence[Request]) -> str:
        path = self._path(name, ".jsonl")
        lines = [{"id": 0, "op": "hello"}] + [r.line(i + 1) for i, r in enumerate(requests)]
        path.write_text("".join(json.dumps(line) + "\n" for line in lines))
        path.chmod(0o600)
        return str(path)

    def scenario(self, name: str, before: dict[str, Any], request: Request) -> str:
        path = self._path(name, ".json")
        body = {
            "about": "materialise datadir_before in an empty directory, put its path in the "
            "request's datadir, then send hello and the request to the adapter",
            "datadir_before": before,
            "request": request.line(1),
        }
        path.write_text(json.dumps(body, indent=1, sort_keys=True) + "\n")
        path.chmod(0o600)
        return str(path)
