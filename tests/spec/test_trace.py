"""The traceability check (``pgkms_conformance.trace``): on the repository, on synthetic trees."""

from __future__ import annotations

import ast
import json
import textwrap
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pgkms_conformance import ids, trace

REPO = Path(__file__).resolve().parents[2]
# Identifiers the spec does not define, assembled so that this file does not itself cite them
# (the check scans every test file, comments and strings included).
UNKNOWN_WRAP, UNKNOWN_KDF, UNKNOWN_SQL = "WRAP" + "_09", "KDF" + "_02", "SQL" + "_07"
UNKNOWN_SEC = "SEC" + "_NOPE"

# The requirement IDs of v1: the lead's pinned list, plus the ids split off compound requirements
# (PASS_11 from PASS_06, DISK_08 from DISK_03, ERR_02 from ERR_01, DISK_09 from DISK_02). The
# spec must define every one of them, with exactly these numbers.
PINNED = {
    "PASS": 11, "KDF": 1, "WRAP": 8, "KEY": 3, "DISK": 9, "BOOT": 5, "START": 4, "SQL": 4,
    "ROT": 8, "REC": 6, "UPG": 1, "ERR": 2, "ADP": 6, "CONC": 3, "ENV": 5,
}  # fmt: skip


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


SPEC = """\
    Chapter
    =======

    .. req:: First rule
       :id: WRAP_01
       :status: pinned

       Text.

    .. req:: Second rule
       :id: WRAP_02
       :status: pinned

    .. finding:: A weakness
       :id: SEC_IV
       :status: format
    """

TESTS = '''\
    import pytest

    @pytest.mark.req("WRAP_01")
    def test_one():
        pass

    def test_two():
        """Checks WRAP_02."""
    '''


def _tree(tmp_path: Path, **overrides: str) -> Path:
    files = {"spec/chapters/a.rst": SPEC, "tests/test_a.py": TESTS}
    files.update({k.replace("__", "/").replace("_DOT_", "."): v for k, v in overrides.items()})
    return _write(tmp_path, files)


# --- the repository ---------------------------------------------------------------------------


def test_repo_spec_defines_exactly_the_pinned_requirements() -> None:
    report = trace.check(REPO)
    assert report.problems == []
    defined = {d.id for d in report.requirements}
    for area, count in PINNED.items():
        expected = {f"{area}_{n:02d}" for n in range(1, count + 1)}
        assert {i for i in defined if i.startswith(f"{area}_")} == expected, area


def test_repo_cites_no_unknown_identifier() -> None:
    report = trace.check(REPO)
    assert [f"{c.id} at {c.where}" for c in report.unknown] == []
    assert [f"{c.id} at {c.where}" for c in report.unknown_named] == []


def test_repo_exit_status_agrees_with_the_report(capsys: pytest.CaptureFixture[str]) -> None:
    report = trace.check(REPO)
    status = trace.main(["--root", str(REPO)])
    out = capsys.readouterr().out
    assert status == (0 if report.ok else 1)
    for req_id in report.uncovered:  # every uncovered requirement is named in the output
        assert req_id in out


def test_repo_spec_cites_tests_that_exist() -> None:
    """Every ``tests/...::name`` the spec cites (security findings, demonstrations) exists."""
    cited: set[str] = set()
    for chapter in sorted((REPO / "spec").rglob("*.rst")):
        words = chapter.read_text(encoding="utf-8").split()
        cited |= {w.strip("`,.;") for w in words if w.startswith("``tests/") and "::" in w}
    assert len(cited) >= 10, "the security chapter should cite its demonstrations"
    missing = []
    for node_id in sorted(cited):
        path, name = node_id.split("::", 1)
        source = REPO / path
        tree = ast.parse(source.read_text(encoding="utf-8")) if source.is_file() else None
        names = (
            {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)} if tree else set()
        )
        if name not in names:
            missing.append(node_id)
    assert missing == []


# --- synthetic trees ---------------------------------------------------------------------------


