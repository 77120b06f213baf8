"""Run the harness in a process of its own and print what a robustness test checks, as JSON.

``python run_harness_child.py CONFIG_JSON``: the harness is run as a user runs it (its own
process, so its peak memory and its descendants are its own), against the IUT command and
stages the config names. Printed: wall-clock seconds, peak RSS (KiB, ``VmHWM``: ``ru_maxrss``
would include the pytest process this one was forked from), the abort
kind, and the failed cases (name, requirements, found, detail).
"""

from __future__ import annotations

import json
import sys
import time

from pgkms_conformance.harness.model import Verdict
from pgkms_conformance.harness.procs import peak_rss_kib
from pgkms_conformance.harness.run import Config, run_harness


def main() -> None:
    spec = json.loads(sys.argv[1])
    config = Config(
        spec["command"],
        examples=spec.get("examples", 3),
        timeout=spec["timeout"],
        stages=tuple(spec["stages"]),
        replay_dir=spec["replay_dir"],
        max_failures=spec.get("max_failures", 3),
    )
    t0 = time.monotonic()
    report = run_harness(config)
    elapsed = time.monotonic() - t0
    failed = [
        {"name": c.name, "requirements": list(c.requirements), "found": c.found, "detail": c.detail}
        for c in report.cases
        if c.verdict is Verdict.FAILED
    ]
    out = {
        "elapsed": elapsed,
        "maxrss_kib": peak_rss_kib(),
        "aborted": report.aborted.kind if report.aborted else None,
        "aborted_tail": list(report.aborted.stderr_tail) if report.aborted else [],
        "cases": len(report.cases),
        "failed": failed,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
