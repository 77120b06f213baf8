"""Run vector files through an implementation's adapter, and load them safely.

Used by this project's tests and by the conformance harness:

- ``iter_vector_files(paths)`` / ``load_vector_file(path)``: read vector files, validate each
  against the project's JSON Schema it names (always the repository's ``vectors/schemas/``:
  a schema beside a file from elsewhere is never used, so a file cannot loosen its own rules)
  and check what a schema cannot: the test count, tcId numbering, every id equal to the hash of
  its op and input, every flag explained, every test citing a requirement. A bad file raises
  ``VectorFileError`` naming the file and the fault. In a directory, JSON that is not a vector
  file of the project's families (no ``schema`` field, or a schema the project does not have)
  is skipped with a one-line warning.
- ``run_test(client, test, group)`` runs one test and returns an ``Outcome``: passed, failed or
  unsupported (the op is not among the IUT's capabilities), with the requirement IDs, and what
  was expected versus found. Values are described by length and a SHA-256 prefix, never shown:
  vectors carry keys, passphrases and plaintexts, and reports are read by people and CI logs.

Directory ops: ``input.datadir`` (``old_datadir`` and ``new_datadir`` for ``upgrade_keys``) is a
listing (``pgkms_conformance.image``) written into a fresh temporary directory whose path
replaces it in the request; ``expected.datadir`` is compared with the directory afterwards; the
directory is always removed. A ``startup`` given a ``passphrase_command`` runs
``run_passphrase_command`` first (``composed``).

Without the ``inject_randomness`` capability the injected ``iv``/``ivs``/``keys`` fields are
left out and a positive test is checked by what does not depend on them: output length and a
round trip through the IUT's own unwrap (wrap ops), the shape of the key directory
(``image.shape``) and that it opens to the right keys (bootstrap, rotate). Protocol failures
of the IUT (crash, hang, garbage) propagate as ``AdapterFailure``: the caller owns the session.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, closing
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final, Literal

from jsonschema import Draft202012Validator
from pgkms.layout import WRAP_OVERHEAD

from pgkms_conformance.attribution import LENGTH_RULE, charged, code_rule, wrapped_rule
from pgkms_conformance.image import ListingJson, TempDatadir, from_json, shape, snapshot, to_json
from pgkms_conformance.protocol.client import AdapterClient, Response
from pgkms_conformance.vectors import accumulated, composed
from pgkms_conformance.vectors.canonical import vector_id
from pgkms_conformance.vectors.schemas import DIRECTORY_FIELDS
from pgkms_conformance.vectors.triage import bug_types_of

Json = dict[str, Any]
Status = Literal["passed", "failed", "unsupported"]

REPO_VECTOR_DIR: Final = Path(__file__).resolve().parents[3] / "vectors"
PROJECT_SCHEMA_DIR: Final = REPO_VECTOR_DIR / "schemas"
MANIFEST: Final = "SHA256SUMS"  # beside the vector files (``generate.Generated.manifest``)
INJECTED: Final = ("iv", "ivs", "keys")
PROTOCOL_CODES: Final = frozenset({"malformed_request", "internal_error", "unsupported_operation"})
# Fields whose values are not secret and are shown as they are.
PLAIN_FIELDS: Final = frozenset({"key_id", "decision", "file_id", "purpose", "count"})


Warn = Callable[[str], None]


class VectorFileError(Exception):
    """A vector file that is unreadable, invalid against its schema, or inconsistent."""

    def __init__(self, path: Path | str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = str(path)
        self.message = message


@dataclass(frozen=True)
class VectorFile:
    path: Path
    document: Json

    @property
    def family(self) -> str:
        return str(self.document["family"])

    def tests(self) -> Iterator[tuple[Json, Json]]:
        """Every (group, test) pair, in file order."""
        for group in self.document["testGroups"]:
            for test in group["tests"]:
                yield group, test


@dataclass(frozen=True)
class Outcome:
    """The verdict on one test. ``expected``/``found`` describe, never reveal, secret values."""

    status: Status
    tc_id: int
    test_id: str
    op: str
    comment: str
    requirements: tuple[str, ...]
    flags: tuple[str, ...] = ()
    reason: str = ""
    expected: str = ""
    found: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)
    primary: str | None = None  # a failure: the requirement it breaks (``attribution``)
    bug_types: tuple[str, ...] = ()  # ``run_file``: the test's triage, most severe first

    @property
    def charged(self) -> tuple[str, ...]:
        """The requirements a failure names, the one it is charged to first."""
        return charged(self.primary, self.requirements)

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def describe(self) -> str:
        """One line for a report."""
        head = f"tcId {self.tc_id} [{self.test_id}] {self.op}: {self.status}"
        if self.status == "failed":
            return f"{head}: {self.reason}; expected {self.expected}, found {self.found}"
        if self.reason:
            return f"{head}: {self.reason}"
        return head


# -- loading ------------------------------------------------------------------------------------


class NotAVectorFile(VectorFileError):
    """JSON that names no schema of the project's: another tool's file, not a broken vector."""


def project_schemas() -> list[str]:
    """The schema names of the project's vector families."""
    return sorted(p.name for p in PROJECT_SCHEMA_DIR.glob("*.json"))


