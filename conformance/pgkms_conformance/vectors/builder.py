"""Assembling a vector family, every expected value computed and checked by the reference.

A family module states each case's intent (the op, its input, and for a negative case the error
code it must produce). ``Group.add`` runs the case through the reference adapter's request
handler, in process, on a real temporary directory when the op takes one, and:

- for a negative case, insists the reference fails with exactly the intended code (a reference
  that disagrees is a bug to fix there, never a vector to write);
- for a positive case, records the reference's result fields, after checking any value the
  family module knows independently (``expected=``);
- for a directory op, records each directory's listing after the operation.

``Family.document`` numbers the tests, computes their ids, and refuses to emit a file in which a
test names no requirement, cites an ID of an unknown area, or carries an unexplained flag; every
flag's note carries its bug type and effect (``triage``).
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, Final

from pgkms.tools.adapter import handle_line

from pgkms_conformance.ids import CITABLE_ID_RE
from pgkms_conformance.image import ListingJson, TempDatadir, from_json, snapshot, to_json
from pgkms_conformance.vectors import composed, triage
from pgkms_conformance.vectors.canonical import vector_id
from pgkms_conformance.vectors.schemas import DIRECTORY_FIELDS

Listings = dict[str, ListingJson]

REQUIREMENT_ID: Final = CITABLE_ID_RE
RESULTS: Final = ("valid", "invalid", "acceptable")
VERSION: Final = "1"
GENERATOR: Final = "pgkms-conformance vectors generate"


class GeneratorError(Exception):
    """The reference disagrees with a case's stated intent, or a family is malformed."""


def _call_directories(op: str, params: dict[str, Any]) -> tuple[dict[str, Any], Listings]:
    """One request, each directory listing of ``params`` written into a fresh directory; the
    response and the listing of every such directory afterwards."""
    fields = [f for f in DIRECTORY_FIELDS if isinstance(params.get(f), dict)]
    with ExitStack() as stack:
        roots = {f: stack.enter_context(TempDatadir(from_json(params[f]))) for f in fields}
        request = {"id": 0, "op": op, **params, **{f: str(r) for f, r in roots.items()}}
        response, _ = handle_line(json.dumps(request))
        return response, {f: to_json(snapshot(r)) for f, r in roots.items()}


def as_written(params: dict[str, Any]) -> Listings:
    """The listing of each directory of ``params`` as written, with no operation run on it."""
    listings: Listings = {}
    for f in DIRECTORY_FIELDS:
        if isinstance(params.get(f), dict):
            with TempDatadir(from_json(params[f])) as root:
                listings[f] = to_json(snapshot(root))
    return listings


def call_reference(op: str, params: dict[str, Any]) -> tuple[dict[str, Any], Listings]:
    """Run one request through the reference adapter; return its response and, for a directory
    op, the listing of each data directory afterwards (keyed by the request's field).

    A ``startup`` given a ``passphrase_command`` instead of a passphrase runs the command first
    (``composed``), as the server does."""
    split = composed.split(op, params)
    if split is None:
        return _call_directories(op, params)
    (command_op, command_params), rest = split
    got, _ = _call_directories(command_op, command_params)
    if not got["ok"]:
        return got, as_written(rest)
    return _call_directories(op, {**rest, "passphrase": got["result"]["passphrase"]})


