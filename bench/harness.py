"""Harness figures: adapter round trips per second, and the CPU cost of a full harness run, for
each bundled implementation. Run by ``nox -s bench`` after ``bench/run.py``.

Round trips: ``derive_kek`` on a 64-byte passphrase (the cheapest op that exercises a whole
request: JSON, hex, a hash, the response), on one running adapter, measured two ways in
interleaved rounds: one request at a time (send, wait for the answer), and pipelined (a window
of requests in flight, answers read in order: what the protocol allows, ADP_01). The pipe is
driven directly, not through the harness's client, so the figure is the adapter's own.

A full run is what ``nox -s main`` does (every stage, the repository's vectors, the default
examples); its cost is split into the harness's CPU time and the IUT's (children's) CPU time.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

from pgkms_conformance.bundled import BUNDLED
from pgkms_conformance.harness.run import Config, run_harness
from pgkms_conformance.harness.vector_stage import default_vector_paths

REQUEST = {"op": "derive_kek", "passphrase": "ab" * 64}


def _line(request_id: int) -> bytes:
    return json.dumps({"id": request_id, **REQUEST}).encode() + b"\n"


def round_trips(command: list[str], window: int, seconds: float) -> float:
    """Answers per wall-clock second with ``window`` requests in flight (1 = one at a time)."""
    proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdin is not None
    assert proc.stdout is not None
    try:
        proc.stdin.write(b'{"id": 0, "op": "hello"}\n')
        proc.stdin.flush()
        proc.stdout.readline()
        next_id, answered, t0 = 1, 0, time.perf_counter()
        while (elapsed := time.perf_counter() - t0) < seconds:
            batch = b"".join(_line(next_id + i) for i in range(window))
            next_id += window
            proc.stdin.write(batch)
            proc.stdin.flush()
            for _ in range(window):
                if not proc.stdout.readline():
                    raise RuntimeError(f"{command[0]}: adapter closed its output")
            answered += window
        return answered / elapsed
    finally:
        proc.stdin.close()
        proc.wait(timeout=10)


def full_run(command: list[str], examples: int) -> tuple[float, float, float, int, bool]:
    """Wall seconds, harness CPU seconds, IUT CPU seconds, cases, verdict of one full run."""
    config = Config(command, vector_paths=default_vector_paths(), examples=examples)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu0, t0 = time.process_time(), time.perf_counter()
    report = run_harness(config)
    wall, harness_cpu = time.perf_counter() - t0, time.process_time() - cpu0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    iut_cpu = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
    return wall, harness_cpu, iut_cpu, len(report.cases), report.passed


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):>9,.0f} ({min(values):,.0f}..{max(values):,.0f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="per round-trip figure")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--window", type=int, default=64, help="requests in flight, pipelined")
    parser.add_argument("--examples", type=int, default=100)
    args = parser.parse_args()
    print(f"round trips per second, median (min..max) of {args.rounds} interleaved rounds:")
    print(f"{'implementation':<14}{'one at a time':>26}{f'window {args.window}':>28}")
    for name, command in BUNDLED.items():
        single: list[float] = []
        piped: list[float] = []
        for _ in range(args.rounds):
            single.append(round_trips(command, 1, args.seconds))
            piped.append(round_trips(command, args.window, args.seconds))
        print(f"{name:<14}{spread(single):>26}{spread(piped):>28}")
    print(f"\nfull harness run (--examples {args.examples}):")
    print(f"{'implementation':<14}{'wall s':>8}{'harness CPU s':>15}{'IUT CPU s':>11}"
          f"{'cases':>8}  verdict")  # fmt: skip
    for name, command in BUNDLED.items():
        wall, harness_cpu, iut_cpu, cases, passed = full_run(command, args.examples)
        verdict = "pass" if passed else "FAIL"
        print(f"{name:<14}{wall:>8.1f}{harness_cpu:>15.2f}{iut_cpu:>11.2f}{cases:>8}  {verdict}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
