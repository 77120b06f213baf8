"""The HTML report (``--html FILE``): one self-contained page to read a run in a browser.

No network: the style is inline, there are no scripts, images or fonts to fetch. The page holds
the verdict, the stage table with times, the profiles, one row per requirement linked to its
definition in the built specification, the per-file counts of the static vectors, every failure
with expected/found, its vector or shrunk example and the replay command, what was not judged
and why, and an aborted run's reason. It renders only the report's data, which is redacted
already: values appear as lengths and hash prefixes, replay files are named, never inlined.

Links into the specification: sphinx-needs gives every requirement, finding and deviation an
HTML anchor equal to its id in its chapter's page (``chapters/wrap-format.html#WRAP_04``). The
chapter of each id is read from ``spec/`` when the toolkit runs from its source tree; an id
whose chapter is unknown links to the specification's search page.
"""

from __future__ import annotations

import os
import shlex
from collections import Counter
from collections.abc import Iterator, Mapping
from functools import cache
from html import escape
from pathlib import Path

from pgkms_conformance.harness.model import Case, Report, Verdict
from pgkms_conformance.harness.profiles import profile_results
from pgkms_conformance.harness.report_json import file_counts
from pgkms_conformance.harness.report_text import charged_text, verdict_line
from pgkms_conformance.trace import read_definitions

# Where ``nox -s docs`` builds the specification, relative to the repository root.
SPEC_BUILD = Path("spec") / "_build" / "html"
_SOURCE_ROOT = Path(__file__).resolve().parents[3]

_VERDICT_CLASS = {
    Verdict.PASSED: "pass",
    Verdict.FAILED: "fail",
    Verdict.UNSUPPORTED: "unsup",
    Verdict.NOT_APPLICABLE: "na",
}
_VERDICT_TEXT = {
    Verdict.PASSED: "passed",
    Verdict.FAILED: "FAILED",
    Verdict.UNSUPPORTED: "unsupported",
    Verdict.NOT_APPLICABLE: "n/a",
}

_STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; color: #1d232a; margin: 0 auto; max-width: 72rem;
  padding: 1rem 1.5rem 3rem; }