def _schema_path(path: Path, name: str) -> Path:
    if "/" in name or "\\" in name or name.startswith("."):
        raise NotAVectorFile(path, f"schema name {name!r} must be a plain file name")
    candidate = PROJECT_SCHEMA_DIR / name
    if candidate.is_file():
        return candidate
    known = ", ".join(project_schemas()) or f"none: {PROJECT_SCHEMA_DIR} is missing"
    raise NotAVectorFile(path, f"schema {name!r} not found among the project's ({known})")


def load_vector_file(path: Path | str, trusted_text: str | None = None) -> VectorFile:
    """Read, schema-validate (with the project's schema, never one beside the file) and
    consistency-check one vector file.

    ``trusted_text`` is the file's content, read by a caller that vouches for it
    (``vector_stage``: bytes that ``vectors check`` validated): the schema is then not applied
    again; the consistency checks still are.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8") if trusted_text is None else trusted_text
        document = json.loads(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise VectorFileError(path, f"cannot read as JSON: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("schema"), str):
        raise NotAVectorFile(path, "not a vector file: no 'schema' field")
    if trusted_text is None:
        _validate_schema(path, document)
    _check_consistency(path, document)
    return VectorFile(path=path, document=document)


def _validate_schema(path: Path, document: Json) -> None:
    schema = json.loads(_schema_path(path, document["schema"]).read_text(encoding="utf-8"))
    errors = sorted(
        Draft202012Validator(schema).iter_errors(document), key=lambda e: list(e.absolute_path)
    )
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "(top level)"
        raise VectorFileError(path, f"schema violation at {where}: {first.message[:200]}")


def _check_consistency(path: Path, document: Json) -> None:
    count = 0
    notes = document["notes"]
    for group in document["testGroups"]:
        for test in group["tests"]:
            count += 1
            where = f"tcId {test['tcId']}"
            if test["tcId"] != count:
                raise VectorFileError(path, f"{where}: expected tcId {count} (1..N in file order)")
            if test["id"] != vector_id(test["op"], test["input"]):
                raise VectorFileError(path, f"{where}: id does not match its op and input")
            unexplained = [f for f in test["flags"] if f not in notes]
            if unexplained:
                raise VectorFileError(path, f"{where}: flags {unexplained} not in notes")
    if count != document["numberOfTests"]:
        raise VectorFileError(
            path, f"numberOfTests is {document['numberOfTests']}, found {count} tests"
        )


def _stderr_warning(message: str) -> None:
    sys.stderr.write(message + "\n")


def iter_vector_files(
    paths: Iterable[Path | str],
    warn: Warn | None = None,
    trusted: Callable[[Path], str | None] | None = None,
) -> Iterator[VectorFile]:
    """Load the given files; a directory stands for its ``*.json`` files in sorted order.

    In a directory, JSON that is not a vector file of the project's (``NotAVectorFile``) is
    skipped with a one-line ``warn`` (default: stderr); a file named on its own must be one.
    ``trusted`` gives a file's already-validated text, or None (``load_vector_file``)."""
    warn = warn or _stderr_warning

    def load(path: Path) -> VectorFile:
        return load_vector_file(path, trusted(path) if trusted is not None else None)

    for given in paths:
        path = Path(given)
        if path.is_dir():
            for child in sorted(path.glob("*.json")):
                try:
                    yield load(child)
                except NotAVectorFile as exc:
                    warn(f"warning: skipped {child}: {exc.message}")
        else:
            yield load(path)


# -- describing values without revealing them ---------------------------------------------------


