"""``pgkms-conformance vectors generate|check``: write the vector files, or verify them.

``generate [--out DIR] [--accumulated N]`` regenerates every file (default: the repository's
``vectors/``), printing progress, the number of tests per family and the time taken.
``check [--dir DIR]`` regenerates in memory, compares byte for byte with the files on disk
(naming the first differing file and test) and validates every file against its schema; it
exits 1 on any difference, so CI fails when vectors and generator drift apart.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from pgkms_conformance.vectors import accumulated
from pgkms_conformance.vectors.generate import check, generate_all, write
from pgkms_conformance.vectors.runner import REPO_VECTOR_DIR, VectorFileError, iter_vector_files


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="vectors_command", required=True)
    gen = sub.add_parser("generate", help="write every vector file and schema")
    gen.add_argument("--out", type=Path, default=REPO_VECTOR_DIR, help="output directory")
    gen.add_argument(
        "--accumulated",
        type=int,
        default=accumulated.DEFAULT_COUNT,
        metavar="N",
        help=f"cases in accumulated.json (default {accumulated.DEFAULT_COUNT})",
    )
    chk = sub.add_parser("check", help="regenerate in memory and compare with the files")
    chk.add_argument("--dir", type=Path, default=REPO_VECTOR_DIR, help="vector directory")


def _progress(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def run(args: argparse.Namespace) -> int:
    if args.vectors_command == "generate":
        return _generate(args.out, args.accumulated)
    return _check(args.dir)


def _generate(out: Path, count: int) -> int:
    if count < 1:
        sys.stderr.write("vectors generate: --accumulated must be at least 1\n")
        return 2
    start = time.perf_counter()
    generated = generate_all(count, progress=_progress)
    write(generated, out)
    total = time.perf_counter() - start
    for family, n in generated.counts.items():
        print(f"{family:>20}: {n:6d} tests  ({generated.seconds[family]:.1f} s)")
    print(
        f"{'total':>20}: {sum(generated.counts.values()):6d} tests in {len(generated.counts)} "
        f"files, written to {out} in {total:.1f} s"
    )
    return 0


def _check(directory: Path) -> int:
    start = time.perf_counter()
    problems = check(directory, generate_all(progress=_progress))
    try:
        files = list(iter_vector_files([directory]))
    except VectorFileError as exc:
        problems.append(str(exc))
        files = []
    for problem in problems:
        print(f"DIFFERENT {problem}")
    elapsed = time.perf_counter() - start
    if problems:
        print(f"vectors check: {len(problems)} problem(s) ({elapsed:.1f} s)")
        return 1
    tests = sum(int(f.document["numberOfTests"]) for f in files)
    print(
        f"vectors check: {len(files)} files, {tests} tests: identical to a regeneration and "
        f"valid against their schemas ({elapsed:.1f} s)"
    )
    return 0
