"""The durability stage (capability fs_trace, ADP_05): every durability point of the spec's
procedures judged on its own and charged to its own requirement, crash exploration of the IUT's
own rotation, a trace that must account for the disk, and "unsupported" for an IUT without the
capability."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from pgkms.layout import KEY_FILE_NAMES
from pgkms_conformance.bundled import BUNDLED
from pgkms_conformance.crash.machine import SPEC_ROTATION, Procedure, Step, groups, role_path
from pgkms_conformance.crash.points import POINTS, PROCEDURES, judge, points_of
from pgkms_conformance.crash.simfs import ROOT
from pgkms_conformance.harness.durability import point_cases
from pgkms_conformance.harness.fstrace import BadTrace, TraceOp, parse_trace
from pgkms_conformance.harness.model import Verdict
from pgkms_conformance.harness.run import Config, run_harness
from pgkms_conformance.mutants.zoo import mutant_command

from tests.harness.helpers import fake

DURABILITY_2020 = [sys.executable, str(Path(__file__).parent / "fakes" / "durability_2020.py")]

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
    judged = {c.source.get("procedure") for c in report.cases if "point" in c.source}
    assert judged == set(POINTS)
    assert sum("point" in c.source for c in report.cases) == sum(map(len, POINTS.values()))
    # I3 two crashes deep: the second level reaches only images the first already asked about
    assert crash.source["recovery depth"] == 2
    assert (
        crash.source["recovery crash states per depth"]
        == "depth 1: 29 (0 new); depth 2: 14 (0 new)"
    )
    assert crash.source["startups"] == 2 * 39


@pytest.mark.req("BOOT_04", "DISK_07")
def test_a_missing_pgdata_fsync_is_caught_with_its_operation_and_an_excerpt() -> None:
    report = run_harness(
        Config(mutant_command("bootstrap_without_pgdata_fsync"), stages=DURABILITY)
    )
    failed = [c for c in report.failures if c.source.get("procedure") == "bootstrap"]
    # Bootstrap fsyncs PGDATA twice (BOOT_04): before its rename and after it. The mutant
    # drops both, so both points fail, each on its own; the second is due before the answer.
    assert [c.primary for c in failed] == ["BOOT_04", "BOOT_04"]
    (case,) = [c for c in failed if c.source.get("due before") == "the answer"]
    assert case.also_cited == ("DISK_07",)
    assert "(fsync of PGDATA)" in case.expected
    assert case.found.startswith("no fsync of PGDATA after operation ")
    assert case.found.endswith("before the answer")
    assert case.detail.startswith("trace: ") and case.detail.endswith(">the answer")
    assert case.source["due before"] == "the answer"
    assert case.found.startswith(f"no fsync of PGDATA after operation {case.source['operation']},")


@pytest.mark.req("DISK_07", "CRASH_07", "REC_05")
def test_no_directory_fsync_breaks_disk_07_and_the_crash_invariants() -> None:
    report = run_harness(Config(mutant_command("no_directory_fsync"), stages=DURABILITY))
    points = [c for c in report.failures if "point" in c.source]
    # No directory is ever fsynced: DISK_07's rule as such, each procedure's own rule cited;
    # a procedure with a single directory fsync (the rename alone) misses just its own point.
    single = "recovery adopt_tmp without pg_cryptokeys"
    assert points and {c.primary for c in points if c.source["procedure"] != single} == {"DISK_07"}
    assert {c.primary for c in points if c.source["procedure"] == single} == {"REC_04"}
    assert {"BOOT_04", "ROT_04", "ROT_05", "ROT_06", "REC_03", "REC_04", "UPG_01"} <= {
        r for c in points for r in c.also_cited
    }
    invariant = next(c for c in report.failures if c.name == "crash states of the rotation: I1")
    assert invariant.primary == "CRASH_07"
    assert "keys destroyed" in invariant.found


@pytest.mark.req("ROT_04", "ROT_05", "ROT_06", "DISK_07")
def test_the_reference_rotation_with_2020_durability_fails_rot_05_and_rot_06_only() -> None:
    # The reference's rotation, reported with the 2020 code's fsyncs: an extra fsync of the
    # empty pg_cryptokeys_tmp right after mkdir (allowed: it breaks no point), and no fsync of
    # PGDATA after the removal of pg_cryptokeys nor after the rename.
    report = run_harness(Config(DURABILITY_2020, stages=DURABILITY))
    rows = {r.id: r.verdict for r in report.requirement_results()}
    assert rows["ROT_05"] is Verdict.FAILED
    assert rows["ROT_06"] is Verdict.FAILED
    assert rows["ROT_04"] is Verdict.PASSED
    failed = {c.primary: c for c in report.failures}
    assert set(failed) == {"ROT_05", "ROT_06"}
    assert failed["ROT_05"].found.endswith("(rename pg_cryptokeys_tmp -> pg_cryptokeys)")
    assert ">15 rmdir pg_cryptokeys; >16 rename" in failed["ROT_05"].detail
    assert failed["ROT_06"].found == "no fsync of PGDATA after operation 16, before the answer"


def _trace_of(procedure: Procedure) -> list[tuple[int, TraceOp]]:
    """The operations a procedure issues, each with its 1-based step: the reference trace."""
    number = {id(step): i for i, step in enumerate(procedure.steps, 1)}
    ops: list[tuple[int, TraceOp]] = []
    for repeat, group in groups(procedure):
        for name in KEY_FILE_NAMES if repeat != "once" else ("",):
            for step in group:
                path = role_path(ROOT, step.role, name)
                target = role_path(ROOT, "current") if step.kind == "rename" else ""
                ops.append((number[id(step)], TraceOp(step.kind, path, target)))
    return ops


@pytest.mark.req("BOOT_04", "ROT_04", "ROT_05", "ROT_06", "REC_03", "REC_04", "UPG_01", "DISK_07")
@pytest.mark.parametrize("name", sorted(POINTS))
def test_each_skipped_fsync_fails_exactly_its_points(name: str) -> None:
    trace = _trace_of(PROCEDURES[name])
    ops = [op for _, op in trace]
    assert judge(ROOT, ops, POINTS[name]) == [None] * len(POINTS[name])
    fsyncs = [i for i, (_, op) in enumerate(trace) if op.kind.startswith("fsync")]
    assert fsyncs
    for skip in fsyncs:
        step = trace[skip][0]
        kept = ops[:skip] + ops[skip + 1 :]
        cases = list(point_cases(name, kept, POINTS[name]))
        failed = [c for c in cases if c.verdict is Verdict.FAILED]
        want = [p for p in POINTS[name] if p.step == step]
        assert [c.source["point"] for c in failed] == [POINTS[name].index(p) + 1 for p in want]
        assert {c.primary for c in failed} == {p.requirement for p in want}, (name, ops[skip])
        assert all(c.also_cited for c in failed)


@pytest.mark.req("BOOT_04", "ROT_04", "ROT_05", "ROT_06", "REC_03", "REC_04", "UPG_01", "DISK_07")
@pytest.mark.parametrize("name", sorted(POINTS))
def test_extra_fsyncs_break_no_point(name: str) -> None:
    ops = [op for _, op in _trace_of(PROCEDURES[name])]
    paths = sorted({op.path for op in ops if op.kind != "rename"} | {ROOT})
    padded: list[TraceOp] = [TraceOp("fsync_dir", ROOT)]
    for op in ops:
        padded.append(op)
        padded += [TraceOp("fsync_dir", p) for p in paths if not p.rpartition("/")[2].isdigit()]
        padded += [TraceOp("fsync", op.path)] if op.kind == "create" else []
    assert judge(ROOT, padded, POINTS[name]) == [None] * len(POINTS[name])


@pytest.mark.req("ROT_04", "ROT_05", "ROT_06", "BOOT_04")
def test_the_new_bootstrap_through_tmp_is_judged_by_its_points() -> None:
    # BOOT_04 (write pg_cryptokeys_tmp as rotation does, fsync it and PGDATA, rename, fsync
    # PGDATA): the points of a procedure of those steps, whatever machine.py's bootstrap is now.
    steps = (
        *SPEC_ROTATION.steps[:5],
        Step("rename", "tmp -> current", "renamed", reqs=("BOOT_04",)),
    )
    steps = tuple(Step(s.kind, s.role, s.phase, s.repeat, ("BOOT_04", "DISK_07")) for s in steps)
    steps += (Step("fsync_dir", "datadir", "bootstrapped", reqs=("BOOT_04", "DISK_07")),)
    procedure = Procedure("bootstrap through tmp", "empty", steps)
    points = points_of(procedure)
    assert [p.text for p in points] == [
        "the data of each key file in pg_cryptokeys_tmp (fsync of each file) durable before the "
        "rename of pg_cryptokeys_tmp to pg_cryptokeys",
        "the creation of each key file in pg_cryptokeys_tmp (fsync of pg_cryptokeys_tmp) durable "
        "before the rename of pg_cryptokeys_tmp to pg_cryptokeys",
        "the mkdir of pg_cryptokeys_tmp (fsync of PGDATA) durable before the rename of "
        "pg_cryptokeys_tmp to pg_cryptokeys",
        "the rename of pg_cryptokeys_tmp to pg_cryptokeys (fsync of PGDATA) durable before the "
        "answer",
    ]
    assert {p.requirement for p in points} == {"BOOT_04"}
    in_place = [
        TraceOp("mkdir", f"{ROOT}/pg_cryptokeys"),
        *(
            op
            for n in KEY_FILE_NAMES
            for op in (
                TraceOp("create", f"{ROOT}/pg_cryptokeys/{n}"),
                TraceOp("fsync", f"{ROOT}/pg_cryptokeys/{n}"),
            )
        ),
        TraceOp("fsync_dir", f"{ROOT}/pg_cryptokeys"),
        TraceOp("fsync_dir", ROOT),
    ]
    # The 2020 bootstrap, in place, breaks every point: nothing was written through tmp.
    assert all(b is not None and "never issued" in b.reason for b in judge(ROOT, in_place, points))


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


@pytest.mark.req("UPG_01", "ROT_04")
def test_an_upgrade_that_removes_the_new_keys_first_is_charged_to_upg_01() -> None:
    report = run_harness(
        Config(mutant_command("upgrade_removes_new_keys_first"), stages=DURABILITY)
    )
    upgrade = [c for c in report.failures if c.source.get("procedure") == "upgrade"]
    assert upgrade and {c.primary for c in upgrade} == {"UPG_01"}
    first = upgrade[0]
    assert first.also_cited == ("ROT_04", "DISK_07")
    assert first.expected.endswith("before the first unlink in pg_cryptokeys")
    assert first.source["due before"] == 1  # the new cluster's keys go first
