"""Requirement traceability: every spec requirement is checked by a test or a vector.

Theory of operation. The specification defines the requirements (``.. req::`` items with an
``:id:``), the assumptions they hold under (``.. assumption::``, the crash model's), the
security findings (``.. finding::``) and the deviations (``.. deviation::``) in
``spec/**/*.rst``. An assumption is defined and cited like a requirement, but it is not a rule
an implementation follows, so it needs no test or vector. This module reads those sources
directly, so the check needs no Sphinx build. It then collects *citations* of identifiers:

- tests (``tests/**/*.py``): the arguments of ``pytest.mark.req(...)`` anywhere in a module
  (on a test, a class, a ``pytest.param`` or ``pytestmark``), and identifiers in the docstrings
  of test functions (``test*``) and test classes (``Test*``); these count as coverage (a marker
  may also name a finding or deviation it demonstrates). A module's docstring, a helper's
  docstring, a comment or a string elsewhere is checked for existence but never counted: it
  describes a test, it does not check anything;
- vectors (``vectors/**/*.json``): every ``requirements`` list of string identifiers, usually
  one per test; these count as coverage;
- implementations (``reference/**/*.py``, ``conformance/**/*.py``): identifiers anywhere in
  the text; reported, never counted as coverage;
- prose (``spec/**/*.rst``, ``docs/**/*.rst``): identifiers anywhere; checked for existence.

A range written ``AREA_NN..AREA_MM`` or ``AREA_NN..MM`` cites every identifier in it.

The check fails when a requirement has no test and no vector, when any file cites an identifier
of the citation pattern that the spec does not define, or when a ``req`` marker argument is not
an identifier at all. Unknown ``SEC_*`` / ``DEV_*`` names are warnings, not failures: only the
requirement identifiers are a stable contract, and a finding or deviation may be cited before
its entry is written.

Exit status of the command: 0 when the check passes, 1 when it fails, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

from pgkms_conformance.ids import AREAS

CITATION_RE: Final = re.compile(rf"\b(?:{AREAS})_\d{{2}}\b")
RANGE_RE: Final = re.compile(rf"\b({AREAS})_(\d{{2}})\s*\.\.\s*(?:(?:{AREAS})_)?(\d{{2}})\b")
NAMED_RE: Final = re.compile(r"\b(?:SEC|DEV)_[A-Z][A-Z0-9_]*[A-Z0-9]\b")
ID_RE: Final = re.compile(rf"^(?:{AREAS})_\d{{2}}$")
MAX_RANGE: Final = 30  # a longer "range" is a typo, not a citation of thirty requirements

DIRECTIVE_RE: Final = re.compile(r"^(\s*)\.\.\s+(req|assumption|finding|deviation)::\s*(.*)$")
OPTION_RE: Final = re.compile(r"^\s+:([a-z_]+):\s*(.*)$")

Kind = Literal["req", "assumption", "finding", "deviation"]
NUMBERED: Final[frozenset[str]] = frozenset({"req", "assumption"})  # kinds with AREA_NN ids
Source = Literal["test", "vector", "implementation", "prose"]
SKIP_DIRS: Final = frozenset({"_build", ".venv", ".nox", "__pycache__", ".git", "node_modules"})


@dataclass(frozen=True)
class Definition:
    """One spec item: a requirement, an assumption, a finding or a deviation."""

    id: str
    kind: Kind
    title: str
    path: str
    line: int


@dataclass(frozen=True)
class Citation:
    """One mention of an identifier. ``where`` is a test node id, a vector id or ``path:line``."""

    id: str
    source: Source
    where: str
    path: str
    line: int


@dataclass
class Report:
    """Definitions, citations and what is wrong with them."""

    definitions: list[Definition]
    citations: list[Citation]
    problems: list[str] = field(default_factory=list)  # fatal: malformed input, duplicate ids

    @property
    def defined(self) -> dict[str, Definition]:
        return {d.id: d for d in self.definitions}

    @property
    def requirements(self) -> list[Definition]:
        return sorted((d for d in self.definitions if d.kind == "req"), key=_id_key)

    def _cited(self, req_id: str, source: Source) -> list[str]:
        return sorted({c.where for c in self.citations if c.id == req_id and c.source == source})

    def tests_for(self, req_id: str) -> list[str]:
        return self._cited(req_id, "test")

    def vectors_for(self, req_id: str) -> list[str]:
        return self._cited(req_id, "vector")

    def implementation_for(self, req_id: str) -> list[str]:
        return sorted(
            {c.path for c in self.citations if c.id == req_id and c.source == "implementation"}
        )

    @property
    def uncovered(self) -> list[str]:
        covered = {c.id for c in self.citations if c.source in ("test", "vector")}
        return [d.id for d in self.requirements if d.id not in covered]

    @property
    def unknown(self) -> list[Citation]:
        """Citations of the requirement pattern that no requirement or assumption defines
        (fatal)."""
        defined = {d.id for d in self.definitions if d.kind in NUMBERED}
        return [c for c in self.citations if ID_RE.match(c.id) and c.id not in defined]

    @property
    def unknown_named(self) -> list[Citation]:
        """Citations of SEC_/DEV_ names that no finding or deviation defines (warnings)."""
        defined = {d.id for d in self.definitions if d.kind not in NUMBERED}
        return [c for c in self.citations if not ID_RE.match(c.id) and c.id not in defined]

    @property
    def ok(self) -> bool:
        return not (self.uncovered or self.unknown or self.problems)

    def to_json(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "requirements": {
                d.id: {
                    "title": d.title,
                    "defined_in": f"{d.path}:{d.line}",
                    "tests": self.tests_for(d.id),
                    "vectors": self.vectors_for(d.id),
                    "implementation": self.implementation_for(d.id),
                }
                for d in self.requirements
            },
            "uncovered": self.uncovered,
            "unknown": sorted({f"{c.id} ({c.path}:{c.line})" for c in self.unknown}),
            "unknown_named": sorted({f"{c.id} ({c.path}:{c.line})" for c in self.unknown_named}),
            "problems": self.problems,
        }


def _id_key(d: Definition) -> tuple[str, str]:
    area, _, number = d.id.rpartition("_")
    return (area, number.zfill(4))


# --- reading the spec ---------------------------------------------------------------------------


def _files(root: Path, top: str, suffix: str) -> Iterator[Path]:
    base = root / top
    if not base.is_dir():
        return
    for path in sorted(base.rglob(f"*{suffix}")):
        if not SKIP_DIRS.intersection(path.relative_to(root).parts) and path.is_file():
            yield path


def _rel(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


KINDS: Final[dict[str, Kind]] = {
    "req": "req",
    "assumption": "assumption",
    "finding": "finding",
    "deviation": "deviation",
}


def _well_formed(kind: str, item_id: str) -> bool:
    """Requirements and assumptions are AREA_NN; findings SEC_<NAME>; deviations DEV_<NAME>."""
    if kind in NUMBERED:
        return bool(ID_RE.match(item_id))
    prefix = "SEC_" if kind == "finding" else "DEV_"
    return item_id.startswith(prefix) and bool(NAMED_RE.fullmatch(item_id))


def read_definitions(root: Path, problems: list[str]) -> list[Definition]:
    """Parse the ``req``, ``assumption``, ``finding`` and ``deviation`` directives of
    ``spec/**/*.rst``."""
    found: list[Definition] = []
    for path in _files(root, "spec", ".rst"):
        lines = path.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, start=1):
            match = DIRECTIVE_RE.match(line)
            if not match:
                continue
            indent, kind, title = len(match.group(1)), match.group(2), match.group(3).strip()
            item_id = None
            for option in lines[number:]:
                opt = OPTION_RE.match(option)
                if not opt or len(option) - len(option.lstrip()) <= indent:
                    break
                if opt.group(1) == "id":
                    item_id = opt.group(2).strip()
            where = f"{_rel(root, path)}:{number}"
            if item_id is None:
                problems.append(f"{where}: {kind} directive without an :id: option")
                continue
            if not _well_formed(kind, item_id):
                problems.append(f"{where}: {kind} id {item_id!r} is not of the right form")
                continue
            found.append(Definition(item_id, KINDS[kind], title, _rel(root, path), number))
    seen: dict[str, Definition] = {}
    for d in found:
        if d.id in seen:
            problems.append(
                f"{d.path}:{d.line}: {d.id} is defined again "
                f"(first at {seen[d.id].path}:{seen[d.id].line})"
            )
        seen.setdefault(d.id, d)
    return found


# --- finding identifiers in text -----------------------------------------------------------------


def ids_in_text(text: str) -> list[str]:
    """Every identifier cited in ``text``, ranges expanded, in order of appearance."""
    out: list[str] = []
    for match in RANGE_RE.finditer(text):
        area, first, last = match.group(1), int(match.group(2)), int(match.group(3))
        if first < last <= first + MAX_RANGE:  # the ends themselves are found below too
            out.extend(f"{area}_{n:02d}" for n in range(first + 1, last + 1))
    out.extend(CITATION_RE.findall(text))
    out.extend(NAMED_RE.findall(text))
    return out


def _line_citations(root: Path, path: Path, source: Source) -> Iterator[Citation]:
    rel = _rel(root, path)
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        for item_id in ids_in_text(line):
            yield Citation(item_id, source, f"{rel}:{number}", rel, number)


# --- tests ---------------------------------------------------------------------------------------


def _is_req_marker(func: ast.expr) -> bool:
    """``pytest.mark.req`` or ``mark.req`` (however ``pytest`` was imported)."""
    return (
        isinstance(func, ast.Attribute)
        and func.attr == "req"
        and (
            (isinstance(func.value, ast.Attribute) and func.value.attr == "mark")
            or (isinstance(func.value, ast.Name) and func.value.id == "mark")
        )
    )


def _is_test_item(node: ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """A test function or a test class by pytest's default naming rules."""
    if isinstance(node, ast.ClassDef):
        return node.name.startswith("Test")
    return node.name.startswith("test")


