"""``pgkms-conformance run``: judge an implementation through its adapter, per requirement.

Exit status: 0 when everything the IUT claims passes; 1 when something failed or the run was
aborted (crashed, hung or garbage-speaking IUT); 2 for a usage error or an invalid vector file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pgkms_conformance.bundled import adapter_command
from pgkms_conformance.harness import report_html, report_json, report_junit, report_text
from pgkms_conformance.harness.concurrency import DEFAULT_ROUNDS
from pgkms_conformance.harness.model import Report
from pgkms_conformance.harness.options import positive_seconds
from pgkms_conformance.harness.progress import Progress
from pgkms_conformance.harness.run import STAGES, Config, run_harness
from pgkms_conformance.harness.vector_stage import default_vector_paths
from pgkms_conformance.vectors.runner import VectorFileError


def _stages(text: str) -> tuple[str, ...]:
    chosen = tuple(s.strip() for s in text.split(",") if s.strip())
    unknown = [s for s in chosen if s not in STAGES]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"choose among {', '.join(STAGES)}")
    return chosen


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--impl",
        required=True,
        help="'reference', 'independent', or the command line that starts your adapter",
    )
    parser.add_argument(
        "--vectors",
        action="append",
        default=[],
        metavar="PATH",
        help="an extra vector file or directory (repeatable; validated against the schemas)",
    )
    parser.add_argument(
        "--no-default-vectors", action="store_true", help="skip the repository's vectors/"
    )
    parser.add_argument(
        "--examples",
        type=int,
        default=100,
        metavar="N",
        help="random requests per property (default 100; drawn ten per hypothesis example)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, metavar="S", help="seed of the generated inputs (default 0)"
    )
    parser.add_argument(
        "--timeout",
        type=positive_seconds,
        default=10.0,
        metavar="SECONDS",
        help="seconds per request (default 10)",
    )
    parser.add_argument(
        "--replay-dir",
        metavar="DIR",
        help="where to write replay files of failures (default: a new temporary directory, "
        "named in the report, created only when something failed)",
    )
    parser.add_argument("--json", metavar="FILE", help="write the JSON report here")
    parser.add_argument(
        "--json-all-cases",
        action="store_true",
        help="list every case in the JSON report, passing ones included (default: failures "
        "only, with pass counts per stage, vector file and requirement)",
    )
    parser.add_argument(
        "--html", metavar="FILE", help="write a self-contained HTML report here (no network)"
    )
    parser.add_argument(
        "--spec-url",
        metavar="URL",
        help="base URL of the built specification that the HTML report links requirements to "
        "(default: spec/_build/html/ of this source tree, relative to the report file)",
    )
    parser.add_argument("--junit", metavar="FILE", help="write a JUnit XML report here")
    parser.add_argument(
        "--junit-per",
        choices=report_junit.GRANULARITIES,
        default="requirement",
        help="one JUnit testcase per requirement (default) or per case",
    )
    parser.add_argument(
        "--stages",
        type=_stages,
        default=STAGES,
        metavar="LIST",
        help=f"comma-separated subset of {','.join(STAGES)} (default: all)",
    )
    parser.add_argument(
        "--concurrency-rounds",
        type=int,
        default=DEFAULT_ROUNDS,
        metavar="N",
        help=f"rounds of the concurrency stage (default {DEFAULT_ROUNDS})",
    )
    parser.add_argument(
        "--fault-injection",
        choices=("quick", "full", "off"),
        default="quick",
        help="safety stage: strace EIO injection into the first fsync before the point of no "
        "return, the first call at it and the first fsync after it (quick, default), into every "
        "call (full), or none (off)",
    )
    parser.add_argument(
        "--trace-syscalls",
        action="store_true",
        help="judge durability from the IUT's system calls, recorded with strace -f, instead of "
        "its self-reported fs_trace (needs strace and ptrace)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress line")
    parser.add_argument(
        "--show-failures",
        type=int,
        default=40,
        metavar="N",
        help="failures listed on the console (default 40; the reports list them all)",
    )


def run(args: argparse.Namespace) -> int:
    vector_paths = [] if args.no_default_vectors else default_vector_paths()
    vector_paths += [Path(p) for p in args.vectors]
    config = Config(
        command=adapter_command(args.impl),
        vector_paths=vector_paths,
        examples=max(args.examples, 1),
        seed=args.seed,
        timeout=args.timeout,
        replay_dir=args.replay_dir,
        stages=args.stages,
        concurrency_rounds=max(args.concurrency_rounds, 1),
        fault_injection=args.fault_injection,
        trace_syscalls=args.trace_syscalls,
    )
    if not config.command:
        sys.stderr.write("pgkms-conformance run: --impl names no command\n")
        return 2
    try:
        report = run_harness(config, Progress(enabled=not args.quiet))
    except VectorFileError as exc:
        sys.stderr.write(f"pgkms-conformance run: invalid vector file: {exc}\n")
        return 2
    sys.stdout.write(report_text.render(report, args.show_failures))
    try:
        _write_reports(args, report)
    except OSError as exc:
        name = exc.filename if exc.filename is not None else "a report file"
        sys.stderr.write(f"pgkms-conformance run: cannot write {name}: {exc.strerror}\n")
        return 2
    return 0 if report.passed else 1


def _write_reports(args: argparse.Namespace, report: Report) -> None:
    if args.json:
        Path(args.json).write_text(report_json.dumps(report, args.json_all_cases))
    if args.junit:
        Path(args.junit).write_text(report_junit.to_xml(report, args.junit_per))
    if args.html:
        html_file = Path(args.html)
        spec_url = args.spec_url or report_html.default_spec_url(html_file)
        html_file.write_text(report_html.render(report, spec_url), encoding="utf-8")
