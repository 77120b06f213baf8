"""Running the harness on every mutant, and the mutation score.

A mutant is *caught* when the harness's verdict lists the requirement the mutant declares among
the failed ones, failed as the *primary* requirement of some case (the one a failure is charged
to; a requirement a failure merely cites is not failed by it): failing for some other reason
would show a harness that notices something is off but names the wrong rule, which is not good
enough for a conformance report.

Mutants run concurrently, one process each (``jobs``, ``default_jobs`` by default), longest
expected first so that no core idles at the end. A mutant's harness run stops at its first
failure charged to the requirement the mutant violates: from there the verdict cannot change
(a caught mutant stays caught), so the rest of the run would only add failures to other rules.
``ZooSettings.full_runs`` keeps every run whole, for the complete list of rules each mutant
fails.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pgkms_conformance.harness.model import Case, Verdict
from pgkms_conformance.harness.run import STAGES, Config, run_harness
from pgkms_conformance.mutants.catalog import BY_NAME, MUTANTS, Mutant


def mutant_command(name: str) -> list[str]:
    return [sys.executable, "-P", "-m", "pgkms_conformance.mutants.adapter", "--mutant", name]


@dataclass(frozen=True)
class ZooSettings:
    examples: int = 25
    seed: int = 0
    timeout: float = 10.0
    stages: tuple[str, ...] = STAGES
    vector_paths: tuple[Path, ...] = ()
    full_runs: bool = False  # False: a run ends at the mutant's first failure charged to its rule

    def config(self, command: list[str], first: str | None = None, **more: Any) -> Config:
        """The harness configuration of one run with these settings (``more``: other fields)."""
        return Config(
            command,
            vector_paths=list(self.vector_paths),
            examples=self.examples,
            seed=self.seed,
            timeout=self.timeout,
            stages=self.stages,
            first=first,
            **more,
        )


@dataclass(frozen=True)
class MutantResult:
    name: str
    violates: str
    caught: bool
    failed_requirements: tuple[str, ...]  # charged as the primary requirement of a failure
    verdict: str  # the harness run's: pass / fail / aborted
    duration_s: float
    note: str = ""
    cited_requirements: tuple[str, ...] = ()  # named by failures, not charged
    stopped_early: bool = False  # the run ended at the catch: the failures up to it only


def run_mutant(name: str, settings: ZooSettings) -> MutantResult:
    mutant = BY_NAME[name]
    t0 = time.monotonic()
    stop_when = None if settings.full_runs else _charged_to(mutant.violates)
    # A mutant's failures are the point, so its replay files (which carry the failing inputs)
    # are not left for anyone: one zoo run would leave sixty directories behind.
    with tempfile.TemporaryDirectory(prefix="pgkms-zoo-replays-") as replays:
        first = None if settings.full_runs else mutant.violates
        config = settings.config(mutant_command(name), first, replay_dir=replays)
        report = run_harness(config, stop_when=stop_when)
    stopped_early = stop_when is not None and any(stop_when(c) for c in report.cases[-1:])
    rows = report.requirement_results()
    failed = tuple(r.id for r in rows if r.verdict is Verdict.FAILED)
    cited = tuple(r.id for r in rows if r.cited and r.verdict is not Verdict.FAILED)
    verdict = "aborted" if report.aborted else "pass" if report.passed else "fail"
    note = ""
    if report.aborted is not None:
        note = f"the run was aborted: {report.aborted.kind}: {report.aborted.message}"
    return MutantResult(
        name=name,
        violates=mutant.violates,
        caught=mutant.violates in failed,
        failed_requirements=failed,
        verdict=verdict,
        duration_s=time.monotonic() - t0,
        note=note,
        cited_requirements=cited,
        stopped_early=stopped_early,
    )


def _charged_to(requirement: str) -> Callable[[Case], bool]:
    def charged(case: Case) -> bool:
        return case.primary == requirement

    return charged


def run_zoo(
    mutants: Sequence[Mutant] = MUTANTS,
    settings: ZooSettings | None = None,
    jobs: int | None = None,
    on_result: Callable[[MutantResult], None] | None = None,
    settings_for: Callable[[Mutant], ZooSettings] | None = None,
) -> list[MutantResult]:
    """Run every mutant (with ``settings``, or ``settings_for(mutant)`` when given) on ``jobs``
    processes (default: ``default_jobs``); results in the order of ``mutants``, and to
    ``on_result`` as each run ends."""
    default = settings or ZooSettings()
    plans = [(m.name, settings_for(m) if settings_for else default) for m in mutants]
    jobs = jobs if jobs is not None else default_jobs()
    results: dict[str, MutantResult] = {}

    def done(result: MutantResult) -> None:
        results[result.name] = result
        if on_result:
            on_result(result)

    if jobs <= 1:
        for name, plan in plans:
            done(run_mutant(name, plan))
    else:
        # Longest first: a long run started last would keep one core busy alone at the end.
        order = sorted(plans, key=lambda p: _expected_cost(p[1]), reverse=True)
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(run_mutant, name, plan) for name, plan in order]
            for future in as_completed(futures):
                done(future.result())
    return [results[name] for name, _ in plans]


def default_jobs() -> int:
    """Mutant runs at a time: twice the cores. Most of a mutant's run waits (on a timeout it
    must see expire, a passphrase command, a child IUT), so one per core leaves a core idle a
    third of the time: the zoo took 66-69 s at 2 jobs on 2 cores, 48 s at 3 and 45 s at 4."""
    return 2 * available_cores()


def available_cores() -> int:
    """The cores this process may run on (its affinity mask, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


# Rough wall seconds of each stage in a mutant's run, for the order of the runs only.
_STAGE_COST = {"safety": 15.0, "concurrency": 4.0}


def _expected_cost(settings: ZooSettings) -> float:
    return sum(_STAGE_COST.get(stage, 1.0) for stage in settings.stages)


def score(results: Sequence[MutantResult]) -> tuple[int, int]:
    return sum(r.caught for r in results), len(results)