def redact(name: str, value: Any) -> str:
    """A value as a report may show it: plain for ids and decisions, else length and hash."""
    if name in PLAIN_FIELDS or value is None or isinstance(value, bool | int):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(redact(name, v) for v in value) + "]"
    if isinstance(value, str):
        digest = hashlib.sha256(value.encode()).hexdigest()[:8]
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            return f"text of {len(value)} chars sha256:{digest}"
        return f"{len(raw)} bytes sha256:{hashlib.sha256(raw).hexdigest()[:8]}"
    return f"a {type(value).__name__}"


def listing_difference(expected: ListingJson, found: ListingJson) -> tuple[str, str] | None:
    """The first difference between two listings, described without contents."""
    for rel in sorted(set(expected) | set(found)):
        want, got = expected.get(rel), found.get(rel)
        if want is None:
            return f"no {rel}", f"{rel} present"
        if got is None:
            return f"{rel} present", f"no {rel}"
        if want.get("kind") != got.get("kind"):
            return f"{rel} {want.get('kind', 'as listed')}", f"{rel} {got.get('kind', 'as listed')}"
        if "mode" in want and want["mode"] != got.get("mode"):
            return f"{rel} mode {want['mode']:o}", f"mode {got.get('mode', 0):o}"
        if want.get("content") != got.get("content"):
            return redact("content", want.get("content")), redact("content", got.get("content"))
    return None


# An op whose failures are charged to its own rule when what differs names no more specific one.
_OWN_RULE: Final = {"upgrade_keys": "UPG_01"}

# The rule that pins the order of a directory op's random draws (keys, then IVs).
_DRAW_RULES: Final = {"bootstrap": "BOOT_03", "rotate": "ROT_03"}


def listing_rule(op: str, expected: ListingJson, found: ListingJson) -> str | None:
    """The requirement the first difference of ``listing_difference`` breaks, when it says:
    a mode (DISK_01 for a directory, DISK_09 for a file), a record's size or id (DISK_03), or
    the region of its wrapped key that differs (``attribution.wrapped_rule``; a wrong IV or
    ciphertext under injected draws is the op's draw order, BOOT_03 or ROT_03)."""
    for rel in sorted(set(expected) | set(found)):
        want, got = expected.get(rel), found.get(rel)
        if want == got:
            continue
        if want is None or got is None:
            return None  # an entry made or left wrongly: the op's own rule (first cited)
        if "mode" in want and want["mode"] != got.get("mode"):
            return "DISK_09" if "content" in want else "DISK_01"
        try:
            a, b = bytes.fromhex(want.get("content", "")), bytes.fromhex(got.get("content", ""))
        except (TypeError, ValueError):
            return None
        if len(a) != len(b) or a[:4] != b[:4]:
            return "DISK_03"
        rule = wrapped_rule(a[4:], b[4:])
        return _DRAW_RULES.get(op, rule) if rule in ("WRAP_02", "WRAP_03") else rule
    return None


# -- running -----------------------------------------------------------------------------------

_capabilities: weakref.WeakKeyDictionary[AdapterClient, frozenset[str]] = (
    weakref.WeakKeyDictionary()
)


def _capabilities_of(client: AdapterClient) -> frozenset[str]:
    if client not in _capabilities:
        _capabilities[client] = client.hello().capabilities
    return _capabilities[client]


class _Verdict(Exception):
    """A failed check, raised inside a test run and turned into an Outcome; ``rule`` is the
    requirement it breaks, when what differs says (``attribution``)."""

    def __init__(self, reason: str, expected: str, found: str, rule: str | None = None) -> None:
        super().__init__(reason)
        self.reason, self.expected, self.found, self.rule = reason, expected, found, rule


def lone_request(test: Json, capabilities: Iterable[str]) -> tuple[str, Json] | None:
    """The one request ``test`` sends, when it is nothing but that request: no directory to
    write or list, no command to run first, randomness the IUT can take, an op it offers.
    Such tests may be sent ahead, pipelined (``run_test``'s ``answered``); None for the rest."""
    op, params = test["op"], test["input"]
    caps = frozenset(capabilities)
    if op == "accumulated_wrap" or not composed.needed_ops(op, params) <= caps:
        return None
    if composed.split(op, params) is not None:
        return None
    if any(isinstance(params.get(f), dict) for f in DIRECTORY_FIELDS):
        return None
    if "inject_randomness" not in caps and any(k in params for k in INJECTED):
        return None
    return op, dict(params)


