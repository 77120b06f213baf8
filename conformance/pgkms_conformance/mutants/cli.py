"""``pgkms-conformance mutants``: run the harness on the mutant zoo; the mutation score last.

Exit status 0 when every mutant the harness is meant to catch is caught, naming its requirement;
1 otherwise. ``--list`` prints the zoo without running it.
"""

from __future__ import annotations

import argparse
import sys

from pgkms_conformance.harness.options import positive_seconds
from pgkms_conformance.harness.run import STAGES
from pgkms_conformance.harness.vector_stage import default_vector_paths
from pgkms_conformance.mutants.catalog import BY_NAME, MUTANTS
from pgkms_conformance.mutants.zoo import (
    MutantResult,
    ZooSettings,
    default_jobs,
    run_zoo,
    score,
)


def configure(parser: argparse.ArgumentParser) -> None:
    defaults = ZooSettings()  # one source for the defaults: the settings' own
    parser.add_argument("names", nargs="*", help="mutants to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the zoo and exit")
    parser.add_argument(
        "--examples", type=int, default=defaults.examples, help="examples per property"
    )
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--timeout", type=positive_seconds, default=defaults.timeout)
    parser.add_argument(
        "--no-vectors", action="store_true", help="skip the static vectors (faster)"
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=default_jobs(),
        help="mutants run at a time (default: twice the cores)",
    )
    parser.add_argument(
        "--full-runs",
        action="store_true",
        default=defaults.full_runs,
        help="run each mutant's harness run to its end (default: stop at its first failure "
        "charged to the rule it violates)",
    )


def _line(r: MutantResult) -> str:
    mark = "caught " if r.caught else "MISSED "
    others = [x for x in r.failed_requirements if x != r.violates]
    also = f" (also failed: {', '.join(others)})" if others else ""
    text = f"{mark} {r.name:<36} {r.violates:<9} {r.duration_s:5.1f}s{also}"
    if r.note and not r.caught:
        text += f"\n        {r.note}"
    return text


def settings_from(args: argparse.Namespace) -> ZooSettings:
    """The settings of every mutant's run, from the command line (``configure``'s options)."""
    stages = tuple(s for s in STAGES if not (args.no_vectors and s == "vectors"))
    return ZooSettings(
        examples=args.examples,
        seed=args.seed,
        timeout=args.timeout,
        stages=stages,
        vector_paths=() if args.no_vectors else tuple(default_vector_paths()),
        full_runs=args.full_runs,
    )


def run(args: argparse.Namespace) -> int:
    if args.list:
        for m in MUTANTS:
            sys.stdout.write(f"{m.name:<36} {m.violates:<9} {m.description}\n")
        return 0
    unknown = [n for n in args.names if n not in BY_NAME]
    if unknown:
        sys.stderr.write(f"pgkms-conformance mutants: unknown mutant(s): {', '.join(unknown)}\n")
        return 2
    mutants = [BY_NAME[n] for n in args.names] if args.names else list(MUTANTS)
    settings = settings_from(args)

    def show(result: MutantResult) -> None:
        sys.stdout.write(_line(result) + "\n")
        sys.stdout.flush()

    results = run_zoo(mutants, settings, jobs=max(1, args.jobs), on_result=show)
    caught, total = score(results)
    missed = [r.name for r in results if not r.caught]
    sys.stdout.write(f"mutation score: {caught}/{total} caught\n")
    return 0 if not missed else 1