def test_passes_when_every_requirement_is_cited(tmp_path: Path) -> None:
    report = trace.check(_tree(tmp_path))
    assert report.ok, list(trace.render_text(report))
    assert report.tests_for("WRAP_01") == ["tests/test_a.py::test_one"]
    assert report.tests_for("WRAP_02") == ["tests/test_a.py::test_two"]
    assert trace.main(["--root", str(tmp_path)]) == 0


def test_fails_when_a_requirement_loses_its_last_test(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _tree(tmp_path, tests__test_a_DOT_py=TESTS.replace('"""Checks WRAP_02."""', "pass"))
    report = trace.check(root)
    assert report.uncovered == ["WRAP_02"]
    assert trace.main(["--root", str(root)]) == 1
    assert "requirements with no test and no vector: WRAP_02" in capsys.readouterr().out


def test_implementation_citations_do_not_count_as_coverage(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        tests__test_a_DOT_py=TESTS.replace('"""Checks WRAP_02."""', "pass"),
        reference__pkg__mod_DOT_py="# implements WRAP_02\n",
    )
    report = trace.check(root)
    assert report.implementation_for("WRAP_02") == ["reference/pkg/mod.py"]
    assert report.uncovered == ["WRAP_02"]


def test_a_vector_counts_as_coverage(tmp_path: Path) -> None:
    vector = {"testGroups": [{"tests": [{"tcId": 7, "requirements": ["WRAP_02"]}]}]}
    root = _tree(
        tmp_path,
        tests__test_a_DOT_py=TESTS.replace('"""Checks WRAP_02."""', "pass"),
        vectors__wrap_DOT_json=json.dumps(vector),
    )
    report = trace.check(root)
    assert report.ok
    assert report.vectors_for("WRAP_02") == ["vectors/wrap.json#7"]


@pytest.mark.parametrize(
    ("path", "text"),
    [
        (
            "tests/test_b.py",
            f'import pytest\n\n@pytest.mark.req("{UNKNOWN_WRAP}")\ndef t(): pass\n',
        ),
        ("tests/test_b.py", f"# see {UNKNOWN_KDF}\n"),
        ("reference/pkg/mod.py", '"""Implements DISK_03..05."""\n'),
        ("vectors/v.json", f'{{"tests": [{{"tcId": 1, "requirements": ["{UNKNOWN_SQL}"]}}]}}'),
        ("docs/guide.rst", "See ROT_01.\n"),
    ],
)
def test_fails_on_a_citation_of_an_unknown_identifier(
    tmp_path: Path, path: str, text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _tree(tmp_path)
    _write(root, {path: text})
    report = trace.check(root)
    assert report.unknown, "the unknown identifier was not noticed"
    assert trace.main(["--root", str(root)]) == 1
    out = capsys.readouterr().out
    assert "is cited but not defined by the spec" in out
    assert path in out


def test_unknown_finding_names_are_warnings_only(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    _write(root, {"reference/pkg/mod.py": f"# see {UNKNOWN_SEC} and SEC_IV\n"})
    report = trace.check(root)
    assert [c.id for c in report.unknown_named] == [UNKNOWN_SEC]
    assert report.ok


def test_marker_forms_module_class_and_param(tmp_path: Path) -> None:
    tests = """\
        import pytest
        from pytest import mark

        pytestmark = pytest.mark.req("WRAP_01")

        class TestGroup:
            @mark.req("WRAP_02")
            def test_in_class(self):
                pass

        @pytest.mark.parametrize("x", [pytest.param(1, marks=pytest.mark.req("WRAP_02"))])
        def test_param(x):
            pass
        """
    report = trace.check(_tree(tmp_path, tests__test_a_DOT_py=tests))
    assert report.tests_for("WRAP_01") == ["tests/test_a.py"]
    assert report.tests_for("WRAP_02") == [
        "tests/test_a.py::TestGroup::test_in_class",
        "tests/test_a.py::test_param",
    ]


def test_comments_in_tests_are_checked_but_not_counted(tmp_path: Path) -> None:
    tests = "def test_x():\n    pass  # WRAP_01 WRAP_02\n"
    report = trace.check(_tree(tmp_path, tests__test_a_DOT_py=tests))
    assert report.uncovered == ["WRAP_01", "WRAP_02"]


def test_module_and_helper_docstrings_are_checked_but_not_counted(tmp_path: Path) -> None:
    tests = '''\
        """Tests of WRAP_01 and WRAP_02."""

        def _helper():
            """Builds a WRAP_02 input."""

        class Helper:
            """Holds WRAP_01 state."""

        def test_x():
            pass
        '''
    report = trace.check(_tree(tmp_path, tests__test_a_DOT_py=tests))
    assert report.uncovered == ["WRAP_01", "WRAP_02"]
    assert report.unknown == []


def test_docstrings_of_test_functions_and_classes_count(tmp_path: Path) -> None:
    tests = '''\
        class TestGroup:
            """Checks WRAP_01."""

            def test_in_class(self):
                """And WRAP_02."""
        '''
    report = trace.check(_tree(tmp_path, tests__test_a_DOT_py=tests))
    assert report.tests_for("WRAP_01") == ["tests/test_a.py::TestGroup"]
    assert report.tests_for("WRAP_02") == ["tests/test_a.py::TestGroup::test_in_class"]
    assert report.ok


def test_verbose_listing_names_the_tests_per_requirement(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _tree(tmp_path)
    assert trace.main(["--root", str(root), "-v"]) == 0
    out = capsys.readouterr().out.splitlines()
    at = out.index("  WRAP_01: 1 tests, 0 vectors")
    assert out[at + 1] == "    tests/test_a.py::test_one"
    assert out[at + 2] == "  WRAP_02: 1 tests, 0 vectors"
    assert out[at + 3] == "    tests/test_a.py::test_two"


def test_assumptions_are_defined_but_need_no_coverage(tmp_path: Path) -> None:
    spec = SPEC + textwrap.dedent("""\

        .. assumption:: Fsync is honest
           :id: CRASH_06
           :status: draft

           Text.
        """)
    tests = textwrap.dedent(TESTS) + '\n@pytest.mark.req("CRASH_06")\ndef test_three():\n    pass\n'
    report = trace.check(
        _tree(tmp_path, spec__chapters__a_DOT_rst=spec, tests__test_a_DOT_py=tests)
    )
    assert [d.id for d in report.requirements] == ["WRAP_01", "WRAP_02"]
    assert report.defined["CRASH_06"].kind == "assumption"
    assert report.unknown == []
    assert report.ok
    uncited = trace.check(_tree(tmp_path, tests__test_a_DOT_py=TESTS))
    assert uncited.ok  # an assumption nobody cites is not a coverage gap


def test_malformed_marker_argument_is_a_problem(tmp_path: Path) -> None:
    tests = 'import pytest\n\n@pytest.mark.req("WRAP_1", "WRAP_01..02")\ndef test_x(): pass\n'
    report = trace.check(_tree(tmp_path, tests__test_b_DOT_py=tests))
    assert len(report.problems) == 2
    assert not report.ok


def test_duplicate_and_id_less_definitions_are_problems(tmp_path: Path) -> None:
    extra = ".. req:: Again\n   :id: WRAP_01\n\n.. req:: No id\n   :status: draft\n"
    report = trace.check(_tree(tmp_path, spec__chapters__b_DOT_rst=extra))
    assert any("defined again" in p for p in report.problems)
    assert any("without an :id:" in p for p in report.problems)


def test_no_spec_directory_is_a_usage_error(tmp_path: Path) -> None:
    assert trace.main(["--root", str(tmp_path)]) == 2


def test_json_report(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    out = tmp_path / "trace.json"
    assert trace.main(["--root", str(root), "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["ok"] is True
    assert doc["requirements"]["WRAP_01"]["tests"] == ["tests/test_a.py::test_one"]


AREAS = ids.AREAS.split("|")


@given(
    area=st.sampled_from(AREAS),
    first=st.integers(1, 60),
    span=st.integers(1, trace.MAX_RANGE),
    short=st.booleans(),
)
def test_ranges_cite_every_identifier_between_their_ends(
    area: str, first: int, span: int, short: bool
) -> None:
    last = first + span
    end = f"{last:02d}" if short else f"{area}_{last:02d}"
    text = f"see ({area}_{first:02d}..{end}) here"
    assert set(trace.ids_in_text(text)) == {f"{area}_{n:02d}" for n in range(first, last + 1)}
