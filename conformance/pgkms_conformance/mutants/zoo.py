"""Running the harness on every mutant, and the mutation score.

A mutant is *caught* when the harness's verdict lists the requirement the mutant declares among
the failed ones, failed as the *primary* requirement of some case (the one a failure is charged
to; a requirement a failure merely cites is not failed by it): failing for some other reason
would show a harness that notices something is off but names the wrong rule, which is not good
enough for a conformance report. Mutants run in
separate processes (``jobs``), each a whole harness run with its own IUT.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from pgkms_conformance.harness.model import Verdict
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


def run_mutant(name: str, settings: ZooSettings) -> MutantResult:
    mutant = BY_NAME[name]
    config = Config(
        mutant_command(name),
        vector_paths=list(settings.vector_paths),
        examples=settings.examples,
        seed=settings.seed,
        timeout=settings.timeout,
        stages=settings.stages,
    )
    t0 = time.monotonic()
    report = run_harness(config)
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
    )


def run_zoo(
    mutants: Sequence[Mutant] = MUTANTS,
    settings: ZooSettings | None = None,
    jobs: int = 1,
    on_result: Callable[[MutantResult], None] | None = None,
) -> list[MutantResult]:
    settings = settings or ZooSettings()
    names = [m.name for m in mutants]
    results: list[MutantResult] = []
    if jobs <= 1:
        for name in names:
            results.append(run_mutant(name, settings))
            if on_result:
                on_result(results[-1])
        return results
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        for result in pool.map(run_mutant, names, [settings] * len(names)):
            results.append(result)
            if on_result:
                on_result(result)
    return results


def score(results: Sequence[MutantResult]) -> tuple[int, int]:
    return sum(r.caught for r in results), len(results)
