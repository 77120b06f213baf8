"""The durability stage (capability fs_trace, ADP_05): sequences against the spec's procedures,
crash exploration of the IUT's own rotation, a trace that must account for the disk, and
"unsupported" for an IUT without the capability."""

from __future__ import annotations

import pytest
from pgkms_conformance.bundled import BUNDLED
from pgkms_conformance.crash.machine import SPEC_BOOTSTRAP, SPEC_ROTATION
from pgkms_conformance.harness.durability import check_sequence
from pgkms_conformance.harness.fstrace import BadTrace, TraceOp, parse_trace
from pgkms_conformance.harness.model import Verdict
from pgkms_conformance.harness.run import Config, run_harness
from pgkms_conformance.mutants.zoo import mutant_command

from tests.harness.helpers import fake

DURABILITY = ("durability",)


def _by_name(command: list[str]) -> dict[str, tuple[Verdict, tuple[str, ...], str, str]]:
    report = run_harness(Config(command, stages=DURABILITY))
    assert report.aborted is None
    return {c.name: (c.verdict, c.requirements, c.expected, c.found) for c in report.cases}


@pytest.mark.req("ADP_05", "DISK_07", "BOOT_04", "ROT_04", "ROT_05", "ROT_06", "REC_06")
@pytest.mark.parametrize("impl", sorted(BUNDLED))
def test_bundled_implementations_pass_and_explore_every_crash_state(impl: str) -> None:
    report = run_harness(Config(BUNDLED[impl], stages=DURABILITY))
    assert report.passed, [(c.name, c.found) for c in report.failures]
    crash = next(c for c in report.cases if c.name == "crash states of the rotation")
    # The reference explorer's figures for the spec rotation (crash-model chapter): 39 states.
    assert crash.source["crash states"] == 39
    assert crash.source["rotation operations"] == 17
    assert {"CRASH_07", "REC_06"} <= set(crash.requirements)
    verdicts = {c.name: c.verdict for c in report.cases}
    assert verdicts["bootstrap sequence"] is Verdict.PASSED
    assert verdicts["recovery sequence: adopt_tmp"] is Verdict.PASSED
    assert verdicts["upgrade sequence"] is Verdict.PASSED
    # I3 two crashes deep: the second level reaches only images the first already asked about
    assert crash.source["recovery depth"] == 2
    assert (
        crash.source["recovery crash states per depth"]
        == "depth 1: 29 (0 new); depth 2: 14 (0 new)"
    )
    assert crash.source["startups"] == 2 * 39


@pytest.mark.req("BOOT_04", "DISK_07")
def test_a_missing_pgdata_fsync_is_caught_with_expected_and_found() -> None:
    cases = _by_name(mutant_command("bootstrap_without_pgdata_fsync"))
    verdict, reqs, expected, found = cases["bootstrap sequence"]
    assert verdict is Verdict.FAILED
    assert "BOOT_04" in reqs and "DISK_07" in reqs
    assert expected.endswith("expected fsync_dir datadir")
    assert found == "the end of the trace"


@pytest.mark.req("DISK_07", "CRASH_07", "REC_05")
def test_no_directory_fsync_breaks_the_crash_invariants() -> None:
    cases = _by_name(mutant_command("no_directory_fsync"))
    assert cases["rotation sequence"][0] is Verdict.FAILED
    invariant = cases["crash states of the rotation: I1"]
    assert invariant[0] is Verdict.FAILED and "CRASH_07" in invariant[1]
    assert "keys destroyed" in invariant[3]


@pytest.mark.req("ADP_05")
def test_a_trace_that_does_not_account_for_the_disk_fails_adp_05() -> None:
    cases = _by_name(fake("badtrace"))
    verdict, reqs, _, found = cases["rotation trace accounts for the disk"]
    assert verdict is Verdict.FAILED and reqs == ("ADP_05",)
    assert "pg_cryptokeys" in found


@pytest.mark.req("ADP_05", "DISK_07")
def test_an_iut_without_fs_trace_is_reported_unsupported() -> None:
    report = run_harness(Config(fake("notrace"), stages=("durability",)))
    assert report.passed
    rows = {r.id: r.verdict for r in report.requirement_results()}
    for req in ("DISK_07", "BOOT_04", "REC_06", "ADP_05"):
        assert rows[req] is Verdict.UNSUPPORTED, req


@pytest.mark.req("ADP_05")
def test_trace_paths_must_stay_inside_the_data_directory() -> None:
    for path in ("/etc/passwd", "../x", "pg_cryptokeys/../../x", "./pg_cryptokeys", ""):
        with pytest.raises(BadTrace):
            parse_trace([{"op": "unlink", "path": path}])
    with pytest.raises(BadTrace):
        parse_trace([{"op": "chmod", "path": "pg_cryptokeys"}])
    ops = parse_trace([{"op": "rename", "path": "pg_cryptokeys_tmp", "to": "pg_cryptokeys"}])
    assert ops == [TraceOp("rename", "pgdata/pg_cryptokeys_tmp", "pgdata/pg_cryptokeys")]


@pytest.mark.req("ROT_04", "DISK_07")
def test_sequence_divergence_names_the_step_it_expected() -> None:
    rotation = [
        {"op": "mkdir", "path": "pg_cryptokeys_tmp", "mode": 448},
        *(
            entry
            for name in ("0000", "0001", "0002")
            for entry in (
                {"op": "create", "path": f"pg_cryptokeys_tmp/{name}", "mode": 384, "size": 132},
                {"op": "fsync", "path": f"pg_cryptokeys_tmp/{name}"},
            )
        ),
        {"op": "fsync_dir", "path": "."},  # the tmp directory itself was skipped
    ]
    deviation = check_sequence(parse_trace(rotation), SPEC_ROTATION)
    assert deviation is not None
    assert "expected fsync_dir tmp, found fsync_dir datadir" in str(deviation)
    assert deviation.reqs == ("ROT_04", "DISK_07")
    assert check_sequence(parse_trace(rotation[:7]), SPEC_BOOTSTRAP) is not None


@pytest.mark.req("UPG_01", "ROT_04")
def test_an_upgrade_that_removes_the_new_keys_first_is_caught() -> None:
    cases = _by_name(mutant_command("upgrade_removes_new_keys_first"))
    verdict, reqs, expected, found = cases["upgrade sequence"]
    assert verdict is Verdict.FAILED
    assert "UPG_01" in reqs and "ROT_04" in reqs
    assert expected.endswith("operation 1: expected mkdir tmp")
    assert found == "unlink current file"