@dataclass
class Group:
    type: str
    comment: str
    tests: list[dict[str, Any]] = field(default_factory=list)
    # fields every test of the group shares (e.g. the crash model), written after the comment;
    # the family's ``group_fields`` types them in its schema
    fields: dict[str, Any] = field(default_factory=dict)

    def add(
        self,
        op: str,
        params: dict[str, Any],
        *,
        comment: str,
        requirements: list[str],
        flags: list[str] | None = None,
        error: str | None = None,
        expected: dict[str, Any] | None = None,
        result: str | None = None,
    ) -> dict[str, Any]:
        """Add one test; returns the reference's result fields (empty for a negative case)."""
        response, after = call_reference(op, params)
        test: dict[str, Any] = {
            "comment": comment,
            "flags": sorted(flags or []),
            "requirements": sorted(set(requirements)),
            "op": op,
            "input": params,
        }
        where = f"{self.type}: {comment}"
        if error is not None:
            found = None if response["ok"] else response["error"]["code"]
            if found != error:
                raise GeneratorError(f"{where}: intended error {error}, reference gave {found}")
            test["result"] = result or "invalid"
            if after:
                test["expected"] = dict(after)
            test["error"] = error
            self.tests.append(test)
            return {}
        if not response["ok"]:
            code = response["error"]["code"]
            raise GeneratorError(f"{where}: intended success, reference failed with {code}")
        got: dict[str, Any] = dict(response["result"])
        for name, value in (expected or {}).items():
            found = after[name] if name in after else got.get(name)
            if found != value:
                raise GeneratorError(f"{where}: reference's {name!r} differs from the known value")
        test["result"] = result or "valid"
        test["expected"] = {**got, **after}
        self.tests.append(test)
        return got

    def add_precomputed(
        self,
        op: str,
        params: dict[str, Any],
        *,
        comment: str,
        requirements: list[str],
        flags: list[str],
        expected: dict[str, Any],
    ) -> None:
        """Add a pseudo-op test whose expected value the family computed with the reference
        itself (the adapter has no such op)."""
        self.tests.append(
            {
                "comment": comment,
                "flags": sorted(flags),
                "requirements": sorted(set(requirements)),
                "op": op,
                "input": params,
                "result": "valid",
                "expected": expected,
            }
        )


@dataclass
class Family:
    """A family's file: ``notes`` describes each flag, ``triage`` gives its bug type and the
    effect of failing it (``triage.note``)."""

    name: str
    header: list[str]
    notes: dict[str, str]
    triage: dict[str, tuple[str, str]] = field(default_factory=dict)
    groups: list[Group] = field(default_factory=list)
    # JSON Schema of the groups' own ``fields`` (``schemas.family_schema``)
    group_fields: dict[str, Any] = field(default_factory=dict)

    def group(self, type_: str, comment: str, fields: dict[str, Any] | None = None) -> Group:
        g = Group(type_, comment, fields=dict(fields or {}))
        self.groups.append(g)
        return g

    def document(self) -> dict[str, Any]:
        """The vector file's content; checks every test's requirements, flags and id."""
        tc_id = 0
        seen: dict[str, int] = {}
        used_flags: set[str] = set()
        groups_out = []
        for g in self.groups:
            tests_out = []
            for t in g.tests:
                tc_id += 1
                where = f"{self.name} tcId {tc_id} ({t['comment']})"
                if not t["requirements"]:
                    raise GeneratorError(f"{where}: names no requirement")
                bad = [r for r in t["requirements"] if not REQUIREMENT_ID.match(r)]
                if bad:
                    raise GeneratorError(f"{where}: unknown requirement id(s) {bad}")
                missing = [f for f in t["flags"] if f not in self.notes]
                if missing:
                    raise GeneratorError(f"{where}: flag(s) {missing} not explained in notes")
                if t["result"] not in RESULTS:
                    raise GeneratorError(f"{where}: result {t['result']!r}")
                used_flags.update(t["flags"])
                ident = vector_id(t["op"], t["input"])
                if ident in seen:
                    raise GeneratorError(f"{where}: same op and input as tcId {seen[ident]}")
                seen[ident] = tc_id
                tests_out.append({"tcId": tc_id, "id": ident, **t})
            groups_out.append(
                {"type": g.type, "comment": g.comment, **g.fields, "tests": tests_out}
            )
        unused = sorted(set(self.notes) - used_flags)
        if unused:
            raise GeneratorError(f"{self.name}: notes explain unused flag(s) {unused}")
        untriaged = sorted(set(self.notes) ^ set(self.triage))
        if untriaged:
            raise GeneratorError(f"{self.name}: flag(s) {untriaged} lack a note or a triage")
        try:
            notes = {
                flag: triage.note(*self.triage[flag], description)
                for flag, description in sorted(self.notes.items())
            }
        except triage.TriageError as exc:
            raise GeneratorError(f"{self.name}: {exc}") from None
        return {
            "schema": f"{self.name}_schema.json",
            "version": VERSION,
            "family": self.name,
            "generator": GENERATOR,
            "numberOfTests": tc_id,
            "header": self.header,
            "notes": notes,
            "testGroups": groups_out,
        }
