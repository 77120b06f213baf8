"""Harness figures: adapter round trips per second, and the wall time of a full harness run,
for each bundled implementation. Run by ``nox -s bench`` after ``bench/run.py``.

Round trips: ``derive_kek`` on a 64-byte passphrase (the cheapest op that exercises a whole
request: JSON, hex, a hash, the response), repeated on one running adapter. A full run is what
``nox -s main`` does: every stage, the repository's vectors, the default 100 examples.
"""

from __future__ import annotations

import argparse
import time

from pgkms_conformance.bundled import BUNDLED
from pgkms_conformance.harness.run import Config, run_harness
from pgkms_conformance.harness.vector_stage import default_vector_paths
from pgkms_conformance.protocol.client import AdapterClient


def round_trips(command: list[str], seconds: float) -> tuple[int, float]:
    params = {"passphrase": "ab" * 64}
    with AdapterClient(command) as client:
        client.hello()
        for _ in range(200):  # warm-up
            client.call("derive_kek", **params)
        count, t0 = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - t0) < seconds:
            for _ in range(100):
                client.call("derive_kek", **params)
            count += 100
    return count, elapsed


def full_run(command: list[str], examples: int) -> tuple[float, int, bool]:
    config = Config(command, vector_paths=default_vector_paths(), examples=examples)
    t0 = time.perf_counter()
    report = run_harness(config)
    return time.perf_counter() - t0, len(report.cases), report.passed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per round-trip figure")
    parser.add_argument("--examples", type=int, default=100)
    args = parser.parse_args()
    print(f"{'implementation':<14}{'round trips/s':>15}{'full run (s)':>14}{'cases':>8}  verdict")
    for name, command in BUNDLED.items():
        count, elapsed = round_trips(command, args.seconds)
        wall, cases, passed = full_run(command, args.examples)
        verdict = "pass" if passed else "FAIL"
        print(f"{name:<14}{count / elapsed:>15,.0f}{wall:>14.1f}{cases:>8}  {verdict}")


if __name__ == "__main__":
    main()
