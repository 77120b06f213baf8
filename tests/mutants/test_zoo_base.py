"""The zoo's base: the independent implementation without a mutation passes the run each mutant
gets (a module of its own, so that a second worker runs it while the zoo runs)."""

from __future__ import annotations

import pytest
from pgkms_conformance.harness.run import run_harness
from pgkms_conformance.mutants.zoo import mutant_command

from tests.mutants.test_zoo import SETTINGS

pytestmark = pytest.mark.req("CONF_01")


@pytest.mark.long
def test_unmutated_independent_passes_everything_the_zoo_runs() -> None:
    """The zoo's base: without a mutation, the same run finds nothing to charge."""
    report = run_harness(SETTINGS.config(mutant_command("none")))
    assert report.passed, [(c.name, c.found) for c in report.failures]
