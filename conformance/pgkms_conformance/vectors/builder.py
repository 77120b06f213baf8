"""Assembling a vector family, every expected value computed and checked by the reference.

A family module states each case's intent (the op, its input, and for a negative case the error
code it must produce). ``Group.add`` runs the case through the reference adapter's request
handler, in process, on a real temporary directory when the op takes one, and:

- for a negative case, insists the reference fails with exactly the intended code (a reference
  that disagrees is a bug to fix there, never a vector to write);
- for a positive case, records the reference's result fields, after checking any value the
  family module knows independently (``expected=``);
- for a directory op, records the directory's listing after the operation.

``Family.document`` numbers the tests, computes their ids, and refuses to emit a file in which a
test names no requirement, cites an ID of an unknown area, or carries an unexplained flag.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Final

from pgkms.tools.adapter import handle_line

from pgkms_conformance.ids import CITABLE_ID_RE
from pgkms_conformance.image import ListingJson, TempDatadir, from_json, snapshot, to_json
from pgkms_conformance.vectors.canonical import vector_id

REQUIREMENT_ID: Final = CITABLE_ID_RE
RESULTS: Final = ("valid", "invalid", "acceptable")
VERSION: Final = "1"
GENERATOR: Final = "pgkms-conformance vectors generate"


class GeneratorError(Exception):
    """The reference disagrees with a case's stated intent, or a family is malformed."""


def call_reference(op: str, params: dict[str, Any]) -> tuple[dict[str, Any], ListingJson | None]:
    """Run one request through the reference adapter; return its response and, for a directory
    op, the listing of the data directory afterwards."""
    if isinstance(params.get("datadir"), dict):
        with TempDatadir(from_json(params["datadir"])) as root:
            line = json.dumps({"id": 0, "op": op, **params, "datadir": str(root)})
            response, _ = handle_line(line)
            return response, to_json(snapshot(root))
    response, _ = handle_line(json.dumps({"id": 0, "op": op, **params}))
    return response, None


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
            if after is not None:
                test["expected"] = {"datadir": after}
            test["error"] = error
            self.tests.append(test)
            return {}
        if not response["ok"]:
            code = response["error"]["code"]
            raise GeneratorError(f"{where}: intended success, reference failed with {code}")
        got: dict[str, Any] = dict(response["result"])
        for name, value in (expected or {}).items():
            found = after if name == "datadir" else got.get(name)
            if found != value:
                raise GeneratorError(f"{where}: reference's {name!r} differs from the known value")
        test["result"] = result or "valid"
        test["expected"] = {**got, **({"datadir": after} if after is not None else {})}
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
    name: str
    header: list[str]
    notes: dict[str, str]
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
        return {
            "schema": f"{self.name}_schema.json",
            "version": VERSION,
            "family": self.name,
            "generator": GENERATOR,
            "numberOfTests": tc_id,
            "header": self.header,
            "notes": dict(sorted(self.notes.items())),
            "testGroups": groups_out,
        }
