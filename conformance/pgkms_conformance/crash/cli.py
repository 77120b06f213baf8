"""``pgkms-conformance crash``: explore both rotation protocols and print the figures.

Exit status 0 when the spec protocol keeps every invariant, 1 when it does not (the 2020
protocol's violations are expected and only reported), 2 on a usage error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from pgkms_conformance.crash.explorer import (
    INVARIANTS,
    PROTOCOLS,
    Explorer,
    Report,
    Violation,
)
from pgkms_conformance.crash.simfs import Image
from pgkms_conformance.crash.vectors import crash_vectors, dump


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``crash`` subcommand's options (``pgkms-conformance crash``)."""
    parser.add_argument("--protocol", choices=[*PROTOCOLS, "all"], default="all")
    parser.add_argument(
        "--ordering",
        choices=["subset", "prefix"],
        default="subset",
        help="which pending directory changes a crash may keep (CRASH_03; default: subset)",
    )
    parser.add_argument(
        "--no-torn",
        action="store_true",
        help="unsynced file data is only ever empty or complete (no partial or zero-filled)",
    )
    parser.add_argument(
        "--traces", action="store_true", help="print a minimal crash trace per violation class"
    )
    parser.add_argument(
        "--write-vectors", metavar="PATH", help="also write the crash-recovery vectors to PATH"
    )


def describe_image(image: Image, labels: dict[bytes, str]) -> list[str]:
    lines = []
    for path, _, content in image:
        if content is None:
            lines.append(path)
        else:
            lines.append(f"{path}  [{labels.get(content, f'{len(content)} bytes, damaged')}]")
    return lines or ["(no key directory)"]


def render_violation(explorer: Explorer, report: Report, v: Violation) -> list[str]:
    labels = explorer.content_labels()
    lines = [f"  {v.invariant}: {v.reason}", "    rotation, until the power fails:"]
    lines += [f"      {i}. {op}" for i, op in enumerate(report.trace[: v.crash_point], 1)]
    lines.append("      -- crash --")
    lines.append("    lost: " + ("; ".join(v.state.lost) or "nothing"))
    if v.state.torn:
        lines.append("    torn: " + "; ".join(v.state.torn))
    lines.append("    disk after the crash:")
    lines += [f"      {entry}" for entry in describe_image(v.state.image, labels)]
    for name, passphrase in explorer.passphrases.items():
        outcome, _ = explorer.startup_outcome(v.state.image, passphrase)
        lines.append(
            f"    startup with the {name} passphrase: recovery {outcome.decision}, "
            f"{outcome.describe()}; disk after: " + ", ".join(describe_image(outcome.image, labels))
        )
    if v.detail:
        lines.append(f"    then ({v.passphrase} passphrase): {v.detail}")
    return lines


def render(explorer: Explorer, report: Report, traces: bool) -> list[str]:
    counts = report.counts()
    lines = [
        f"protocol {report.protocol}: {explorer.protocol.procedure.name} "
        f"(crash model: ordering={report.ordering}, torn writes={'yes' if report.torn else 'no'})",
        f"  operations in the rotation trace: {len(report.trace)} mutating "
        f"({len(explorer.protocol.procedure.phases)} phases of the transition table)",
        f"  crash states explored: {len(report.states)} distinct after a crash in rotation; "
        f"{report.recovery_states} after a crash in recovery, {report.recovery_states_new} "
        "of them new",
        "  violations (crash states breaking each invariant): "
        + ", ".join(f"{inv} {counts[inv]}" for inv in INVARIANTS),
    ]
    classes = report.classes()
    if classes:
        lines.append(f"  violation classes: {len(classes)}")
        for v in classes.values():
            if traces:
                lines += render_violation(explorer, report, v)
            else:
                lines.append(f"    {v.invariant}: {v.reason}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="pgkms-conformance crash",
        description="Crash-state exploration of passphrase rotation (spec: Crash model).",
    )
    configure(parser)
    return run(parser.parse_args(argv))


def run(args: argparse.Namespace) -> int:
    names = list(PROTOCOLS) if args.protocol == "all" else [args.protocol]
    status = 0
    for name in names:
        explorer = Explorer(PROTOCOLS[name], ordering=args.ordering, torn=not args.no_torn)
        report = explorer.run()
        print("\n".join(render(explorer, report, args.traces)))
        if name == "spec" and report.violations:
            status = 1
    if args.write_vectors:
        document = crash_vectors()
        Path(args.write_vectors).write_text(dump(document), encoding="utf-8")
        print(f"wrote {document['numberOfTests']} vectors to {args.write_vectors}")
    sys.stdout.flush()
    return status
