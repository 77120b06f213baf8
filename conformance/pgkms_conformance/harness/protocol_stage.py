"""Stage 1: the adapter's own contract (ADP_01..ADP_04), on a handful of deliberately bad lines.

A harness that cannot trust error codes cannot judge anything else, so these run first: a line
that is not JSON, an unknown op, upper-case hex, a missing field; after each, the adapter must
still answer (ADP_01).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from pgkms_conformance.harness.checks import Context, adapter_failure_text
from pgkms_conformance.harness.model import Case, Verdict
from pgkms_conformance.harness.session import RunAborted
from pgkms_conformance.protocol.client import AdapterFailure

_BASE_ID = 1_000_000  # far from the client's own ids


def _probes(caps: frozenset[str]) -> list[tuple[str, str, str | None, tuple[str, ...], str]]:
    """(name, raw line, expected code, requirements, op needed or '')."""
    probes = [
        ("not JSON", "this is not JSON", "malformed_request", ("ADP_01", "ADP_03"), ""),
        (
            "unknown op",
            json.dumps({"id": _BASE_ID + 1, "op": "no_such_operation"}),
            "unsupported_operation",
            ("ADP_03",),
            "",
        ),
        (
            "upper-case hex",
            json.dumps({"id": _BASE_ID + 2, "op": "derive_kek", "passphrase": "ABCDEF"}),
            "malformed_request",
            ("ADP_02",),
            "derive_kek",
        ),
        (
            "odd-length hex",
            json.dumps({"id": _BASE_ID + 3, "op": "derive_kek", "passphrase": "abc"}),
            "malformed_request",
            ("ADP_02",),
            "derive_kek",
        ),
        (
            "missing field",
            json.dumps({"id": _BASE_ID + 4, "op": "derive_kek"}),
            "malformed_request",
            ("ADP_03",),
            "derive_kek",
        ),
    ]
    return [p for p in probes if not p[4] or p[4] in caps]


def run_protocol(ctx: Context) -> Iterator[Case]:
    hello = ctx.session.hello
    assert hello is not None
    yield Case(
        "protocol",
        "hello",
        Verdict.PASSED,
        ("ADP_04",),
        {"check": "hello: protocol 1 and a capability list"},
    )
    for name, line, code, probe_reqs, _ in _probes(ctx.session.capabilities):
        source = {"check": name}
        reqs = probe_reqs
        detail = ""
        try:
            answer = ctx.session.send_raw(line)
            ctx.progress.tick()
            problem = _judge(answer, code, line)
            alive = ctx.session.call("hello").ok  # ADP_01: it keeps running
            if not alive and problem is None:
                problem = ("a hello answer after the bad line", "hello refused")
        except AdapterFailure as exc:
            ctx.session.recover_from(exc)
            found, detail = adapter_failure_text(ctx, exc)
            problem = ("an error response", found)
            reqs = tuple(dict.fromkeys(("ADP_01", *reqs)))  # the IUT broke ADP_01 first
        except RunAborted:
            return
        if problem is None:
            yield Case("protocol", name, Verdict.PASSED, reqs, source)
        else:
            ctx.progress.failed()
            expected, found = problem
            yield Case(
                "protocol",
                name,
                Verdict.FAILED,
                reqs,
                source,
                expected=expected,
                found=found,
                detail=detail,
            )


def _judge(answer: dict[str, Any], code: str | None, line: str) -> tuple[str, str] | None:
    error = answer.get("error")
    found_code = error.get("code") if isinstance(error, dict) else None
    try:
        request_id = json.loads(line).get("id")
    except json.JSONDecodeError:
        request_id = None
    if answer.get("ok") is not False or found_code != code:
        shown = f"error {found_code}" if found_code else "success" if answer.get("ok") else "?"
        return (f"error {code}", shown)
    if answer.get("id") != request_id:
        return (f"the response to carry id {request_id!r}", f"id {answer.get('id')!r}")
    return None
