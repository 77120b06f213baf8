"""Every mutant of the zoo is caught by the harness, which charges a failure to the requirement
it violates (the failure's primary requirement, not one it merely cites).

The zoo as ``pgkms-conformance mutants`` runs it by default: every stage and the repository's
vectors, one harness run per mutant, each focused on the mutant's rule (its checks first) and
ended at the first failure charged to it. The durability mutants are caught through the IUT's
filesystem trace (capability fs_trace, stage ``durability``): no mutant is left outside the
harness's view.
"""

from __future__ import annotations

import argparse

import pytest
from pgkms_conformance.harness.requirements import REQUIREMENTS
from pgkms_conformance.mutants.catalog import MUTANTS
from pgkms_conformance.mutants.cli import configure, settings_from
from pgkms_conformance.mutants.zoo import ZooSettings, run_zoo

pytestmark = pytest.mark.req("CONF_01")


def _cli_settings() -> ZooSettings:
    parser = argparse.ArgumentParser()
    configure(parser)
    return settings_from(parser.parse_args([]))


# What ``pgkms-conformance mutants`` runs with no options.
SETTINGS = _cli_settings()


def test_the_zoo_is_big_and_well_formed() -> None:
    assert len(MUTANTS) >= 20
    assert len({m.name for m in MUTANTS}) == len(MUTANTS)
    for mutant in MUTANTS:
        assert mutant.violates in REQUIREMENTS, mutant.name


@pytest.mark.long  # about a third of the suite's wall time: started first
def test_every_mutant_is_caught_charged_to_its_requirement() -> None:
    """All mutants at once, one process each, twice as many at a time as there are cores; each
    run ends at the mutant's first failure charged to its rule (what is judged here). One test,
    not one per mutant: the suite runs on several workers, and each would run the zoo again."""
    results = {r.name: r for r in run_zoo(MUTANTS, SETTINGS)}
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