class _TestVisitor(ast.NodeVisitor):
    """Attributes marker arguments, and ids in the docstrings of test functions and classes, to
    the enclosing test (markers at module level: to the module)."""

    def __init__(self, module: str) -> None:
        self.module = module
        self.scope: list[str] = []
        self.found: list[tuple[str, str, int]] = []  # (id, where, line)
        self.problems: list[str] = []

    def _where(self) -> str:
        return "::".join([self.module, *self.scope])

    def _docstring(self, node: ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        """Count the docstring's ids for a test function or class; any other docstring (a
        helper's, a fixture's) is left to the existence check."""
        if not _is_test_item(node):
            return
        doc = ast.get_docstring(node, clean=False)
        if doc:
            line = node.body[0].lineno if node.body else 1
            for item_id in ids_in_text(doc):
                self.found.append((item_id, self._where(), line))

    def _visit_scope(self, node: ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for decorator in node.decorator_list:  # decorators belong to the item they decorate
            self.scope.append(node.name)
            self.visit(decorator)
            self.scope.pop()
        self.scope.append(node.name)
        self._docstring(node)
        for child in node.body:
            self.visit(child)
        self.scope.pop()

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._visit_scope(node)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._visit_scope(node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self._visit_scope(node)

    def visit_Call(self, node: ast.Call) -> None:
        if _is_req_marker(node.func):
            for arg in node.args:
                if (
                    isinstance(arg, ast.Constant)
                    and isinstance(arg.value, str)
                    and (ID_RE.match(arg.value) or NAMED_RE.fullmatch(arg.value))
                ):
                    self.found.append((arg.value, self._where(), node.lineno))
                else:
                    shown = ast.unparse(arg)
                    self.problems.append(
                        f"{self.module}:{node.lineno}: req marker argument {shown} is not a "
                        "requirement identifier string (AREA_NN, or SEC_/DEV_ names)"
                    )
        self.generic_visit(node)


def test_citations(root: Path, problems: list[str]) -> Iterator[Citation]:
    """Citations by tests: marker arguments and docstrings, attributed to the test."""
    for path in _files(root, "tests", ".py"):
        rel = _rel(root, path)
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=rel)
        except SyntaxError as exc:
            problems.append(f"{rel}:{exc.lineno}: cannot parse: {exc.msg}")
            continue
        visitor = _TestVisitor(rel)
        visitor.visit(tree)
        problems.extend(visitor.problems)
        for item_id, where, line in visitor.found:
            yield Citation(item_id, "test", where, rel, line)
        # Any other mention (a comment, a string) is checked for existence, not counted.
        counted = {(i, line) for i, _, line in visitor.found}
        for c in _line_citations(root, path, "prose"):
            if (c.id, c.line) not in counted:
                yield c


# --- vectors -------------------------------------------------------------------------------------


def _vector_requirements(doc: object, label: str) -> Iterator[tuple[str, str]]:
    """(id, where) for each ``requirements`` list; ``where`` names the test by its tcId."""
    if isinstance(doc, dict):
        reqs = doc.get("requirements")
        here = f"{label}#{doc['tcId']}" if "tcId" in doc else label
        if isinstance(reqs, list):
            for item in reqs:
                if isinstance(item, str):
                    yield item, here
        for key, value in doc.items():
            if key != "requirements":
                yield from _vector_requirements(value, here)
    elif isinstance(doc, list):
        for value in doc:
            yield from _vector_requirements(value, label)


def vector_citations(root: Path, problems: list[str]) -> Iterator[Citation]:
    for path in _files(root, "vectors", ".json"):
        rel = _rel(root, path)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            problems.append(f"{rel}: not valid JSON: {exc}")
            continue
        for item_id, where in _vector_requirements(doc, rel):
            if not (ID_RE.match(item_id) or NAMED_RE.fullmatch(item_id)):
                problems.append(f"{where}: requirement {item_id!r} is not an identifier")
                continue
            yield Citation(item_id, "vector", where, rel, 0)


# --- the whole check -----------------------------------------------------------------------------


def collect_citations(root: Path, problems: list[str]) -> list[Citation]:
    citations: list[Citation] = []
    citations.extend(test_citations(root, problems))
    citations.extend(vector_citations(root, problems))
    for top in ("reference", "conformance"):
        for path in _files(root, top, ".py"):
            citations.extend(_line_citations(root, path, "implementation"))
    for top in ("spec", "docs"):
        for path in _files(root, top, ".rst"):
            citations.extend(_line_citations(root, path, "prose"))
    return citations


def check(root: Path) -> Report:
    """Run the whole check on the repository at ``root``."""
    problems: list[str] = []
    definitions = read_definitions(root, problems)
    if not any(d.kind == "req" for d in definitions):
        problems.append(f"{root / 'spec'}: no requirement (.. req:: with :id:) found")
    citations = collect_citations(root, problems)
    return Report(definitions, citations, problems)


def _places_by_id(citations: Iterable[Citation]) -> list[tuple[str, str]]:
    """(id, its distinct places as one sorted comma-separated string), by id."""
    by_id: dict[str, set[str]] = defaultdict(set)
    for c in citations:
        by_id[c.id].add(f"{c.path}:{c.line}" if c.line else c.where)
    return [(item_id, ", ".join(sorted(places))) for item_id, places in sorted(by_id.items())]


def render_text(report: Report, verbose: bool = False) -> Iterable[str]:
    reqs = report.requirements
    uncovered = report.uncovered
    yield (
        f"{len(reqs)} requirements, {len(reqs) - len(uncovered)} covered by a test or vector, "
        f"{len(uncovered)} uncovered; "
        f"{sum(1 for d in report.definitions if d.kind == 'assumption')} assumptions, "
        f"{sum(1 for d in report.definitions if d.kind == 'finding')} findings, "
        f"{sum(1 for d in report.definitions if d.kind == 'deviation')} deviations"
    )
    if verbose:
        for d in reqs:
            tests, vectors = report.tests_for(d.id), report.vectors_for(d.id)
            yield f"  {d.id}: {len(tests)} tests, {len(vectors)} vectors"
            for test in tests:
                yield f"    {test}"
    if uncovered:
        yield "FAIL: requirements with no test and no vector: " + ", ".join(uncovered)
    for item_id, places in _places_by_id(report.unknown):
        yield f"FAIL: {item_id} is cited but not defined by the spec: {places}"
    for problem in report.problems:
        yield f"FAIL: {problem}"
    for item_id, places in _places_by_id(report.unknown_named):
        yield f"warning: {item_id} is cited but no finding/deviation defines it: {places}"
    yield "trace check passed" if report.ok else "trace check FAILED"


DESCRIPTION: Final = (
    "Check that every spec requirement is cited by a test or a vector, and that no file cites "
    "an identifier the spec does not define."
)


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the trace arguments (``pgkms-conformance trace`` and ``python -m``)."""
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="repository root")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the report as JSON")
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="per requirement: its counts, then the tests citing it",
    )


def run(args: argparse.Namespace) -> int:
    """Run the check; 0 passed, 1 failed, 2 no spec directory under ``--root``."""
    if not (args.root / "spec").is_dir():
        sys.stderr.write(
            f"pgkms-conformance trace: error: {args.root / 'spec'}: no such directory\n"
        )
        return 2
    report = check(args.root)
    for line in render_text(report, args.verbose):
        print(line)
    if args.json:
        args.json.write_text(json.dumps(report.to_json(), indent=2, sort_keys=True) + "\n", "utf-8")
    return 0 if report.ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pgkms-conformance trace", description=DESCRIPTION)
    configure(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
