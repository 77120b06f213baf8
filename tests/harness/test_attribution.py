"""Failures are charged to the most specific requirement they break, the others cited: the
region of a wrapped value that differs, the rule of an error code, the per-requirement verdicts
and the reports that show both."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import jsonschema
import pytest
from pgkms.layout import WRAP_LAYOUT
from pgkms_conformance.attribution import REGION_RULES, code_rule, wrapped_rule
from pgkms_conformance.harness import report_json, report_junit, report_text
from pgkms_conformance.harness.model import Case, Report, Verdict
from pgkms_conformance.harness.run import Config, run_harness
from pgkms_conformance.mutants.zoo import mutant_command
from pgkms_conformance.vectors.runner import REPO_VECTOR_DIR

T, IV, C = bytes(range(32)), bytes(range(32, 48)), bytes(range(48, 80))
W = T + IV + C


def _flip(value: bytes, at: int) -> bytes:
    return value[:at] + bytes([value[at] ^ 1]) + value[at + 1 :]


@pytest.mark.req("WRAP_01", "WRAP_02", "WRAP_03", "WRAP_04")
def test_a_wrapped_value_is_charged_by_the_first_region_that_differs() -> None:
    assert set(REGION_RULES) == {f.name for f in WRAP_LAYOUT}  # every region has its rule
    assert wrapped_rule(W, _flip(W, 0)) == "WRAP_04"  # the HMAC alone
    assert wrapped_rule(W, _flip(W, 40)) == "WRAP_03"  # the IV (and whatever follows from it)
    assert wrapped_rule(W, _flip(_flip(W, 60), 0)) == "WRAP_02"  # C differs: T follows from it
    assert wrapped_rule(W, W[:-16]) == "WRAP_02"  # a block short: no full padding block
    assert wrapped_rule(W, W + bytes(16)) == "WRAP_02"
    assert wrapped_rule(W, W + b"\x00") == "WRAP_01"  # not whole blocks after T || IV
    assert wrapped_rule(W, IV + T + C) == "WRAP_01"  # the right parts in the wrong places


@pytest.mark.req("WRAP_05", "SQL_02", "PASS_04", "PASS_07")
def test_an_error_code_is_charged_to_the_rule_that_prescribes_it_among_the_cited() -> None:
    assert code_rule("wrapped_too_short", ("SQL_02", "WRAP_05")) == "SQL_02"
    assert code_rule("wrapped_too_short", ("WRAP_05",)) == "WRAP_05"
    assert code_rule("passphrase_too_short", ("BOOT_02", "PASS_04")) == "PASS_04"
    assert code_rule("passphrase_too_short", ("PASS_07", "START_01")) == "PASS_07"
    assert code_rule("passphrase_too_short", ("KDF_01",)) is None
    assert code_rule(None, ("WRAP_05",)) is None


CONFIG = {"examples": 1, "seed": 0, "timeout": 1.0, "stages": ["vectors"], "vectors": []}


def _report(*cases: Case) -> Report:
    started = "2026-01-01T00:00:00+00:00"
    return Report(iut_command=["x"], config=CONFIG, started=started, cases=list(cases))


@pytest.mark.req("CONF_01")
def test_a_failure_fails_its_primary_requirement_and_only_cites_the_others() -> None:
    case = Case("vectors", "wrap.json#1", Verdict.FAILED, ("WRAP_02", "WRAP_01", "WRAP_04"))
    passed = Case("properties", "wrap", Verdict.PASSED, ("WRAP_01", "WRAP_04"))
    report = _report(case, passed)
    rows = {r.id: r for r in report.requirement_results()}
    assert case.primary == "WRAP_02" and case.also_cited == ("WRAP_01", "WRAP_04")
    assert rows["WRAP_02"].verdict is Verdict.FAILED
    assert rows["WRAP_01"].verdict is Verdict.PASSED and rows["WRAP_01"].cited == 1
    assert rows["WRAP_04"].counts[Verdict.FAILED] == 0
    assert report_text.verdict_line(report).startswith("VERDICT: FAIL: WRAP_02 (")
    text = report_text.render(report)
    assert "- [WRAP_02; also cited: WRAP_01, WRAP_04] vectors: wrap.json#1" in text
    document = report_json.to_json(report)
    jsonschema.Draft202012Validator(report_json.schema()).validate(document)
    (failure,) = document["failures"]
    assert (failure["primary"], failure["also_cited"]) == ("WRAP_02", ["WRAP_01", "WRAP_04"])
    cited = {r["id"]: r["cited"] for r in document["requirements"]}
    assert (cited["WRAP_01"], cited["WRAP_02"]) == (1, 0)
    xml = report_junit.to_xml(report)
    assert xml.count("<failure ") == 1 and 'type="WRAP_02"' in xml
    assert "also cited by failures charged to other requirements" in xml
    only_cited = {r.id: r for r in _report(case).requirement_results()}["WRAP_04"]
    assert only_cited.verdict is Verdict.NOT_APPLICABLE and "only cited" in (only_cited.note or "")


def _wrap_vector_failures(mutant: str) -> Counter[str | None]:
    config = Config(
        mutant_command(mutant), vector_paths=[REPO_VECTOR_DIR / "wrap.json"], stages=("vectors",)
    )
    report = run_harness(config)
    wraps = [c for c in report.failures if c.source.get("op") == "wrap"]
    assert wraps, f"{mutant}: no wrap vector failed"
    return Counter(c.primary for c in wraps)


@pytest.mark.req("WRAP_02")
def test_no_padding_block_on_aligned_input_is_charged_to_wrap_02_alone() -> None:
    # The 2020 report charged these to WRAP_01, WRAP_02 and WRAP_04; only WRAP_02 is broken.
    assert set(_wrap_vector_failures("no_pad_block_when_aligned")) == {"WRAP_02"}


@pytest.mark.req("WRAP_04")
def test_a_mac_over_iv_and_ciphertext_is_charged_to_wrap_04_alone() -> None:
    assert set(_wrap_vector_failures("hmac_over_iv")) == {"WRAP_04"}


@pytest.mark.req("ADP_02")
def test_the_json_report_of_a_durability_failure_validates(tmp_path: Path) -> None:
    report = run_harness(
        Config(mutant_command("no_pgdata_fsync_after_rename"), stages=("durability",))
    )
    document = json.loads(report_json.dumps(report))
    jsonschema.Draft202012Validator(report_json.schema()).validate(document)
    primaries = {f["primary"] for f in document["failures"]}
    assert primaries == {"ROT_06", "UPG_01"}
    upgrade = next(f for f in document["failures"] if f["primary"] == "UPG_01")
    assert upgrade["also_cited"] == ["ROT_06", "DISK_07"]
    assert upgrade["source"]["operation"] == 16