def run_test(
    client: AdapterClient,
    test: Json,
    group: Json | None = None,
    *,
    capabilities: Iterable[str] | None = None,
    answered: Response | None = None,
) -> Outcome:
    """Run one vector through the IUT behind ``client`` (``group`` is informative only).

    ``capabilities`` defaults to what the IUT's ``hello`` announced (asked once per client).
    ``answered``: the IUT's answer to the test's ``lone_request``, already sent and read
    (pipelined); the test then sends nothing itself.
    """
    caps = frozenset(capabilities) if capabilities is not None else _capabilities_of(client)
    op = test["op"]
    base = {
        "tc_id": test["tcId"],
        "test_id": test["id"],
        "op": op,
        "comment": test["comment"],
        "requirements": tuple(test["requirements"]),
        "flags": tuple(test.get("flags", ())),
    }
    if op == "accumulated_wrap":
        needed = {"wrap", "inject_randomness"}
    else:
        needed = composed.needed_ops(op, test["input"])
    missing = sorted(needed - caps)
    if missing:
        return Outcome("unsupported", reason=f"IUT lacks {', '.join(missing)}", **base)
    notes: list[str] = []
    try:
        if op == "accumulated_wrap":
            _run_accumulated(client, test)
        else:
            _run_op(client, test, caps, notes, answered)
    except _Verdict as v:
        own = _OWN_RULE.get(op)
        return Outcome(
            "failed",
            reason=v.reason,
            expected=v.expected,
            found=v.found,
            notes=tuple(notes),
            primary=v.rule or (own if own in test["requirements"] else None),
            **base,
        )
    return Outcome("passed", notes=tuple(notes), **base)


Listings = dict[str, ListingJson]


def _call_directories(client: AdapterClient, op: str, params: Json) -> tuple[Response, Listings]:
    """One request, each listing of ``params`` written into a fresh directory; the response and
    every such directory's listing afterwards (keyed by its field)."""
    fields = [f for f in DIRECTORY_FIELDS if isinstance(params.get(f), dict)]
    with ExitStack() as stack:
        roots = {f: stack.enter_context(TempDatadir(from_json(params[f]))) for f in fields}
        response = client.call(op, **{**params, **{f: str(r) for f, r in roots.items()}})
        return response, {f: to_json(snapshot(r)) for f, r in roots.items()}


def _call(client: AdapterClient, op: str, params: Json) -> tuple[Response, Listings]:
    """``_call_directories``, a command first where the vector gives one (``composed``): when
    the command fails its answer stands and the directories are listed as written."""
    split = composed.split(op, params)
    if split is None:
        return _call_directories(client, op, params)
    (command_op, command_params), rest = split
    got = client.call(command_op, **command_params)
    if not got.ok:
        listings: Listings = {}
        for f in DIRECTORY_FIELDS:
            if isinstance(rest.get(f), dict):
                with TempDatadir(from_json(rest[f])) as root:
                    listings[f] = to_json(snapshot(root))
        return got, listings
    return _call_directories(client, op, {**rest, "passphrase": got.result.get("passphrase")})


def _first_listing_difference(
    expected: Json, after: Listings
) -> tuple[str, tuple[str, str]] | None:
    """The first directory (in ``DIRECTORY_FIELDS`` order) whose listing differs from
    ``expected``, and that difference."""
    for f in DIRECTORY_FIELDS:
        if f in after and f in expected:
            diff = listing_difference(expected[f], after[f])
            if diff:
                return f, diff
    return None


