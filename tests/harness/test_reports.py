"""The reference passes the harness; the reports validate against their schemas (JSON Schema for
``--json``, the vendored JUnit XSD for ``--junit``); the console shows the verdict."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import xmlschema
from pgkms_conformance.cli import main
from pgkms_conformance.harness import report_json, report_junit
from pgkms_conformance.harness.model import Report, Verdict
from pgkms_conformance.harness.profiles import profile_results
from pgkms_conformance.harness.requirements import REQUIREMENTS
from pgkms_conformance.harness.run import Config, run_harness
from pgkms_conformance.mutants.zoo import mutant_command

from tests.harness.helpers import REFERENCE, fake

pytestmark = pytest.mark.req("CONF_01", "CONF_02", "CONF_03")


@cache
def _reference_report() -> Report:
    return run_harness(Config(REFERENCE, examples=15, seed=7))


@cache
def _junit_schema() -> xmlschema.XMLSchema:
    xsd = resources.files("pgkms_conformance.harness").joinpath("junit.xsd")
    return xmlschema.XMLSchema(str(xsd))


def _validate_json(report: Report) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(report_json.dumps(report))
    jsonschema.Draft202012Validator(report_json.schema()).validate(document)
    return document


def test_reference_passes_every_observable_requirement() -> None:
    report = _reference_report()
    assert report.passed, [c.name for c in report.failures]
    rows = {r.id: r for r in report.requirement_results()}
    for req_id in REQUIREMENTS:
        assert rows[req_id].verdict is Verdict.PASSED, req_id


def test_reports_validate_for_a_passing_run() -> None:
    report = _reference_report()
    document = _validate_json(report)
    assert document["verdict"] == "pass"
    for granularity in report_junit.GRANULARITIES:
        _junit_schema().validate(report_junit.to_xml(report, granularity))


def test_reports_validate_for_failing_and_aborted_runs(tmp_path: Path) -> None:
    config = Config(
        fake("crash", budget=20),
        max_failures=2,
        examples=5,
        timeout=5,
        replay_dir=str(tmp_path),
        stages=("protocol", "properties", "scenarios"),
    )
    report = run_harness(config)
    assert report.aborted is not None and report.failures
    document = _validate_json(report)
    assert document["verdict"] == "aborted"
    for granularity in report_junit.GRANULARITIES:
        xml = report_junit.to_xml(report, granularity)
        _junit_schema().validate(xml)
        assert "<failure" in xml and "<error" in xml


def test_schema_rejects_a_report_missing_its_verdict() -> None:
    document = json.loads(report_json.dumps(_reference_report()))
    del document["verdict"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(report_json.schema()).validate(document)


def test_junit_schema_rejects_a_testcase_without_a_name() -> None:
    bad = '<testsuites><testsuite name="x" tests="1"><testcase/></testsuite></testsuites>'
    assert not _junit_schema().is_valid(bad)


def test_cli_run_writes_reports_and_exits_zero_on_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    json_path, junit_path = tmp_path / "r.json", tmp_path / "r.xml"
    argv = ["run", "--impl", "reference", "--examples", "3", "--quiet", "--no-default-vectors"]
    argv += ["--stages", "protocol,properties", "--json", str(json_path)]
    argv += ["--junit", str(junit_path), "--junit-per", "case"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "VERDICT: PASS" in out
    assert "KDF_01" in out
    assert json.loads(json_path.read_text())["verdict"] == "pass"
    _junit_schema().validate(str(junit_path))


def test_cli_run_exits_one_on_failure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["run", "--impl", " ".join(fake("leak")), "--examples", "3", "--quiet"]
    argv += ["--stages", "properties", "--replay-dir", str(tmp_path)]
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert "VERDICT: FAIL" in out
    assert "replay:" in out


def test_cli_run_rejects_an_invalid_vector_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": "nothing"}')
    argv = ["run", "--impl", "reference", "--no-default-vectors", "--vectors", str(bad)]
    assert main(argv) == 2
    assert "invalid vector file" in capsys.readouterr().err


@pytest.mark.req("CONF_04")
def test_an_iut_without_injection_is_judged_by_unwrapping() -> None:
    """The harness never sends iv/ivs/keys to such an IUT (the fake would refuse them) and
    still passes a correct one, checking its wraps by unwrapping them with the reference."""
    # The safety stages judge processes and files, not injection: test_safety covers them.
    stages = ("protocol", "vectors", "properties", "scenarios", "durability")
    report = run_harness(Config(fake("noinject"), examples=10, stages=stages))
    assert report.passed, [(c.name, c.found) for c in report.failures]
    rows = {r.id: r.verdict for r in report.requirement_results()}
    assert rows["WRAP_02"] is Verdict.PASSED and rows["ROT_03"] is Verdict.PASSED


@pytest.mark.req("CONF_04", "WRAP_03")
def test_a_fixed_iv_is_caught_without_injection(tmp_path: Path) -> None:
    report = run_harness(Config(fake("noinject"), examples=5, stages=("properties",)))
    assert report.passed
    mutant = run_harness(
        Config(
            mutant_command("fixed_iv"), examples=5, stages=("properties",), replay_dir=str(tmp_path)
        )
    )
    assert "WRAP_03" in {r for c in mutant.failures for r in c.requirements}


@pytest.mark.req("CONF_03")
def test_a_partial_iut_is_reported_on_what_it_claims() -> None:
    report = run_harness(Config(fake("format_only"), examples=10))
    assert report.passed
    rows = {r.id: r.verdict for r in report.requirement_results()}
    assert rows["KDF_01"] is Verdict.PASSED and rows["WRAP_08"] is Verdict.PASSED
    assert rows["PASS_02"] is Verdict.UNSUPPORTED and rows["REC_04"] is Verdict.UNSUPPORTED
    profiles = {p.name: p.verdict for p in profile_results(report)}
    assert profiles == {
        "format": "passed",
        "sql": "not claimed",
        "passphrase": "not claimed",
        "keystore": "not claimed",
        "full": "not claimed",
    }
    document = _validate_json(report)
    assert document["iut"]["capabilities"] == sorted(
        ["derive_kek", "wrap", "unwrap", "encode_record", "decode_record"]
    )
