"""Triage (VEC_04): a failed vector carries the bug types of its flags; the console groups
failures by bug type, most severe first; the JSON report lists each failure's bug_type."""

from __future__ import annotations

import json

import jsonschema
import pytest
from pgkms_conformance.harness import report_json, report_text
from pgkms_conformance.harness.model import Case, Report, Verdict
from pgkms_conformance.harness.run import Config, run_harness
from pgkms_conformance.mutants.zoo import mutant_command
from pgkms_conformance.vectors.runner import REPO_VECTOR_DIR, load_vector_file
from pgkms_conformance.vectors.triage import BUG_TYPES, bug_types_of, severity

pytestmark = pytest.mark.req("VEC_05", "VEC_11", "VEC_15")


def _failed(name: str, *bug_types: str) -> Case:
    return Case("vectors", name, Verdict.FAILED, ("WRAP_07",), {}, bug_types=bug_types)


def test_bug_types_of_a_test_come_most_severe_first() -> None:
    notes = {
        "A": {"bugType": "EDGE_CASE"},
        "B": {"bugType": "AUTH_BYPASS"},
        "C": {"description": "a free note without a bug type"},
        "D": {"bugType": "WEAK_PARAMS", "description": "a type of the file's own"},
    }
    assert bug_types_of(["A", "B"], notes) == ("AUTH_BYPASS", "EDGE_CASE")
    assert bug_types_of([], notes) == ("BASIC",)
    assert bug_types_of(["C"], notes) == ("UNTRIAGED",)
    assert bug_types_of(["D", "A"], notes) == ("EDGE_CASE", "WEAK_PARAMS")
    assert [severity(b) for b in BUG_TYPES] == list(range(len(BUG_TYPES)))
    assert severity("WEAK_PARAMS") == len(BUG_TYPES)


def test_the_console_groups_failures_most_severe_first() -> None:
    cases = [
        _failed("edge", "EDGE_CASE"),
        Case("properties", "prop", Verdict.FAILED, ("KDF_01",), {}),
        _failed("own", "WEAK_PARAMS"),
        _failed("untriaged", "UNTRIAGED"),
        _failed("bypass", "AUTH_BYPASS", "LEGACY"),
        _failed("basic", "BASIC"),
    ]
    groups = [key for key, _ in report_text.group_by_bug_type(cases)]
    no_type = report_text.NO_BUG_TYPE
    assert groups == ["AUTH_BYPASS", "BASIC", "EDGE_CASE", "WEAK_PARAMS", "UNTRIAGED", no_type]
    text = report_text.render(Report(["iut"], cases=cases, capabilities=["wrap"]), 3)
    headings = [line for line in text.splitlines() if line.split(" (")[0] in groups]
    assert [h.split(" (")[0] for h in headings] == groups  # every group named, in order
    assert "bug type: AUTH_BYPASS, LEGACY" in text
    assert "  ... 1 more WEAK_PARAMS" in text  # three shown in all, each group says what it left
    assert text.index("- [WRAP_07] vectors: bypass") < text.index("- [WRAP_07] vectors: basic")
    assert "vectors: untriaged" not in text


def _vector_run(mutant: str, family: str) -> Report:
    path = REPO_VECTOR_DIR / f"{family}.json"
    return run_harness(Config(mutant_command(mutant), vector_paths=[path], stages=("vectors",)))


def test_a_failed_vector_carries_its_flags_bug_types() -> None:
    report = _vector_run("padding_not_checked", "wrap")
    notes = load_vector_file(REPO_VECTOR_DIR / "wrap.json").document["notes"]
    assert report.failures
    for case in report.failures:
        assert case.bug_types == bug_types_of(case.source.get("flags", []), notes), case.name
    kinds = {case.bug_types[0] for case in report.failures}
    assert "MALLEABILITY" in kinds  # padding accepted loosely under a valid HMAC
    document = json.loads(report_json.dumps(report))
    jsonschema.Draft202012Validator(report_json.schema()).validate(document)
    assert [f["bug_type"] for f in document["failures"]] == [
        list(c.bug_types) for c in report.failures
    ]
    text = report_text.render(report)
    firsts = [line.split(" (")[0] for line in text.splitlines() if line.split(" (")[0] in kinds]
    assert firsts == sorted(kinds, key=severity)


def test_the_upgrade_vectors_catch_a_copy_before_the_check() -> None:
    report = _vector_run("upgrade_copies_before_checking", "upgrade")
    failed = [c for c in report.failures if "CHECKED_BEFORE_COPY" in c.source.get("flags", [])]
    assert failed, "the 2020 order (copy, then check) passed the upgrade vectors"
    assert all(c.primary == "UPG_01" for c in failed)
    assert all(c.bug_types == ("KEY_LOSS", "KNOWN_2020_DEFECT") for c in failed)
