"""The machine-readable report (``--json FILE``), described by ``report_schema.json``.

Versioned by its ``schema`` field (``pgkms-harness-report/3``). Every failing case is listed
with its source and redacted expected/found; passing cases are counted per stage, per vector
file and per requirement, and listed only on request (``--json-all-cases``: thousands on a
full run). Version 2: a failure names its ``primary`` requirement (the one it is
charged to, counted as failed) and the ones it ``also_cited``; each requirement row counts the
failures that only cite it (``cited``). A failure's ``bug_type`` lists the bug types of the
failing vector's flags, most severe first (empty for checks that are not vectors). Version 3:
``files`` counts the cases of each vector file, and ``cases`` lists every case when asked for
(``null`` otherwise), so that a CI system can track progress between runs, not only failures.
"""

from __future__ import annotations

import json
from collections import Counter
from importlib import resources
from typing import Any

from pgkms_conformance.harness.model import Case, Report, Verdict
from pgkms_conformance.harness.profiles import profile_results

SCHEMA_ID = "pgkms-harness-report/3"


def schema() -> dict[str, Any]:
    text = resources.files(__package__).joinpath("report_schema.json").read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def _counts(counter: Any) -> dict[str, int]:
    return {v.value: int(counter[v]) for v in Verdict}


def case_json(case: Case) -> dict[str, Any]:
    return {
        "stage": case.stage,
        "name": case.name,
        "verdict": case.verdict.value,
        "requirements": list(case.requirements),
        "primary": case.primary,
        "also_cited": list(case.also_cited),
        "source": case.source,
        "expected": case.expected,
        "found": case.found,
        "detail": case.detail,
        "replay": case.replay,
        "bug_type": list(case.bug_types),
    }


def file_counts(report: Report) -> list[dict[str, Any]]:
    """Each vector file's cases by verdict, in the order the run met the files."""
    per_file: dict[str, Counter[Verdict]] = {}
    for case in report.cases:
        file = case.source.get("file")
        if isinstance(file, str):
            per_file.setdefault(file, Counter())[case.verdict] += 1
    return [{"file": name, "counts": _counts(c)} for name, c in per_file.items()]


def to_json(report: Report, all_cases: bool = False) -> dict[str, Any]:
    """The report as JSON data; ``all_cases`` adds every case, passing ones included."""
    verdict = "aborted" if report.aborted else "pass" if report.passed else "fail"
    return {
        "schema": SCHEMA_ID,
        "verdict": verdict,
        "iut": {
            "command": report.iut_command,
            "implementation": report.implementation,
            "version": report.version,
            "capabilities": report.capabilities,
        },
        "config": report.config,
        "started": report.started,
        "duration_s": round(report.duration_s, 3),
        "totals": _counts(report.totals),
        "stages": [
            {"name": s.name, "duration_s": round(s.duration_s, 3), "counts": _counts(s.counts)}
            for s in report.stages
        ],
        "requirements": [
            {
                "id": r.id,
                "title": r.title,
                "verdict": r.verdict.value,
                "counts": _counts(r.counts),
                "cited": r.cited,
                "note": r.note,
            }
            for r in report.requirement_results()
        ],
        "profiles": [
            {"name": p.name, "verdict": p.verdict, "missing": list(p.missing)}
            for p in profile_results(report)
        ],
        "files": file_counts(report),
        "failures": [case_json(c) for c in report.failures],
        "cases": [case_json(c) for c in report.cases] if all_cases else None,
        "aborted": None
        if report.aborted is None
        else {
            "kind": report.aborted.kind,
            "message": report.aborted.message,
            "stderr_tail": list(report.aborted.stderr_tail),
        },
        "replay_dir": report.replay_dir,
    }


def dumps(report: Report, all_cases: bool = False) -> str:
    return json.dumps(to_json(report, all_cases), indent=1, sort_keys=True) + "\n"