def _run_op(
    client: AdapterClient,
    test: Json,
    caps: frozenset[str],
    notes: list[str],
    answered: Response | None = None,
) -> None:
    op, params, result = test["op"], dict(test["input"]), test["result"]
    expected: Json = test.get("expected", {})
    injected = [k for k in INJECTED if k in params]
    if injected and "inject_randomness" not in caps:
        for k in injected:
            del params[k]
        if result != "invalid":
            notes.append("checked without injected randomness")
            _run_uninjected(client, test, params, caps)
            return
    # A lone request (``lone_request``) lists no directory: its answer is all there is.
    response, after = (answered, {}) if answered is not None else _call(client, op, params)
    if not response.ok and response.error_code == "unsupported_operation":
        raise _Verdict("the IUT claims this op but refused it", "a result", "unsupported_operation")
    cited = test["requirements"]
    if result == "invalid":
        rule = code_rule(test["error"], cited)
        changed = _first_listing_difference(expected, after)
        if "START_04" in cited and "datadir" in expected and changed:
            rule = "START_04"  # it changed the disk: that, not the answer, comes first
        if response.ok:
            raise _Verdict(
                "accepted an input that must be rejected", test["error"], "success", rule
            )
        if response.error_code != test["error"]:
            raise _Verdict("wrong error code", test["error"], str(response.error_code), rule)
        if "PASS_10" in cited:
            _check_message_quotes_no_command(params, response)
    elif result == "acceptable" and not response.ok:
        if response.error_code in PROTOCOL_CODES:
            raise _Verdict(
                "a protocol error where either outcome is acceptable",
                "a result or a spec error code",
                str(response.error_code),
            )
        notes.append(f"rejected with {response.error_code} (acceptable)")
        return
    elif not response.ok:
        raise _Verdict(
            "rejected a valid input",
            "success",
            str(response.error_code),
            code_rule(response.error_code, cited),  # the check that fired wrongly
        )
    else:
        _compare_fields(expected, response.result, op)
    differs = _first_listing_difference(expected, after)
    if differs:
        where, diff = differs
        # A refused op must change nothing (START_04 where the vector cites it).
        if result == "invalid":
            rule = "START_04" if "START_04" in cited else None
        elif where == "datadir":
            rule = listing_rule(op, expected[where], after[where])
        else:
            rule = None  # upgrade_keys: its own rule (UPG_01), first cited
        what = "key directory" if where == "datadir" else where.replace("_", " ")
        raise _Verdict(f"{what} after the op differs", *diff, rule)


# The tokens of a command that a message must not repeat: long runs of letters and digits, the
# shape of an inline passphrase (shorter ones, such as "printf", say nothing secret).
_COMMAND_TOKEN: Final = re.compile(r"[A-Za-z0-9]{12,}")


def command_quotes_in(command: str, message: str) -> int:
    """PASS_10: how many of ``command``'s long tokens (or the whole command) ``message`` repeats."""
    quoted = sum(1 for t in _COMMAND_TOKEN.findall(command) if t in message)
    return quoted + (1 if command and command in message else 0)


def _check_message_quotes_no_command(params: Json, response: Response) -> None:
    """PASS_10: a failed command's message carries neither the command's text nor its output."""
    command = params.get("command", params.get(composed.COMMAND_FIELD, ""))
    quoted = command_quotes_in(str(command), response.error_message or "")
    if quoted:
        raise _Verdict(
            "the error message quotes the passphrase command (PASS_10)",
            "a message without the command's text",
            f"a message repeating {quoted} of its long tokens",
            "PASS_10",
        )


def _compare_fields(expected: Json, result: Json, op: str = "") -> None:
    for name, want in expected.items():
        if name in DIRECTORY_FIELDS:
            continue
        if name not in result:
            raise _Verdict(f"result lacks field {name!r}", redact(name, want), "nothing")
        if result[name] != want:
            rule = _wrapped_rule(op, want, result[name]) if name == "wrapped" else None
            raise _Verdict(
                f"field {name!r} differs", redact(name, want), redact(name, result[name]), rule
            )


def _wrapped_rule(op: str, want: Any, got: Any) -> str | None:
    """The rule a wrong wrapped value breaks, by the region that differs; for pg_wrap a wrong
    ciphertext or HMAC of the right length is the SQL key's halves (SQL_01)."""
    try:
        rule = wrapped_rule(bytes.fromhex(str(want)), bytes.fromhex(str(got)))
    except ValueError:
        return "ADP_02"  # not hex: the protocol's encoding
    if op == "sql_wrap" and rule in ("WRAP_02", "WRAP_04") and len(str(want)) == len(str(got)):
        return "SQL_01"
    return rule


def _run_accumulated(client: AdapterClient, test: Json) -> None:
    """The cases go out pipelined (``call_many``): thousands of small wraps, answered in order."""
    params = test["input"]
    sent: deque[accumulated.Case] = deque()  # cases whose answers are still to be read

    def requests() -> Iterator[tuple[str, Json]]:
        for c in accumulated.cases(params["label"], params["count"], params["maxPlaintextLength"]):
            sent.append(c)
            yield "wrap", c.request()

    h = hashlib.sha256()
    with closing(client.call_many(requests())) as responses:
        for i, response in enumerate(responses):
            c = sent.popleft()
            h.update(_accumulated_answer(i, c, response))
    want = test["expected"]["digest"]
    if h.hexdigest() != want:
        raise _Verdict("digest over all wrapped outputs differs", want, h.hexdigest())


