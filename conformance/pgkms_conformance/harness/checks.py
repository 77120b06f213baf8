"""What the property and scenario stages share: asking the IUT, comparing with the oracle, and
naming the requirement a disagreement breaks.

Attribution is the point of this module. A disagreement is charged to the requirement whose rule
decided the expected answer: if the oracle refused with ``bad_padding`` and the IUT accepted, the
IUT broke WRAP_08, whatever else it did; if the oracle accepted and the IUT refused, the IUT's
refusal names the check that fired wrongly. The per-requirement summary then points at the bug.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pgkms_conformance.harness.model import Case, Verdict
from pgkms_conformance.harness.oracle import Answer, Json, Request, oracle
from pgkms_conformance.harness.progress import Progress
from pgkms_conformance.harness.redact import Redactor, secret_forms
from pgkms_conformance.harness.replay import ReplayWriter
from pgkms_conformance.harness.session import IutSession
from pgkms_conformance.protocol.client import AdapterFailure

if TYPE_CHECKING:  # syscalls imports this package's oracle and fstrace
    from pgkms_conformance.harness.syscalls import SyscallSource


@dataclass(frozen=True)
class Mismatch:
    """A disagreement, already attributed and described without secrets."""

    requirements: tuple[str, ...]
    expected: str
    found: str
    requests: tuple[Request, ...] = ()
    detail: str = ""


@dataclass
class Context:
    session: IutSession
    redactor: Redactor
    progress: Progress
    replays: ReplayWriter
    seed: int = 0
    examples: int = 100
    error_answers: int = 0  # error responses whose messages were checked for secrets (ERR_02)
    # --trace-syscalls: the durability stage's traces come from the IUT's system calls.
    syscalls: SyscallSource | None = None
    syscalls_unavailable: str | None = None  # why --trace-syscalls could not trace here

    def ask(self, op: str, params: Json) -> Answer:
        """Send one request to the IUT. AdapterFailure and RunAborted propagate."""
        self.redactor.add_json(params)
        answer = Answer.from_response(self.session.call(op, **params))
        self.redactor.add_json(answer.result)
        self.error_answers += not answer.ok
        self.progress.tick()
        return answer


def adapter_failure_text(ctx: Context, exc: AdapterFailure) -> tuple[str, str]:
    """ADP_01: what the IUT did instead of answering (found) and its stderr tail (detail),
    both redacted."""
    tail = ctx.redactor.scrub("\n".join(exc.stderr_tail))
    found = f"{exc.kind}: {ctx.redactor.scrub(exc.message)}"
    return found, f"stderr tail:\n{tail}" if tail else ""


def adapter_failure_case(
    ctx: Context,
    stage: str,
    name: str,
    requirements: tuple[str, ...],
    source: dict[str, Any],
    *,
    exc: AdapterFailure,
    replay: str | None = None,
) -> Case:
    """ADP_01: a request the IUT did not answer with a response line (it died, hung or wrote
    something else) fails the check it belonged to. It is charged to ADP_01, the rule it surely
    broke; the check's own requirements are cited (what the answer would have shown is unknown)."""
    ctx.progress.failed()
    found, detail = adapter_failure_text(ctx, exc)
    return Case(
        stage,
        name,
        Verdict.FAILED,
        tuple(dict.fromkeys(("ADP_01", *requirements))),
        source,
        expected="a response line",
        found=found,
        detail=detail,
        replay=replay,
    )


def leaked_secret(params: Json, answer: Answer) -> bool:
    """ERR_02 / ADP_03: does the IUT's error message carry one of the request's byte values?"""
    if answer.ok or not answer.message:
        return False
    values: list[str] = []

    def collect(value: Any) -> None:
        if isinstance(value, str):
            try:
                values.append(value)
                raw = bytes.fromhex(value)
            except ValueError:
                return
            values.extend(secret_forms(raw))
        elif isinstance(value, list):
            for item in value:
                collect(item)

    for name, value in params.items():
        if name not in ("datadir", "old_datadir", "new_datadir", "command", "purpose"):
            collect(value)
    return any(len(v) >= 12 and v in answer.message for v in values)


Attribute = Callable[[Answer, Answer], tuple[str, ...]]


def differential(ctx: Context, op: str, params: Json, attribute: Attribute) -> Mismatch | None:
    """Ask the oracle and the IUT the same thing; a disagreement is attributed by ``attribute``."""
    return compare(ctx, op, params, attribute)[0]


def compare(
    ctx: Context, op: str, params: Json, attribute: Attribute
) -> tuple[Mismatch | None, Answer, Answer]:
    """:func:`differential`, also returning the oracle's and the IUT's answers (expected,
    found), for checks that refine the verdict or look at the IUT's message."""
    expected = oracle(op, params)
    found = ctx.ask(op, params)
    request = (Request(op, params),)
    if leaked_secret(params, found):
        leak = Mismatch(
            ("ERR_02",),
            "an error message without secrets",
            f"error {found.code} whose message contains a secret from the request",
            request,
        )
        return leak, expected, found
    if found.agrees_with(expected):
        return None, expected, found
    mismatch = Mismatch(attribute(expected, found), expected.summary(), found.summary(), request)
    return mismatch, expected, found


# -- attribution tables ---------------------------------------------------------------------
UNWRAP_CODES = {
    "wrapped_too_short": "WRAP_05",
    "wrapped_length_invalid": "WRAP_06",
    "hmac_mismatch": "WRAP_07",
    "bad_padding": "WRAP_08",
}
RECORD_CODES = {
    "record_size_invalid": "DISK_08",
    "record_id_invalid": "DISK_04",
    "record_id_mismatch": "DISK_05",
}


def attribute_unwrap(expected: Answer, found: Answer) -> tuple[str, ...]:
    if not expected.ok:
        return (UNWRAP_CODES.get(expected.code or "", "WRAP_07"),)
    if found.code == "hmac_mismatch":
        return ("WRAP_04",)  # a valid wrap refused: the IUT computes the HMAC differently
    if found.code in UNWRAP_CODES:
        return (UNWRAP_CODES[found.code or ""],)  # a check that fired on valid input
    return ("WRAP_02",)  # accepted, but decrypted to something else


def attribute_sql_unwrap(expected: Answer, found: Answer) -> tuple[str, ...]:
    if not expected.ok:
        return ("SQL_02",) if expected.code == "wrapped_too_short" else ("SQL_03",)
    if found.code == "hmac_mismatch":
        return ("SQL_01",)  # the SQL key's halves are used differently
    if found.ok:
        return ("SQL_04",)
    # A valid value refused: a check on the plaintext's text encoding (SQL_04) when it is not
    # UTF-8, otherwise an unwrap check firing wrongly (SQL_03).
    try:
        bytes.fromhex(str(expected.result.get("plaintext", ""))).decode("utf-8")
    except (UnicodeDecodeError, ValueError):
        return ("SQL_04",)
    return ("SQL_03",)


def attribute_record(expected: Answer, found: Answer) -> tuple[str, ...]:
    if not expected.ok:
        return (RECORD_CODES.get(expected.code or "", "DISK_03"),)
    return (RECORD_CODES.get(found.code or "", "DISK_03"),)


def length_rule(purpose: str, length: int) -> str:
    """The PASS_ requirement that decides a passphrase of ``length`` bytes for ``purpose``."""
    if purpose == "startup":
        return "PASS_06" if length > 1024 else "PASS_07"
    return "PASS_05" if length > 1024 else "PASS_04"


def fixed(*requirements: str) -> Attribute:
    def attribute(expected: Answer, found: Answer) -> tuple[str, ...]:
        return requirements

    return attribute
