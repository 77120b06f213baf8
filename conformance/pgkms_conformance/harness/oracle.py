"""The oracle: the reference implementation, in process, answering adapter requests.

Asking ``pgkms.tools.adapter.handle_line`` (the reference adapter's own dispatcher) means the oracle
and the reference adapter cannot disagree about what a request means; no subprocess, no pipes.
``Answer`` is the common shape of an oracle's and an IUT's reply.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pgkms.fs import ForwardingFileSystem, OsFileSystem
from pgkms.tools.adapter import handle_line

from pgkms_conformance.harness.redact import describe_field
from pgkms_conformance.protocol.client import Response

Json = dict[str, Any]


@dataclass(frozen=True)
class Answer:
    ok: bool
    result: Json = field(default_factory=dict)
    code: str | None = None
    message: str = ""

    @classmethod
    def from_response(cls, response: Response) -> Answer:
        return cls(
            ok=response.ok,
            result=response.result,
            code=response.error_code,
            message=response.error_message or "",
        )

    def summary(self) -> str:
        """Report-safe: the error code, or each result field described (lengths, hashes)."""
        if not self.ok:
            return f"error {self.code}"
        if not self.result:
            return "ok"
        return "ok: " + ", ".join(
            f"{k} = {describe_field(k, v)}" for k, v in sorted(self.result.items())
        )

    def agrees_with(self, expected: Answer) -> bool:
        """Same error code, or success with every field the expected answer has, equal."""
        if expected.ok != self.ok:
            return False
        if not expected.ok:
            return expected.code == self.code
        return all(self.result.get(k) == v for k, v in expected.result.items())


@dataclass(frozen=True)
class Request:
    """One adapter request (its values are secrets: only replay files may show them)."""

    op: str
    params: Json

    def line(self, request_id: int) -> Json:
        return {"id": request_id, "op": self.op, **self.params}


class UnsyncedFileSystem(ForwardingFileSystem):
    """The real filesystem without ``fsync``: for the harness's own reference computations.

    What the oracle and the scenarios' reference runs write is read back at once and thrown
    away; it never has to survive a crash, and on a disk each fsync costs milliseconds (about
    120 of them in a default run). Every other call, and so every answer, is unchanged.
    """

    def __init__(self) -> None:
        super().__init__(OsFileSystem())

    def fsync_file(self, path: str) -> None:
        pass

    def fsync_dir(self, path: str) -> None:
        pass


UNSYNCED = UnsyncedFileSystem()


def oracle(op: str, params: Json) -> Answer:
    """The reference's answer to one request (its directory ops on ``UNSYNCED``)."""
    response, _ = handle_line(json.dumps({"id": 0, "op": op, **params}), UNSYNCED)
    if response["ok"]:
        return Answer(ok=True, result=response["result"])
    error = response["error"]
    return Answer(ok=False, code=error["code"], message=error["message"])
