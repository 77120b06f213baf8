"""``pgkms-conformance mutants`` (placeholder until the zoo lands)."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    return 2
