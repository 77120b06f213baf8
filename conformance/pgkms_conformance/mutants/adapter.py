"""``python -m pgkms_conformance.mutants.adapter --mutant NAME``: the independent implementation's
adapter with one mutation switched on (``--mutant none`` serves it unmodified)."""

from __future__ import annotations

import argparse
import sys

from pgkms_conformance.mutants.catalog import BY_NAME
from pgkms_conformance.mutants.patching import module


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="pgkms_conformance.mutants.adapter")
    parser.add_argument("--mutant", required=True, choices=["none", *BY_NAME])
    args = parser.parse_args(argv)
    if args.mutant != "none":
        BY_NAME[args.mutant].apply()
    sys.stderr.write(f"mutant adapter: {args.mutant}\n")
    module("adapter").main()


if __name__ == "__main__":
    main()
