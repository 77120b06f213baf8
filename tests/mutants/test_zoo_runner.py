"""The zoo's machinery: a run that stops at its first catch, focused on the mutant's rule (stages
ordered to reach its checks sooner), per-mutant settings on a pool of processes, results in the
order asked for whatever order the runs end in."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from pgkms_conformance.harness.run import STAGES, VECTORS_REST, Config, run_harness, stage_order
from pgkms_conformance.harness.vector_stage import default_vector_paths
from pgkms_conformance.mutants.catalog import BY_NAME
from pgkms_conformance.mutants.zoo import ZooSettings, mutant_command, run_mutant, run_zoo
from pgkms_conformance.vectors.runner import REPO_VECTOR_DIR

from tests.harness.helpers import REFERENCE

pytestmark = pytest.mark.req("CONF_01")

PASSPHRASE_VECTORS = ZooSettings(
    stages=("vectors",), vector_paths=(REPO_VECTOR_DIR / "passphrase_command.json",)
)


def test_stop_when_ends_the_run_after_that_case() -> None:
    stages = ("protocol", "properties")
    whole = run_harness(Config(mutant_command("none"), examples=3, stages=stages))
    assert len(whole.cases) > 3
    third = whole.cases[2].name
    report = run_harness(
        Config(mutant_command("none"), examples=3, stages=stages),
        stop_when=lambda case: case.name == third,
    )
    assert [c.name for c in report.cases] == [c.name for c in whole.cases[:3]]
    assert sum(sum(s.counts.values()) for s in report.stages) == 3
    assert report.aborted is None


def test_a_mutant_stops_at_its_first_failure_charged_to_its_rule() -> None:
    early = run_mutant("command_quoted_in_message", PASSPHRASE_VECTORS)
    assert early.caught and early.stopped_early
    assert early.failed_requirements == ("PASS_10",)
    full = run_mutant(
        "command_quoted_in_message",
        ZooSettings(
            stages=PASSPHRASE_VECTORS.stages,
            vector_paths=PASSPHRASE_VECTORS.vector_paths,
            full_runs=True,
        ),
    )
    assert full.caught and not full.stopped_early
    assert full.verdict == early.verdict == "fail"


def test_a_mutant_leaves_no_replay_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its failing property is written as a replay, into a directory the zoo removes."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    caught = run_mutant("percent_percent_kept", ZooSettings(stages=("properties",)))
    assert caught.caught
    assert list(tmp_path.iterdir()) == []


def test_settings_per_mutant_and_results_in_the_order_asked() -> None:
    names = ["hmac_over_iv", "command_quoted_in_message", "fixed_iv"]
    chosen = {
        "command_quoted_in_message": PASSPHRASE_VECTORS,
        "hmac_over_iv": ZooSettings(examples=3, stages=("properties",)),
        "fixed_iv": ZooSettings(examples=3, stages=("protocol",)),  # cannot catch it
    }
    results = run_zoo([BY_NAME[n] for n in names], jobs=2, settings_for=lambda m: chosen[m.name])
    assert [r.name for r in results] == names
    caught = {r.name: r.caught for r in results}
    assert caught == {"hmac_over_iv": True, "command_quoted_in_message": True, "fixed_iv": False}
    assert not results[2].stopped_early
    assert results[2].verdict == "pass"


def test_a_focused_run_on_a_safety_rule_runs_the_safety_stage_after_protocol() -> None:
    assert stage_order(STAGES, None) == list(STAGES)
    focused = stage_order(STAGES, "ENV_02")
    assert focused[:2] == ["protocol", "safety"]
    assert stage_order(("vectors", "safety"), "ROT_07") == ["safety", "vectors", VECTORS_REST]


def test_a_focused_run_defers_the_vectors_that_do_not_cite_its_rule() -> None:
    assert stage_order(STAGES, "WRAP_05") == [*STAGES, VECTORS_REST]
    assert stage_order(STAGES, "ADP_01") == list(STAGES)  # every stage charges ADP_01
    report = run_harness(
        Config(REFERENCE, stages=("vectors",), vector_paths=default_vector_paths(), first="WRAP_05")
    )
    parts = [s.name for s in report.stages]
    assert parts == ["vectors", "vectors"]
    cited = [c for c in report.cases if "WRAP_05" in c.requirements]
    first_rest = next(i for i, c in enumerate(report.cases) if "WRAP_05" not in c.requirements)
    assert cited and all(report.cases.index(c) < first_rest for c in cited)
    full = run_harness(Config(REFERENCE, stages=("vectors",), vector_paths=default_vector_paths()))
    assert sorted(c.name for c in report.cases) == sorted(c.name for c in full.cases)
