"""Every mutant of the zoo is caught by the harness, which charges a failure to the requirement
it violates (the failure's primary requirement, not one it merely cites).

One harness run per mutant (static vectors left out to keep CI quick: the harness's own stages
are what the zoo measures; ``pgkms-conformance mutants`` runs with the vectors too). The
durability mutants are caught through the IUT's filesystem trace (capability fs_trace, stage
``durability``): no mutant is left outside the harness's view.
"""

from __future__ import annotations

import pytest
from pgkms_conformance.harness.requirements import REQUIREMENTS
from pgkms_conformance.harness.run import Config, run_harness
from pgkms_conformance.mutants.catalog import MUTANTS, Mutant
from pgkms_conformance.mutants.zoo import ZooSettings, mutant_command, run_zoo
from pgkms_conformance.vectors.runner import REPO_VECTOR_DIR

pytestmark = pytest.mark.req("CONF_01")

SETTINGS = ZooSettings(examples=25, stages=("protocol", "properties", "scenarios", "durability"))
# The issue-10 mutants (the lock, the environment, the passphrase command, failure atomicity) are
# caught by the stages that test those rules; the other stages cannot see them and would only
# add minutes, so these mutants run the safety and concurrency stages alone.
SAFETY_SETTINGS = ZooSettings(examples=5, stages=("safety", "concurrency"))
SAFETY_RULES = frozenset(
    {"CONC_01", "CONC_02", "CONC_03", "ENV_01", "ENV_02", "ENV_03", "ENV_04", "ENV_05"}
    | {"PASS_08", "PASS_09", "BOOT_05", "ROT_07", "ROT_08"}
)
# Rules judged most quickly by the static vectors (PASS_10: a failed command's message, checked
# on the passphrase_command vectors, and by a property whose examples may miss the mutant's case;
# PASS_11: those vectors print more than a pipe holds): those mutants run the vector stage on
# that file alone.
VECTOR_RULES = frozenset({"PASS_10", "PASS_11"})
VECTOR_SETTINGS = ZooSettings(
    stages=("vectors",), vector_paths=(REPO_VECTOR_DIR / "passphrase_command.json",)
)
# Mutants that break the pipelining rule of ADP_01: only a pipelined request stream shows it,
# and the accumulated vector is the harness's pipelined one. The unanswered requests cost one
# request timeout: 3 s is ample for an adapter that answers 10,000 requests in about one.
PIPELINED = frozenset({"one_request_per_read"})
PIPELINED_SETTINGS = ZooSettings(
    stages=("vectors",), vector_paths=(REPO_VECTOR_DIR / "accumulated.json",), timeout=3.0
)


def _settings_for(mutant: Mutant) -> ZooSettings:
    if mutant.name in PIPELINED:
        return PIPELINED_SETTINGS
    if mutant.violates in SAFETY_RULES:
        return SAFETY_SETTINGS
    if mutant.violates in VECTOR_RULES:
        return VECTOR_SETTINGS
    return SETTINGS


def test_the_zoo_is_big_and_well_formed() -> None:
    assert len(MUTANTS) >= 20
    assert len({m.name for m in MUTANTS}) == len(MUTANTS)
    for mutant in MUTANTS:
        assert mutant.violates in REQUIREMENTS, mutant.name


@pytest.mark.long  # about a third of the suite's wall time: started first
def test_every_mutant_is_caught_charged_to_its_requirement() -> None:
    """All mutants at once, one process each, as many at a time as there are cores; each run
    ends at the mutant's first failure charged to its rule (what is judged here). One test, not
    one per mutant: the suite runs on several workers, and each would run the zoo again."""
    results = {r.name: r for r in run_zoo(MUTANTS, settings_for=_settings_for)}
    problems = []
    for mutant in MUTANTS:
        result = results[mutant.name]
        if result.verdict != "fail":
            problems.append(f"{mutant.name}: the harness passed it")
        elif mutant.violates not in result.failed_requirements:
            problems.append(
                f"{mutant.name} should fail {mutant.violates} as a primary requirement; failed "
                f"{result.failed_requirements}, only cited {result.cited_requirements}"
            )
    assert not problems, "\n".join(problems)
    durability = {"DISK_07", "BOOT_04", "ROT_04", "ROT_06", "UPG_01"}
    assert durability <= {m.violates for m in MUTANTS}, "a durability rule has no mutant"


def test_unmutated_independent_passes() -> None:
    report = run_harness(Config(mutant_command("none"), examples=10, stages=SETTINGS.stages))
    assert report.passed, [c.name for c in report.failures]


def test_unmutated_independent_passes_the_safety_stages() -> None:
    report = run_harness(Config(mutant_command("none"), stages=SAFETY_SETTINGS.stages))
    assert report.passed, [(c.name, c.found) for c in report.failures]
