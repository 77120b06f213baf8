"""What a harness run produces: cases, per-requirement verdicts and the run report (data only)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from pgkms_conformance.harness.requirements import REQUIREMENTS, requirement_sort_key, title_of


class Verdict(Enum):
    PASSED = "passed"
    FAILED = "failed"
    UNSUPPORTED = "unsupported"  # needs an op or feature the IUT does not claim
    NOT_APPLICABLE = "not_applicable"  # not checkable for this IUT or through the adapter


# A requirement's verdict is the worst of its cases', in this order.
_SEVERITY = [Verdict.FAILED, Verdict.PASSED, Verdict.UNSUPPORTED, Verdict.NOT_APPLICABLE]


@dataclass(frozen=True)
class Case:
    """One check. ``requirements`` are those it covered (passed) or those it broke (failed).

    A failed case is charged to one requirement, its *primary* one, ``requirements[0]``: the
    most specific rule the failure breaks (the region of a wrapped value that differs, the
    durability point that is missing, the first failing step). The others are *also cited*:
    shown with the failure, but not failed by it.

    ``source`` says where the check came from (a vector's file/tcId/id/comment, a property's
    name and seed, a scenario step); ``expected``/``found`` are already redacted text.
    ``bug_types``: a failed vector's triage, the bug types of its flags, most severe first
    (``pgkms_conformance.vectors.triage``); empty for checks that are not vectors.
    """

    stage: str
    name: str
    verdict: Verdict
    requirements: tuple[str, ...]
    source: dict[str, Any] = field(default_factory=dict)
    expected: str = ""
    found: str = ""
    detail: str = ""
    replay: str | None = None
    bug_types: tuple[str, ...] = ()

    @property
    def primary(self) -> str | None:
        """The requirement a failure is charged to (None for a case that did not fail)."""
        if self.verdict is not Verdict.FAILED or not self.requirements:
            return None
        return self.requirements[0]

    @property
    def also_cited(self) -> tuple[str, ...]:
        """The other requirements a failure names, not failed by it."""
        if self.primary is None:
            return ()
        return tuple(r for r in dict.fromkeys(self.requirements[1:]) if r != self.primary)


@dataclass(frozen=True)
class Aborted:
    """The run stopped early: the IUT could not be started or kept failing at protocol level."""

    kind: str
    message: str
    stderr_tail: tuple[str, ...] = ()


@dataclass
class RequirementResult:
    id: str
    title: str
    counts: Counter[Verdict]
    note: str | None
    cited: int = 0  # failed cases charged to another requirement that cite this one

    @property
    def verdict(self) -> Verdict:
        for verdict in _SEVERITY:
            if self.counts[verdict]:
                return verdict
        return Verdict.NOT_APPLICABLE


@dataclass
class StageSummary:
    name: str
    duration_s: float
    counts: Counter[Verdict]


@dataclass
class Report:
    iut_command: list[str]
    implementation: str = "?"
    version: str = "?"
    capabilities: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    started: str = ""
    duration_s: float = 0.0
    cases: list[Case] = field(default_factory=list)
    stages: list[StageSummary] = field(default_factory=list)
    aborted: Aborted | None = None
    replay_dir: str | None = None

    @property
    def failures(self) -> list[Case]:
        return [c for c in self.cases if c.verdict is Verdict.FAILED]

    @property
    def totals(self) -> Counter[Verdict]:
        return Counter(c.verdict for c in self.cases)

    @property
    def passed(self) -> bool:
        """CONF: everything the IUT claims passes, and the run was not cut short."""
        return self.aborted is None and not self.failures

    def requirement_results(self) -> list[RequirementResult]:
        """One row per known requirement, plus any unknown ID a vector cited."""
        counts: dict[str, Counter[Verdict]] = {}
        cited: Counter[str] = Counter()
        for case in self.cases:
            if case.primary is not None:
                counts.setdefault(case.primary, Counter())[Verdict.FAILED] += 1
                cited.update(case.also_cited)
                continue
            for req in case.requirements:
                counts.setdefault(req, Counter())[case.verdict] += 1
        rows = []
        for req_id in sorted(
            set(REQUIREMENTS) | set(counts) | set(cited), key=requirement_sort_key
        ):
            info = REQUIREMENTS.get(req_id)
            row_counts = counts.get(req_id, Counter())
            note = None
            if not row_counts and cited[req_id]:
                note = "not judged on its own: only cited by failures charged to other rules"
            elif not row_counts and info is not None:
                note = "no check ran for this IUT"
            rows.append(
                RequirementResult(
                    id=req_id,
                    title=title_of(req_id),
                    counts=row_counts,
                    note=note,
                    cited=cited[req_id],
                )
            )
        return rows