def _accumulated_answer(i: int, c: accumulated.Case, response: Response) -> bytes:
    """Case ``i``'s wrapped value, checked for what the case alone determines."""
    if not response.ok:
        raise _Verdict(f"case {i}: wrap failed", "success", str(response.error_code))
    try:
        wrapped = bytes.fromhex(response.result["wrapped"])
    except (KeyError, TypeError, ValueError):
        raise _Verdict(f"case {i}: no hex 'wrapped' field", "wrapped", "malformed") from None
    want = WRAP_OVERHEAD + 16 * (len(c.plaintext) // 16 + 1)  # what the padding rule gives
    if len(wrapped) != want:
        found = f"{len(wrapped)} bytes"
        raise _Verdict(f"case {i}: wrapped length differs", f"{want} bytes", found, LENGTH_RULE)
    return wrapped


_UNWRAP_OF = {"wrap": "unwrap", "sql_wrap": "sql_unwrap"}


def _run_uninjected(client: AdapterClient, test: Json, params: Json, caps: frozenset[str]) -> None:
    """A positive test whose exact bytes depend on injected randomness the IUT cannot take."""
    op, expected = test["op"], test.get("expected", {})
    if op in _UNWRAP_OF:
        response, _ = _call(client, op, params)
        if not response.ok:
            raise _Verdict("rejected a valid input", "success", str(response.error_code))
        wrapped = str(response.result.get("wrapped", ""))
        if len(wrapped) != len(expected["wrapped"]):
            raise _Verdict(
                "wrapped length differs",
                redact("wrapped", expected["wrapped"]),
                redact("wrapped", wrapped),
                _wrapped_rule(op, expected["wrapped"], wrapped),
            )
        unwrap_op = _UNWRAP_OF[op]
        if unwrap_op in caps:
            keys = {k: v for k, v in params.items() if k != "plaintext"}
            back = client.call(unwrap_op, **keys, wrapped=wrapped)
            if not back.ok or back.result.get("plaintext") != params["plaintext"]:
                raise _Verdict(
                    "own output does not unwrap to the plaintext",
                    redact("plaintext", params["plaintext"]),
                    str(back.error_code) if not back.ok else redact("plaintext", back.result),
                )
        return
    if op in ("bootstrap", "rotate"):
        _run_uninjected_directory(client, test, params, caps)
        return
    raise _Verdict("needs injected randomness", "inject_randomness", "not offered")


def _run_uninjected_directory(
    client: AdapterClient, test: Json, params: Json, caps: frozenset[str]
) -> None:
    op, expected = test["op"], test["expected"]
    passphrase = params["passphrase"] if op == "bootstrap" else params["new_passphrase"]
    want_keys = params.get("keys")  # bootstrap vectors inject the keys; rotation keeps them
    with TempDatadir(from_json(params["datadir"])) as root:
        if op == "rotate" and "startup" in caps:
            with TempDatadir(from_json(params["datadir"])) as before:
                opened = client.call(
                    "startup", datadir=str(before), passphrase=params["old_passphrase"]
                )
            want_keys = opened.result.get("keys") if opened.ok else None
        response = client.call(op, **{**params, "datadir": str(root)})
        if not response.ok:
            raise _Verdict("rejected a valid input", "success", str(response.error_code))
        after = snapshot(root)
        if shape(after) != shape(from_json(expected["datadir"])):
            raise _Verdict(
                "key directory shape (paths, kinds, modes, sizes, record ids) differs",
                f"{len(expected['datadir'])} entries",
                f"{len(after)} entries",
            )
        if "startup" in caps:
            opened = client.call("startup", datadir=str(root), passphrase=passphrase)
            if not opened.ok:
                raise _Verdict("the written keys do not open", "success", str(opened.error_code))
            if op == "rotate" and want_keys is not None and opened.result.get("keys") != want_keys:
                raise _Verdict(
                    "rotation changed the internal keys",
                    redact("keys", want_keys),
                    redact("keys", opened.result.get("keys")),
                )


def run_file(
    client: AdapterClient, vector_file: VectorFile, capabilities: Iterable[str] | None = None
) -> list[Outcome]:
    """Every test of one file, in order, each with the bug types of its flags (``triage``)."""
    caps = frozenset(capabilities) if capabilities is not None else _capabilities_of(client)
    notes = vector_file.document["notes"]
    return [
        replace(
            run_test(client, t, g, capabilities=caps), bug_types=bug_types_of(t["flags"], notes)
        )
        for g, t in vector_file.tests()
    ]
