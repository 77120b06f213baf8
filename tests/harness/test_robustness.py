"""A bad IUT (crashing, hanging, garbage-speaking) is reported as such, and the run ends cleanly:
within its timeouts, with the IUT's stderr tail, leaving no process and no temporary directory."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from pgkms_conformance.harness.model import Report, Verdict
from pgkms_conformance.harness.report_text import render
from pgkms_conformance.harness.run import Config, run_harness

from tests.harness.helpers import alive, fake

pytestmark = pytest.mark.req("ADP_01")

STAGES = ("protocol", "properties", "scenarios")


def _run(command: list[str], replays: Path, timeout: float = 5.0) -> tuple[Report, float]:
    config = Config(command, examples=5, timeout=timeout, replay_dir=str(replays), stages=STAGES)
    t0 = time.monotonic()
    report = run_harness(config)
    return report, time.monotonic() - t0


@pytest.mark.parametrize(
    ("mode", "kind", "stderr_words"),
    [
        ("crash", "crashed", "segmentation fault (pretend)"),
        ("garbage", "garbage", None),
        ("wrongid", "garbage", None),
    ],
)
def test_misbehaving_iut_is_reported_and_the_run_ends(
    mode: str, kind: str, stderr_words: str | None, tmp_path: Path, isolated_tmp: Path
) -> None:
    report, elapsed = _run(fake(mode, budget=3), tmp_path / "replays")
    assert report.aborted is not None
    assert report.aborted.kind == kind
    assert not report.passed
    failed = [c for c in report.cases if c.verdict is Verdict.FAILED]
    assert failed, "the failure that broke the IUT is itself a failed case"
    broken = [c for c in failed if "ADP_01" in c.requirements and c.found.startswith(kind)]
    assert broken, "each protocol failure is a failed case citing ADP_01, naming its kind"
    if stderr_words:
        assert stderr_words in broken[0].detail
        assert stderr_words in "\n".join(report.aborted.stderr_tail)
    assert elapsed < 30
    assert list(isolated_tmp.iterdir()) == [], "temporary directories left behind"


def test_hung_iut_is_killed_within_the_timeout(
    tmp_path: Path, isolated_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pids = tmp_path / "children"
    monkeypatch.setenv("FAKE_CHILD_PID", str(pids))
    # 3 s, not 1: on a loaded machine (the suite runs on every core) a restarted Python IUT can
    # take over a second to answer hello, and that timeout would come before the hang.
    report, elapsed = _run(fake("hang", budget=3), tmp_path / "replays", timeout=3.0)
    assert report.aborted is not None
    assert report.aborted.kind == "timeout"
    assert "waiting for a lock forever" in "\n".join(report.aborted.stderr_tail)
    # Three timeouts of three seconds each, plus restarts: nowhere near the IUT's 600 s sleep.
    assert elapsed < 40
    children = [int(p) for p in pids.read_text().split()]
    assert children
    deadline = time.monotonic() + 5
    while any(alive(p) for p in children) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(p) for p in children), "the IUT's child processes survived the run"
    assert list(isolated_tmp.iterdir()) == []


def test_unstartable_iut_is_reported(tmp_path: Path) -> None:
    report, _ = _run(["/nonexistent/adapter"], tmp_path / "replays")
    assert report.aborted is not None
    assert report.aborted.kind == "start_failed"
    assert report.cases == []
    text = render(report)
    assert "RUN ABORTED: the IUT could not be started" in text
    assert "requirement verdict" not in text  # no table of empty rows before hello
    assert text.splitlines()[-1].startswith("VERDICT: ABORTED")


@pytest.mark.req("SQL_01")
def test_iut_crashing_in_the_sql_round_trip_is_a_failed_case(
    tmp_path: Path, isolated_tmp: Path
) -> None:
    # bootstrap and startup are answered, then the IUT dies on the lifecycle's sql_wrap: that
    # used to escape the scenarios stage as a traceback instead of becoming a failed case.
    replays = str(tmp_path / "replays")
    config = Config(fake("crash", budget=2), timeout=5.0, replay_dir=replays, stages=("scenarios",))
    report = run_harness(config)
    sql = [c for c in report.cases if c.name.startswith("lifecycle/pg_wrap and pg_unwrap")]
    assert [c.verdict for c in sql] == [Verdict.FAILED]
    assert sql[0].requirements == ("ADP_01", "SQL_01")  # charged to ADP_01, SQL_01 cited
    assert sql[0].found.startswith("crashed")
    assert "segmentation fault (pretend)" in sql[0].detail
    assert list(isolated_tmp.iterdir()) == []
