"""Shared test configuration: hypothesis profiles and small fixtures.

Profiles: ``ci`` (derandomized, so CI is deterministic), ``dev`` (the default for local runs),
``thorough`` (many more examples, for ``nox -s thorough``). Select with HYPOTHESIS_PROFILE.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from tests.differential.fuzz_counts import FUZZ_INPUTS

settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=60,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.register_profile(
    "thorough", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


# -- the longest tests first ---------------------------------------------------------------------
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``long`` run first: on several workers (pytest-xdist), a long test that
    happens to start last keeps one worker busy long after the others have finished."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)  # stable: else as found


# -- the fuzz targets' input counts (tests/differential/fuzz_counts.py), printed at the end ------
def pytest_sessionfinish(session: pytest.Session) -> None:
    """A pytest-xdist worker hands its counts to the controller (``pytest_testnodedown``)."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["fuzz_inputs"] = dict(FUZZ_INPUTS)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    FUZZ_INPUTS.update(getattr(node, "workeroutput", {}).get("fuzz_inputs", {}))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not FUZZ_INPUTS:
        return
    terminalreporter.section("differential fuzzing: generated inputs tried")
    for target, n in sorted(FUZZ_INPUTS.items()):
        terminalreporter.write_line(f"{target:32} {n:8d}")
    terminalreporter.write_line(f"{'total':32} {sum(FUZZ_INPUTS.values()):8d}")
