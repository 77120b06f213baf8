"""Harness figures: adapter round trips per second, and the CPU cost of a full harness run, for
each bundled implementation. Run by ``nox -s bench`` after ``bench/run.py``.

Round trips: ``derive_kek`` on a 64-byte passphrase (the cheapest op that exercises a whole
request: JSON, hex, a hash, the response), on one running adapter, measured two ways in
interleaved rounds: one request at a time (send, wait for the answer), and pipelined (a window
of requests in flight, answers read in order: what the protocol allows, by default the
harness's own window, ``DEFAULT_WINDOW``). The pipe is driven directly, not through the
harness's client, so the figure is the adapter's own; beside it, the adapter's CPU time per
answer (from ``/proc``), which a busy machine disturbs less than the rate. The last row is a
minimal Python echo of the protocol (``ECHO``) measured the same way: the adapters' figures are
best read as fractions of it.

A full run is what ``nox -s main`` does (every stage, the repository's vectors, the default
examples); its cost is split into the harness's CPU time and the IUT's (children's) CPU time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from pgkms_conformance.bundled import BUNDLED
from pgkms_conformance.harness.run import Config, run_harness
from pgkms_conformance.harness.vector_stage import default_vector_paths
from pgkms_conformance.protocol.client import DEFAULT_WINDOW

REQUEST = {"op": "derive_kek", "passphrase": "ab" * 64}
# The yardstick measured beside the adapters: the least Python JSON-lines program that answers
# every request (parse, answer, flush), so a figure can be read as a fraction of what Python
# and a pipe allow on this machine today (a shared machine's speed varies from day to day).
ECHO = (
    "import json, sys\n"
    "for line in sys.stdin:\n"
    "    request = json.loads(line)\n"
    "    sys.stdout.write(json.dumps({'id': request['id'], 'ok': True, 'result': {}}) + '\\n')\n"
    "    sys.stdout.flush()\n"
)


# Every request line is this one with its own id: built by joining bytes, so that the driver
# spends as little as it can of the other core (its JSON encoding was a fifth of an answer).
_BEFORE_ID, _AFTER_ID = json.dumps({"id": 0, **REQUEST}).encode().split(b"0", 1)


def _lines(first_id: int, count: int) -> bytes:
    return b"".join(
        _BEFORE_ID + b"%d" % i + _AFTER_ID + b"\n" for i in range(first_id, first_id + count)
    )


def _cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of a running process (``/proc/<pid>/stat``, in ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def round_trips(command: list[str], window: int, seconds: float) -> tuple[float, float]:
    """Answers per wall-clock second with ``window`` requests in flight (1 = one at a time),
    and the adapter's CPU microseconds per answer (less disturbed by a busy machine)."""
    proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdin is not None
    assert proc.stdout is not None
    try:
        proc.stdin.write(b'{"id": 0, "op": "hello"}\n')
        proc.stdin.flush()
        proc.stdout.readline()
        cpu0 = _cpu_seconds(proc.pid)
        # As the harness does (``call_many``): when half the window is answered, the next half
        # goes out, so the adapter has work queued while this process reads its answers.
        next_id, in_flight, answered, t0 = 1, 0, 0, time.perf_counter()
        while (elapsed := time.perf_counter() - t0) < seconds or in_flight:
            if in_flight <= window // 2 and elapsed < seconds:
                proc.stdin.write(_lines(next_id, window - in_flight))
                proc.stdin.flush()
                next_id, in_flight = next_id + window - in_flight, window
            if not proc.stdout.readline():
                raise RuntimeError(f"{command[0]}: adapter closed its output")
            in_flight, answered = in_flight - 1, answered + 1
        return answered / elapsed, (_cpu_seconds(proc.pid) - cpu0) / answered * 1e6
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


def show_round_trips(seconds: float, rounds: int, window: int) -> None:
    print(
        f"round trips per second, median (min..max) of {rounds} interleaved rounds, and the "
        "adapter's median CPU time per answer:"
    )
    print(f"{'implementation':<14}{'one at a time':>34}{f'window {window}':>34}")
    commands = {**BUNDLED, "minimal echo": [sys.executable, "-c", ECHO]}
    for name, command in commands.items():
        figures: dict[int, list[tuple[float, float]]] = {1: [], window: []}
        for _ in range(rounds):
            for w, measured in figures.items():
                measured.append(round_trips(command, w, seconds))
        cells = []
        for measured in figures.values():
            rates, cpu = [r for r, _ in measured], [c for _, c in measured]
            cells.append(f"{spread(rates)} {statistics.median(cpu):5.1f} us")
        print(f"{name:<14}{cells[0]:>34}{cells[1]:>34}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="per round-trip figure")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument(
        "--window", type=int, default=DEFAULT_WINDOW, help="requests in flight, pipelined"
    )
    parser.add_argument("--examples", type=int, default=100)
    parser.add_argument("--no-full-run", action="store_true", help="round trips only")
    args = parser.parse_args()
    show_round_trips(args.seconds, args.rounds, args.window)
    if args.no_full_run:
        return
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
