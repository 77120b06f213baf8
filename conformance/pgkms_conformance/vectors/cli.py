"""``pgkms-conformance vectors generate|check|validate``: write the vector files, verify them,
or judge vector files brought from elsewhere.

``generate [--out DIR] [--accumulated N]`` regenerates every file (default: the repository's
``vectors/``), printing progress, the number of tests per family and the time taken.
``check [--dir DIR]`` regenerates in memory, compares byte for byte with the files on disk
(naming the first differing file and test) and validates every file against its schema; it
exits 1 on any difference, so CI fails when vectors and generator drift apart.
``validate PATH...`` checks files (a directory: its ``*.json``, other JSON skipped with a
warning) against the project's schemas, as ``run --vectors`` will, and summarises each: its
family, tests, provenance and the flags per bug type; it exits 1 if a file is refused.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from pgkms_conformance.vectors import accumulated
from pgkms_conformance.vectors.generate import check, generate_all, write
from pgkms_conformance.vectors.runner import (
    REPO_VECTOR_DIR,
    VectorFile,
    VectorFileError,
    iter_vector_files,
)
from pgkms_conformance.vectors.triage import UNTRIAGED, severity


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
    val = sub.add_parser(
        "validate", help="check your own vector files against the project's schemas"
    )
    val.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="a file or directory")


def _progress(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def run(args: argparse.Namespace) -> int:
    if args.vectors_command == "generate":
        return _generate(args.out, args.accumulated)
    if args.vectors_command == "validate":
        return _validate(args.paths)
    return _check(args.dir)


def _summary(vector_file: VectorFile) -> list[str]:
    """What a validated file holds: family, tests, provenance, flags per bug type."""
    doc = vector_file.document
    source = doc.get("source", {})
    origin = " ".join(str(source[k]) for k in ("name", "version") if k in source)
    lines = [
        f"{vector_file.path}: valid {doc['family']} file, {doc['numberOfTests']} tests"
        + (f", from {origin}" if origin else "")
    ]
    by_type: dict[str, list[str]] = {}
    for flag, note in doc["notes"].items():
        by_type.setdefault(str(note.get("bugType", UNTRIAGED)), []).append(flag)
    for bug_type in sorted(by_type, key=lambda b: (severity(b), b)):
        lines.append(f"  {bug_type}: {', '.join(sorted(by_type[bug_type]))}")
    observed = sum(1 for _, t in vector_file.tests() if "observed" in t)
    if observed:
        lines.append(f"  {observed} test(s) say what the source system observed")
    return lines


def _validate(paths: list[Path]) -> int:
    refused = 0
    for path in paths:
        found = 0
        try:
            for vector_file in iter_vector_files([path]):
                found += 1
                print("\n".join(_summary(vector_file)))
        except VectorFileError as exc:
            refused += 1
            print(f"REFUSED {exc}")
            continue
        if not found:
            refused += 1
            print(f"REFUSED {path}: no vector file there")
    return 1 if refused else 0


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
