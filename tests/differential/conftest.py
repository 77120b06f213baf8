"""Counts the generated inputs each fuzz target tried, and prints them at the end of the run."""

from __future__ import annotations

from collections import Counter

import pytest

FUZZ_INPUTS: Counter[str] = Counter()


def count(target: str, n: int = 1) -> None:
    FUZZ_INPUTS[target] += n


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not FUZZ_INPUTS:
        return
    terminalreporter.section("differential fuzzing: generated inputs tried")
    for target, n in sorted(FUZZ_INPUTS.items()):
        terminalreporter.write_line(f"{target:32} {n:8d}")
    terminalreporter.write_line(f"{'total':32} {sum(FUZZ_INPUTS.values()):8d}")
