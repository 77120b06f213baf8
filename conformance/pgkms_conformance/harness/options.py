"""Command-line value types shared by the harness's commands (``run``, ``stress``)."""

from __future__ import annotations

import argparse
import math


def positive_seconds(text: str) -> float:
    """An ``argparse`` type: a finite number of seconds above zero (``nan`` and ``inf`` are
    numbers to ``float`` but no timeout)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds above 0, found {text!r}")
    return value
