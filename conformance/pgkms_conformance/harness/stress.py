"""``pgkms-conformance stress``: the concurrency stage's rounds alone, as many as asked (CONC_01).

Prints the rounds run, the key sets lost and the invariant violations (each naming its round and
schedule, so ``--seed`` and the round number reproduce it). Exit status: 0 when no round broke an
invariant; 1 on any violation, or when the IUT could not even set up the shared key set; 2 for a
usage error.
"""

from __future__ import annotations

import argparse
import sys

from pgkms_conformance.bundled import adapter_command
from pgkms_conformance.harness.concurrency import MAX_PROCS, MIN_PROCS, RoundResult, run_rounds
from pgkms_conformance.harness.options import positive_seconds


def _count(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _procs(text: str) -> int:
    value = int(text)
    if value < MIN_PROCS:
        raise argparse.ArgumentTypeError(f"must be at least {MIN_PROCS}")
    return value


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--impl",
        required=True,
        help="'reference', 'independent', or the command line that starts your adapter",
    )
    parser.add_argument("--rounds", type=_count, default=100, help="rounds (default 100)")
    parser.add_argument(
        "--procs",
        type=_procs,
        default=MAX_PROCS,
        metavar="K",
        help=f"at most K concurrent adapter processes per round, at least {MIN_PROCS} "
        f"(default {MAX_PROCS})",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the schedule")
    parser.add_argument(
        "--time-limit",
        type=positive_seconds,
        metavar="SECONDS",
        help="stop starting rounds after this",
    )
    parser.add_argument("--quiet", action="store_true", help="no line per violating round")


def run(args: argparse.Namespace) -> int:
    command = adapter_command(args.impl)
    if not command:
        sys.stderr.write("pgkms-conformance stress: --impl names no command\n")
        return 2

    def report(r: RoundResult) -> None:
        if r.violations and not args.quiet:
            sys.stdout.write(f"round {r.index} [{r.describe_schedule()}]:\n")
            for v in r.violations:
                sys.stdout.write(f"  - {v}\n")
            sys.stdout.flush()

    result = run_rounds(
        command,
        rounds=args.rounds,
        max_procs=args.procs,
        seed=args.seed,
        time_limit=args.time_limit,
        on_round=report,
    )
    if result.setup_error is not None:
        sys.stdout.write(f"setup failed: {result.setup_error}\n")
        return 1
    procedures = sum(len(r.schedule) for r in result.rounds)
    stopped = " (stopped by --time-limit)" if result.stopped_by_time else ""
    sys.stdout.write(
        f"rounds: {len(result.rounds)}{stopped}\n"
        f"procedures: {procedures} ({MIN_PROCS} to {args.procs} at once)\n"
        f"lost key sets: {result.lost}\n"
        f"invariant violations: {result.violations}\n"
        f"wall time: {result.seconds:.1f} s\n"
    )
    return 1 if result.violations else 0
