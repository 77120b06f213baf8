"""Both bundled adapters write the answers to requests that arrived together in one write.

The adapter protocol allows it (spec: Adapter protocol, Pipelining) on two conditions: what was
written is flushed before the adapter reads again, and no answer is held back while a request
that may wait (a directory procedure, a passphrase command) runs. These tests run each adapter's
``serve`` in this process on a real file or pipe, with an output that logs every write and
flush, and check the answers, their order, and when they were written.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pgkms.tools import adapter as reference
from pgkms_independent import adapter as independent

from tests.harness.helpers import drbg_bytes

pytestmark = pytest.mark.req("ADP_01")

Event = tuple[str, bytes]


class LoggingOutput:
    """A binary output that logs ``("write", data)`` and ``("flush", b"")`` in order."""

    def __init__(self, log: list[Event]) -> None:
        self.log = log

    def write(self, data: bytes | bytearray) -> int:
        self.log.append(("write", bytes(data)))
        return len(data)

    def flush(self) -> None:
        self.log.append(("flush", b""))


@dataclass(frozen=True)
class Adapter:
    name: str
    serve: Callable[[Any, Any], None]
    answer_line: Callable[[bytes], dict[str, Any]]
    # replaces the handler of an operation for the length of a test
    patch: Callable[[pytest.MonkeyPatch, str, Callable[[Any], dict[str, Any]]], None]


def _patch_reference(mp: pytest.MonkeyPatch, op: str, fn: Callable[[Any], Any]) -> None:
    mp.setitem(reference.OPERATIONS, op, (reference.OPERATIONS[op][0], fn))


def _patch_independent(mp: pytest.MonkeyPatch, op: str, fn: Callable[[Any], Any]) -> None:
    mp.setitem(independent.HANDLERS, op, fn)


ADAPTERS = [
    Adapter("reference", reference.serve, lambda b: reference.handle_line(b)[0], _patch_reference),
    Adapter(
        "independent", independent.serve, lambda b: independent.answer(b)[0], _patch_independent
    ),
]


@pytest.fixture(params=ADAPTERS, ids=lambda a: a.name)
def adapter(request: pytest.FixtureRequest) -> Adapter:
    result: Adapter = request.param
    return result


def _line(request_id: int, op: str, **fields: Any) -> bytes:
    return json.dumps({"id": request_id, "op": op, **fields}).encode() + b"\n"


def _derive(request_id: int) -> bytes:
    return _line(request_id, "derive_kek", passphrase=drbg_bytes(f"batch/{request_id}", 40).hex())


def _wrap(request_id: int, size: int) -> bytes:
    return _line(
        request_id,
        "wrap",
        enc_key=bytes(32).hex(),
        mac_key=bytes(range(32)).hex(),
        plaintext=drbg_bytes(f"batch/plain/{request_id}", size).hex(),
        iv=bytes(16).hex(),
    )


def _serve_file(adapter: Adapter, data: bytes, tmp_path: Path) -> list[Event]:
    """``adapter.serve`` on a file holding ``data`` (each read returns up to 64 KiB of it)."""
    path = tmp_path / "requests"
    path.write_bytes(data)
    log: list[Event] = []
    with path.open("rb") as stdin:
        adapter.serve(stdin, LoggingOutput(log))
    return log


def _answers(log: list[Event]) -> Iterator[dict[str, Any]]:
    for kind, data in log:
        if kind == "write":
            yield from (json.loads(line) for line in data.splitlines())


def test_requests_that_arrived_together_are_answered_in_one_write(adapter: Adapter) -> None:
    lines = [_derive(i) for i in range(1, 21)]
    read_end, write_end = os.pipe()
    os.write(write_end, b"".join(lines))  # all in the pipe before the adapter reads: one read
    os.close(write_end)
    log: list[Event] = []
    with os.fdopen(read_end, "rb") as stdin:
        adapter.serve(stdin, LoggingOutput(log))
    assert [kind for kind, _ in log] == ["write", "flush"]
    assert list(_answers(log)) == [adapter.answer_line(line) for line in lines]


def test_lines_split_across_reads_and_a_last_line_without_newline(
    adapter: Adapter, tmp_path: Path
) -> None:
    """A 150 KB request spans three reads; blank lines are skipped; the final line has no
    newline. Every answer equals the one-line answer, in order."""
    lines = [_derive(1), b"\n", _wrap(2, 75_000), _derive(3), b"  \n", _wrap(4, 40)]
    data = b"".join(lines)[:-1]
    log = _serve_file(adapter, data, tmp_path)
    expected = [adapter.answer_line(line) for line in lines if line.strip()]
    assert list(_answers(log)) == expected
    assert all(answer["ok"] for answer in expected)
    assert log[-1] == ("flush", b"")


def test_no_answer_waits_behind_an_operation_that_may_wait(
    adapter: Adapter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The answers before a ``startup`` are written and flushed before it runs; the quick ones
    after it go out together after it."""
    log: list[Event] = []

    def startup(_: Any) -> dict[str, Any]:
        log.append(("startup runs", b""))
        return {}

    adapter.patch(monkeypatch, "startup", startup)
    request = _line(3, "startup", datadir=str(tmp_path), passphrase="00" * 16)
    data = _derive(1) + _derive(2) + request + _derive(4) + _derive(5)
    with (tmp_path / "requests").open("wb") as out:
        out.write(data)
    with (tmp_path / "requests").open("rb") as stdin:
        adapter.serve(stdin, LoggingOutput(log))
    kinds = [kind for kind, _ in log]
    assert kinds == ["write", "flush", "startup runs", "write", "flush"]
    assert [a["id"] for a in _answers(log)] == [1, 2, 3, 4, 5]
    assert [json.loads(line)["id"] for line in log[0][1].splitlines()] == [1, 2]


def test_a_malformed_request_is_answered_in_its_place(adapter: Adapter, tmp_path: Path) -> None:
    data = _derive(1) + b'{"id": 2, "op": \n' + _line(3, "no_such_op") + _derive(4)
    answers = list(_answers(_serve_file(adapter, data, tmp_path)))
    assert [(a["id"], a["ok"]) for a in answers] == [
        (1, True),
        (None, False),
        (3, False),
        (4, True),
    ]
    assert [a["error"]["code"] for a in answers if not a["ok"]] == [
        "malformed_request",
        "unsupported_operation",
    ]


def test_nothing_is_answered_after_shutdown(adapter: Adapter, tmp_path: Path) -> None:
    data = _derive(1) + _line(2, "shutdown") + _derive(3)
    log = _serve_file(adapter, data, tmp_path)
    assert [a["id"] for a in _answers(log)] == [1, 2]
    assert log[-1] == ("flush", b"")