h1 { font-size: 1.5rem; margin-bottom: .2rem; }
h2 { font-size: 1.15rem; margin-top: 2rem; border-bottom: 1px solid #d0d7de; }
table { border-collapse: collapse; margin: .5rem 0; }
th, td { border: 1px solid #d0d7de; padding: .2rem .5rem; text-align: left;
  vertical-align: top; }
th { background: #f3f5f7; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
code, pre { font: 13px/1.4 ui-monospace, monospace; }
pre { background: #f6f8fa; padding: .4rem .6rem; overflow-x: auto; white-space: pre-wrap;
  margin: .2rem 0; }
.verdict { font-size: 1.1rem; font-weight: 600; padding: .5rem .8rem; border-radius: 4px; }
.verdict.pass { background: #dafbe1; } .verdict.fail, .verdict.aborted { background: #ffebe9; }
td.pass { color: #116329; } td.fail { color: #a40e26; font-weight: 600; }
td.unsup, td.na { color: #57606a; }
.failure { border-left: 4px solid #cf222e; padding: .1rem .8rem; margin: 1rem 0; }
.failure h3 { font-size: 1rem; margin: .4rem 0; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .15rem .8rem; margin: .3rem 0; }
dt { color: #57606a; } dd { margin: 0; overflow-wrap: anywhere; }
.bug-type { background: #fff8c5; border: 1px solid #d4a72c; border-radius: 3px;
  padding: 0 .3rem; font-size: .85rem; }
.meta { color: #57606a; }
"""


@cache
def spec_chapters(root: Path = _SOURCE_ROOT) -> dict[str, str]:
    """Each requirement, finding and deviation id -> its chapter page (``chapters/x.html``);
    empty without the source tree (an installed wheel has no ``spec/``)."""
    if not (root / "spec" / "chapters").is_dir():
        return {}
    pages: dict[str, str] = {}
    for definition in read_definitions(root, []):
        relative = Path(definition.path).relative_to("spec").with_suffix(".html")
        pages[definition.id] = relative.as_posix()
    return pages


def default_spec_url(html_file: Path) -> str:
    """The built specification, relative to where the report is written."""
    target = _SOURCE_ROOT / SPEC_BUILD
    if not (_SOURCE_ROOT / "spec").is_dir():
        return SPEC_BUILD.as_posix() + "/"
    start = html_file.resolve().parent
    return Path(os.path.relpath(target, start)).as_posix() + "/"


def requirement_url(spec_url: str, req_id: str) -> str:
    base = spec_url if spec_url.endswith("/") else spec_url + "/"
    page = spec_chapters().get(req_id)
    if page is None:
        return f"{base}search.html?q={req_id}"
    return f"{base}{page}#{req_id}"


def render(report: Report, spec_url: str) -> str:
    """The whole page: ``spec_url`` is the base of the built specification (ends in ``/``)."""
    body = "\n".join(_body(report, spec_url))
    title = f"pgkms conformance: {report.implementation} {report.version}"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )


def _verdict_class(report: Report) -> str:
    if report.aborted is not None:
        return "aborted"
    return "pass" if report.passed else "fail"


def _body(report: Report, spec_url: str) -> Iterator[str]:
    yield f"<h1>pgkms conformance report: {escape(report.implementation)} "
    yield f"{escape(report.version)}</h1>"
    yield f'<p class="meta">started {escape(report.started)}, {report.duration_s:.1f} s</p>'
    yield f'<p id="verdict" class="verdict {_verdict_class(report)}">'
    yield f"{escape(verdict_line(report))}</p>"
    yield from _iut(report)
    yield from _stages(report)
    yield from _profiles(report)
    yield from _requirements(report, spec_url)
    yield from _files(report)
    yield from _failures(report, spec_url)
    yield from _not_judged(report)
    yield from _aborted(report)


def _iut(report: Report) -> Iterator[str]:
    cfg = report.config
    rows = [
        ("command", shlex.join(report.iut_command)),
        ("capabilities", ", ".join(report.capabilities) or "(none: hello did not complete)"),
        ("seed", str(cfg.get("seed"))),
        ("examples per property", str(cfg.get("examples"))),
        ("timeout per request", f"{cfg.get('timeout')} s"),
        ("stages", ", ".join(map(str, cfg.get("stages", [])))),
    ]
    yield '<h2 id="iut">Implementation under test</h2>'
    yield "<dl>"
    for key, value in rows:
        yield f"<dt>{escape(key)}</dt><dd><code>{escape(value)}</code></dd>"
    yield "</dl>"


def _count_cells(counts: Mapping[Verdict, int]) -> str:
    return "".join(f'<td class="n">{int(counts.get(v, 0))}</td>' for v in Verdict)


def _stages(report: Report) -> Iterator[str]:
    yield '<h2 id="stages">Stages</h2>'
    yield '<table class="stages"><thead><tr><th>stage</th><th>passed</th><th>failed</th>'
    yield "<th>unsupported</th><th>n/a</th><th>time</th></tr></thead><tbody>"
    for stage in report.stages:
        yield (
            f"<tr><td>{escape(stage.name)}</td>{_count_cells(dict(stage.counts))}"
            f'<td class="n">{stage.duration_s:.1f} s</td></tr>'
        )
    yield "</tbody></table>"


def _profiles(report: Report) -> Iterator[str]:
    yield '<h2 id="profiles">Profiles</h2>'
    yield '<table class="profiles"><thead><tr><th>profile</th><th>verdict</th>'
    yield "<th>capabilities not claimed</th></tr></thead><tbody>"
    for p in profile_results(report):
        css = {"passed": "pass", "failed": "fail"}.get(p.verdict, "na")
        yield (
            f'<tr><td>{escape(p.name)}</td><td class="{css}">{escape(p.verdict)}</td>'
            f"<td>{escape(', '.join(p.missing))}</td></tr>"
        )
    yield "</tbody></table>"


def _requirements(report: Report, spec_url: str) -> Iterator[str]:
    yield '<h2 id="requirements">Requirements</h2>'
    yield '<table class="requirements"><thead><tr><th>requirement</th><th>verdict</th>'
    yield "<th>passed</th><th>failed</th><th>unsupported</th><th>n/a</th><th>cited</th>"
    yield "<th>title</th></tr></thead><tbody>"
    for row in report.requirement_results():
        note = f' <span class="meta">[{escape(row.note)}]</span>' if row.note else ""
        css = _VERDICT_CLASS[row.verdict]
        href = escape(requirement_url(spec_url, row.id))
        yield (
            f'<tr id="req-{escape(row.id)}"><td><a href="{href}">{escape(row.id)}</a></td>'
            f'<td class="{css}">{_VERDICT_TEXT[row.verdict]}</td>'
            f"{_count_cells(dict(row.counts))}"
            f'<td class="n">{row.cited or ""}</td><td>{escape(row.title)}{note}</td></tr>'
        )
    yield "</tbody></table>"


def _files(report: Report) -> Iterator[str]:
    rows = file_counts(report)
    if not rows:
        return
    yield '<h2 id="files">Vector files</h2>'
    yield '<table class="files"><thead><tr><th>file</th><th>passed</th><th>failed</th>'
    yield "<th>unsupported</th><th>n/a</th></tr></thead><tbody>"
    for row in rows:
        counts = {Verdict(k): v for k, v in row["counts"].items()}
        yield f"<tr><td><code>{escape(row['file'])}</code></td>{_count_cells(counts)}</tr>"
    yield "</tbody></table>"


def replay_command(report: Report, case: Case) -> str | None:
    """How to feed a failure's replay file to the IUT (request files only; a scenario's file
    holds a directory listing to materialise first, as its ``about`` field says)."""
    if case.replay is None:
        return None
    if case.replay.endswith(".jsonl"):
        return f"{shlex.join(report.iut_command)} < {shlex.quote(case.replay)}"
    return (
        f"materialise datadir_before of {shlex.quote(case.replay)} in an empty directory, "
        "then send its hello and request lines to the IUT (the file's about field)"
    )


def _bug_type(case: Case) -> str | None:
    """The triage label of a failing vector, when its vector carries one."""
    value = getattr(case, "bug_type", None) or case.source.get("bug_type")
    return value if isinstance(value, str) and value else None


# A page stays readable (and small) even when an IUT fails thousands of vectors.
_FAILURES_SHOWN = 1000


def _failures(report: Report, spec_url: str) -> Iterator[str]:
    failures = report.failures
    yield f'<h2 id="failures">Failures ({len(failures)})</h2>'
    if not failures:
        yield "<p>None.</p>"
        return
    yield from _failure_index(failures[:_FAILURES_SHOWN])
    for number, case in enumerate(failures[:_FAILURES_SHOWN], start=1):
        yield from _failure(report, case, number, spec_url)
    if len(failures) > _FAILURES_SHOWN:
        yield f"<p>... {len(failures) - _FAILURES_SHOWN} more (see the JSON report)</p>"
    if report.replay_dir:
        yield (
            "<p>Replay files (they contain the failing inputs, secrets in hex): "
            f"<code>{escape(report.replay_dir)}</code></p>"
        )


def _failure_index(failures: list[Case]) -> Iterator[str]:
    """One link per requirement charged, with its count, to its first failure below."""
    first: dict[str, int] = {}
    count: Counter[str] = Counter()
    for number, case in enumerate(failures, start=1):
        key = case.primary or ", ".join(case.requirements)
        first.setdefault(key, number)
        count[key] += 1
    links = ", ".join(
        f'<a href="#failure-{n}">{escape(key)}</a> ({count[key]})' for key, n in first.items()
    )
    yield f'<p class="failure-index">By requirement: {links}</p>'


def _failure(report: Report, case: Case, number: int, spec_url: str) -> Iterator[str]:
    primary = case.primary or ""
    link = f'<a href="{escape(requirement_url(spec_url, primary))}">{escape(primary)}</a>'
    bug = _bug_type(case)
    badge = f' <span class="bug-type">{escape(bug)}</span>' if bug else ""
    yield f'<section class="failure" id="failure-{number}">'
    yield f"<h3>{link} {escape(case.stage)}: {escape(case.name)}{badge}</h3>"
    yield "<dl>"
    rows: list[tuple[str, str]] = [("charged to", charged_text(case))]
    src = case.source
    if "tcId" in src:
        rows.append(("vector", f"{src.get('file')} tcId {src.get('tcId')} id {src.get('id')}"))
        rows.append(("comment", str(src.get("comment", ""))))
        if src.get("flags"):
            rows.append(("flags", ", ".join(map(str, src["flags"]))))
    elif "property" in src:
        rows.append(
            (
                "shrunk example",
                f"property {src.get('property')} ({src.get('description', '')}), "
                f"seed {src.get('seed')}, {src.get('examples')} examples",
            )
        )
    elif "scenario" in src:
        rows.append(("scenario", f"{src.get('scenario')} step {src.get('step')}"))
    if bug:
        rows.append(("bug type", bug))
    for key, value in rows:
        yield f"<dt>{escape(key)}</dt><dd>{escape(value)}</dd>"
    for key, value in (("expected", case.expected), ("found", case.found)):
        if value:
            yield f'<dt>{key}</dt><dd><pre class="{key}">{escape(value)}</pre></dd>'
    if case.detail:
        yield f'<dt>detail</dt><dd><pre class="detail">{escape(case.detail)}</pre></dd>'
    command = replay_command(report, case)
    if command is not None:
        yield f'<dt>replay</dt><dd><pre class="replay">{escape(command)}</pre></dd>'
    yield "</dl>"
    yield "</section>"


_NOT_JUDGED_SHOWN = 200


def _not_judged(report: Report) -> Iterator[str]:
    reasons = dict.fromkeys(
        (", ".join(c.requirements), c.stage, c.name, c.detail)
        for c in report.cases
        if c.verdict in (Verdict.UNSUPPORTED, Verdict.NOT_APPLICABLE) and c.detail
    )
    if not reasons:
        return
    yield f'<h2 id="not-judged">Not judged ({len(reasons)})</h2>'
    yield '<table class="not-judged"><thead><tr><th>requirements</th><th>stage</th>'
    yield "<th>check</th><th>why</th></tr></thead><tbody>"
    for reqs, stage, name, detail in list(reasons)[:_NOT_JUDGED_SHOWN]:
        yield (
            f"<tr><td>{escape(reqs)}</td><td>{escape(stage)}</td><td>{escape(name)}</td>"
            f"<td>{escape(detail)}</td></tr>"
        )
    yield "</tbody></table>"
    if len(reasons) > _NOT_JUDGED_SHOWN:
        yield f"<p>... {len(reasons) - _NOT_JUDGED_SHOWN} more (see --json-all-cases)</p>"


def _aborted(report: Report) -> Iterator[str]:
    a = report.aborted
    if a is None:
        return
    yield '<h2 id="aborted">Run aborted</h2>'
    yield f"<p>{escape(a.kind)}: {escape(a.message)}</p>"
    if a.stderr_tail:
        yield f'<pre class="stderr">{escape(chr(10).join(a.stderr_tail))}</pre>'
    else:
        yield "<p>(the IUT wrote nothing on standard error)</p>"
