"""The console report: stage table, one row per requirement, then every failure, verdict last.

Failures are grouped by bug type (a vector's triage, ``vectors.triage``), the most severe type
first, so the failures that matter most are read first; failures of checks that are not vectors
carry no bug type and come last, under their own heading.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from pgkms_conformance.harness.model import Case, Report, Verdict
from pgkms_conformance.harness.profiles import profile_results
from pgkms_conformance.vectors.triage import BUG_TYPES, UNTRIAGED, severity

_SHORT = {
    Verdict.PASSED: "passed",
    Verdict.FAILED: "FAILED",
    Verdict.UNSUPPORTED: "unsupported",
    Verdict.NOT_APPLICABLE: "n/a",
}


def render(report: Report, max_failures: int = 40) -> str:
    return "\n".join(_lines(report, max_failures)) + "\n"


def _lines(report: Report, max_failures: int) -> Iterator[str]:
    yield f"IUT: {report.implementation} {report.version}  ({' '.join(report.iut_command)})"
    if report.capabilities:
        yield f"capabilities: {', '.join(report.capabilities)}"
    cfg = report.config
    yield (
        f"seed {cfg.get('seed')}, {cfg.get('examples')} examples per property, "
        f"timeout {cfg.get('timeout')} s"
    )
    if report.aborted is not None and not report.capabilities:
        # The IUT never completed hello: there is no table worth printing, only why.
        yield from _aborted(report)
        yield ""
        yield verdict_line(report)
        return
    yield ""
    yield f"{'stage':<12}{'passed':>8}{'failed':>8}{'unsupp.':>9}{'n/a':>6}{'time':>9}"
    for st in report.stages:
        c = st.counts
        yield (
            f"{st.name:<12}{c[Verdict.PASSED]:>8}{c[Verdict.FAILED]:>8}"
            f"{c[Verdict.UNSUPPORTED]:>9}{c[Verdict.NOT_APPLICABLE]:>6}{st.duration_s:>8.1f}s"
        )
    yield ""
    yield (
        f"{'requirement':<12}{'verdict':<13}{'pass':>6}{'fail':>6}{'unsup.':>7}{'cited':>6}  title"
    )
    for row in report.requirement_results():
        c = row.counts
        text = row.title if row.note is None else f"{row.title} [{row.note}]"
        yield (
            f"{row.id:<12}{_SHORT[row.verdict]:<13}{c[Verdict.PASSED]:>6}"
            f"{c[Verdict.FAILED]:>6}{c[Verdict.UNSUPPORTED]:>7}{row.cited or '':>6}  {text}"
        )
    yield ""
    for p in profile_results(report):
        missing = f" (lacks {', '.join(p.missing)})" if p.missing else ""
        yield f"profile {p.name:<11} {p.verdict}{missing}"
    failures = report.failures
    if failures:
        yield ""
        yield f"Failures ({len(failures)}), by bug type, most severe first:"
        yield from _grouped_failures(failures, max_failures)
    yield from _not_judged(report)
    if report.aborted is not None:
        yield from _aborted(report)
    if report.replay_dir:
        yield ""
        yield f"Replay files (contain the failing inputs, secrets in hex): {report.replay_dir}"
    yield ""
    yield verdict_line(report)


_NOT_JUDGED_SHOWN = 20


def _not_judged(report: Report) -> Iterator[str]:
    """Unsupported or n/a cases that say why (a missing capability or tool), deduplicated."""
    reasons = dict.fromkeys(
        f"[{','.join(c.requirements)}] {c.stage}: {c.name}: {c.detail}"
        for c in report.cases
        if c.verdict in (Verdict.UNSUPPORTED, Verdict.NOT_APPLICABLE) and c.detail
    )
    if not reasons:
        return
    yield ""
    yield f"Not judged ({len(reasons)}):"
    for line in list(reasons)[:_NOT_JUDGED_SHOWN]:
        yield f"- {line}"
    if len(reasons) > _NOT_JUDGED_SHOWN:
        yield f"  ... {len(reasons) - _NOT_JUDGED_SHOWN} more"


_ABORT_REASONS = {
    "crashed": "the IUT crashed",
    "timeout": "the IUT did not answer in time",
    "garbage": "the IUT answered with something that is not the protocol",
    "start_failed": "the IUT could not be started",
}


def _aborted(report: Report) -> Iterator[str]:
    a = report.aborted
    assert a is not None
    yield ""
    yield f"RUN ABORTED: {_ABORT_REASONS.get(a.kind, a.kind)}: {a.message}"
    if a.stderr_tail:
        yield "  IUT stderr (tail):"
        yield from (f"    {line}" for line in a.stderr_tail)
    else:
        yield "  (the IUT wrote nothing on stderr)"


NO_BUG_TYPE = "(no bug type)"
_NO_BUG_TYPE_MEANING = "checks that are not vectors (properties, scenarios, stages)"
_UNTRIAGED_MEANING = "vectors from elsewhere whose flags name no bug type"


def group_by_bug_type(failures: Sequence[Case]) -> list[tuple[str, list[Case]]]:
    """Failures grouped by their most severe bug type: known types by severity, then types
    a file from elsewhere introduced (by name), then untriaged vectors, then non-vectors."""
    groups: dict[str, list[Case]] = {}
    for case in failures:
        key = case.bug_types[0] if case.bug_types else NO_BUG_TYPE
        groups.setdefault(key, []).append(case)

    def rank(key: str) -> tuple[int, str]:
        if key == NO_BUG_TYPE:
            return (len(BUG_TYPES) + 2, key)
        if key == UNTRIAGED:
            return (len(BUG_TYPES) + 1, key)
        return (severity(key), key)

    return [(key, groups[key]) for key in sorted(groups, key=rank)]


def _meaning(bug_type: str) -> str:
    if bug_type == NO_BUG_TYPE:
        return _NO_BUG_TYPE_MEANING
    if bug_type == UNTRIAGED:
        return _UNTRIAGED_MEANING
    return BUG_TYPES.get(bug_type, "a bug type of the vector file's own")


def _grouped_failures(failures: Sequence[Case], max_failures: int) -> Iterator[str]:
    """Every group's heading and count; failures described until ``max_failures`` are shown,
    each group saying how many of its own were left out."""
    budget = max_failures
    for bug_type, cases in group_by_bug_type(failures):
        yield f"{bug_type} ({len(cases)}): {_meaning(bug_type)}"
        for case in cases[:budget]:
            yield from describe_failure(case)
        if len(cases) > budget:
            yield f"  ... {len(cases) - budget} more {bug_type} (see --json / --junit)"
        budget = max(0, budget - len(cases))


def charged_text(case: Case) -> str:
    """``WRAP_02`` or ``WRAP_02; also cited: WRAP_01, WRAP_04``."""
    also = f"; also cited: {', '.join(case.also_cited)}" if case.also_cited else ""
    return f"{case.primary or ','.join(case.requirements)}{also}"


def describe_failure(case: Case) -> Iterator[str]:
    yield f"- [{charged_text(case)}] {case.stage}: {case.name}"
    src = case.source
    if "tcId" in src:
        yield f"    vector: {src.get('file')} tcId {src.get('tcId')} id {src.get('id')}"
        yield f"    comment: {src.get('comment')}"
        if src.get("flags"):
            yield f"    flags: {', '.join(map(str, src['flags']))}"
        if src.get("provenance"):
            yield f"    from: {src['provenance']}"
        if src.get("observed"):
            yield f"    observed at the source: {src['observed']}"
        if src.get("effect"):
            yield f"    effect: {src['effect']}"
    if case.bug_types:
        yield f"    bug type: {', '.join(case.bug_types)}"
    if case.expected:
        yield f"    expected: {case.expected}"
    if case.found:
        yield f"    found:    {case.found}"
    if case.detail:
        for i, line in enumerate(case.detail.splitlines()):
            yield f"    {'detail:   ' if i == 0 else '          '}{line}"
    if case.replay:
        yield f"    replay:   {case.replay}"


def verdict_line(report: Report) -> str:
    totals = report.totals
    counts = (
        f"{totals[Verdict.PASSED]} passed, {totals[Verdict.FAILED]} failed, "
        f"{totals[Verdict.UNSUPPORTED]} unsupported, {totals[Verdict.NOT_APPLICABLE]} n/a; "
        f"{report.duration_s:.1f} s"
    )
    if report.aborted is not None:
        return f"VERDICT: ABORTED ({counts})"
    if report.passed:
        return f"VERDICT: PASS: everything {report.implementation} claims conforms ({counts})"
    failed = [r.id for r in report.requirement_results() if r.verdict is Verdict.FAILED]
    return f"VERDICT: FAIL: {', '.join(failed)} ({counts})"
