"""JUnit XML (``--junit FILE``), the format CI systems read; validated against ``junit.xsd``.

Two granularities: ``requirement`` (default; one testcase per requirement, failing with the list
of its failed cases, skipped when unsupported or not applicable) and ``case`` (one testsuite per
stage, one testcase per check). An aborted run adds a testcase with an ``error`` element that
carries the IUT's stderr tail (already redacted).
"""

from __future__ import annotations

import socket
import xml.etree.ElementTree as ET
from collections import Counter

from pgkms_conformance.harness.model import Case, Report, Verdict
from pgkms_conformance.harness.report_text import charged_text, describe_failure

GRANULARITIES = ("requirement", "case")


def _case_text(case: Case) -> str:
    return "\n".join(describe_failure(case))


def _suite(parent: ET.Element, name: str, report: Report, time_s: float) -> ET.Element:
    suite = ET.SubElement(parent, "testsuite", name=name, timestamp=report.started[:19])
    suite.set("hostname", socket.gethostname() or "localhost")
    suite.set("time", f"{time_s:.3f}")
    props = ET.SubElement(suite, "properties")
    for key, value in (
        ("iut.implementation", report.implementation),
        ("iut.version", report.version),
        ("iut.command", " ".join(report.iut_command)),
        ("seed", str(report.config.get("seed"))),
        ("examples", str(report.config.get("examples"))),
    ):
        ET.SubElement(props, "property", name=key, value=value)
    return suite


def _testcase(suite: ET.Element, classname: str, name: str) -> ET.Element:
    return ET.SubElement(suite, "testcase", classname=classname, name=name, time="0")


def _close(suite: ET.Element, counts: Counter[str]) -> None:
    for key in ("tests", "failures", "errors", "skipped"):
        suite.set(key, str(counts[key]))


def to_xml(report: Report, granularity: str = "requirement") -> str:
    root = ET.Element("testsuites", name="pgkms-conformance")
    totals: Counter[str] = Counter()
    if granularity == "requirement":
        suites = [_by_requirement(root, report)]
    else:
        suites = _by_case(root, report)
    if report.aborted is not None:
        suite = _suite(root, "harness", report, 0.0)
        tc = _testcase(suite, "pgkms.conformance.harness", "IUT kept answering")
        err = ET.SubElement(tc, "error", message=f"the IUT {report.aborted.kind}", type="aborted")
        err.text = "\n".join([report.aborted.message, *report.aborted.stderr_tail])
        _close(suite, Counter(tests=1, errors=1))
        suites.append(suite)
    for suite in suites:
        for key in ("tests", "failures", "errors", "skipped"):
            totals[key] += int(suite.get(key, "0"))
    for key in ("tests", "failures", "errors", "skipped"):
        root.set(key, str(totals[key]))
    root.set("time", f"{report.duration_s:.3f}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _by_requirement(root: ET.Element, report: Report) -> ET.Element:
    suite = _suite(root, "requirements", report, report.duration_s)
    counts: Counter[str] = Counter()
    failures_of: dict[str, list[Case]] = {}
    cited_by: dict[str, list[Case]] = {}
    for case in report.failures:
        failures_of.setdefault(case.primary or "", []).append(case)
        for req in case.also_cited:
            cited_by.setdefault(req, []).append(case)
    for row in report.requirement_results():
        area = row.id.split("_")[0]
        tc = _testcase(suite, f"pgkms.conformance.{area}", f"{row.id} {row.title}")
        counts["tests"] += 1
        if row.verdict is Verdict.FAILED:
            cases = failures_of.get(row.id, [])
            failure = ET.SubElement(
                tc, "failure", message=f"{len(cases)} failing case(s)", type=row.id
            )
            failure.text = "\n".join(_case_text(c) for c in cases)
            counts["failures"] += 1
        elif row.verdict in (Verdict.UNSUPPORTED, Verdict.NOT_APPLICABLE):
            reason = row.note or "not supported by the IUT"
            if row.verdict is Verdict.UNSUPPORTED:
                reason = "every check needs an operation the IUT does not claim"
            ET.SubElement(tc, "skipped", message=reason)
            counts["skipped"] += 1
        else:
            out = ET.SubElement(tc, "system-out")
            out.text = f"{row.counts[Verdict.PASSED]} passing case(s)"
        if row.id in cited_by:
            cited = ET.SubElement(tc, "system-out")
            cited.text = "also cited by failures charged to other requirements:\n" + "\n".join(
                f"{charged_text(c)}: {c.stage}: {c.name}" for c in cited_by[row.id]
            )
    _close(suite, counts)
    return suite


def _by_case(root: ET.Element, report: Report) -> list[ET.Element]:
    suites = []
    for stage in report.stages:
        suite = _suite(root, stage.name, report, stage.duration_s)
        counts: Counter[str] = Counter()
        for case in (c for c in report.cases if c.stage == stage.name):
            tc = _testcase(suite, f"pgkms.conformance.{stage.name}", case.name)
            counts["tests"] += 1
            if case.verdict is Verdict.FAILED:
                failure = ET.SubElement(
                    tc,
                    "failure",
                    message=f"{charged_text(case)}: {case.found or 'failed'}"[:300],
                    type=case.primary or "",
                )
                failure.text = _case_text(case)
                counts["failures"] += 1
            elif case.verdict is not Verdict.PASSED:
                ET.SubElement(tc, "skipped", message=case.verdict.value)
                counts["skipped"] += 1
        _close(suite, counts)
        suites.append(suite)
    return suites
