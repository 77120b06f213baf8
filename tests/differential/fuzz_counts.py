"""How many generated inputs each fuzz target tried (printed at the end of a run by
``tests/conftest.py``, summed over pytest-xdist workers)."""

from __future__ import annotations

from collections import Counter

FUZZ_INPUTS: Counter[str] = Counter()


def count(target: str, n: int = 1) -> None:
    FUZZ_INPUTS[target] += n
