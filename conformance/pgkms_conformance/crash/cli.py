"""``pgkms-conformance crash``: explore both rotation protocols and pg_upgrade's copy, and
print the figures.

Exit status 0 when the spec protocol and the upgrade keep every invariant, 1 when one does not
(the 2020 protocol's violations are expected and only reported), 2 on a usage error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pgkms_conformance.crash.explorer import (
    DEFAULT_DEPTH,
    INVARIANTS,
    NAMES,
    Explorer,
    Report,
    UpgradeExplorer,
    Violation,
    explorer_for,
)
from pgkms_conformance.image import Image


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``crash`` subcommand's options (``pgkms-conformance crash``)."""
    parser.add_argument(
        "--protocol",
        choices=[*NAMES, "all"],
        default="all",
        help="spec or 2020 rotation, or pg_upgrade's copy (upgrade); default: all three",
    )
    parser.add_argument(
        "--depth",
        type=_depth,
        default=DEFAULT_DEPTH,
        help="crashes in successive recoveries explored for I3 (REC_06; default: %(default)s)",
    )
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


def _depth(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, found {text!r}")
    return value


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
    what = "upgrade" if report.protocol == "upgrade" else "rotation"
    lines = [f"  {v.invariant}: {v.reason}", f"    {what}, until the power fails:"]
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


def upgrade_outcomes(explorer: UpgradeExplorer, report: Report) -> str:
    """How many crash states of the upgrade start with which keys (I1 for pg_upgrade)."""
    tally = {"own": 0, "old": 0, "failed": 0}
    for image in report.states:
        for passphrase in explorer.passphrases.values():
            keys = explorer.startup_outcome(image, passphrase)[0].keys
            if keys is None:
                tally["failed"] += 1
            else:
                tally["own" if keys == explorer.upgrade.keys else "old"] += 1
    return (
        f"  startup after a crash in the upgrade: {tally['own']} states open the new cluster's "
        f"own keys, {tally['old']} the old cluster's, {tally['failed']} neither"
    )


def render(explorer: Explorer, report: Report, traces: bool) -> list[str]:
    counts = report.counts()
    what = "upgrade" if report.protocol == "upgrade" else "rotation"
    lines = [
        f"protocol {report.protocol}: {explorer.protocol.procedure.name} "
        f"(crash model: ordering={report.ordering}, torn writes={'yes' if report.torn else 'no'})",
        f"  operations in the {what} trace: {len(report.trace)} mutating "
        f"({len(explorer.protocol.procedure.phases)} phases of the transition table)",
        f"  crash states explored: {len(report.states)} distinct after a crash in "
        f"{'the upgrade' if what == 'upgrade' else 'rotation'}; "
        f"{report.recovery_states} after a crash in recovery, {report.recovery_states_new} "
        "of them new",
        "  crash states per recovery depth (I3): "
        + "; ".join(
            f"depth {d}: {reached} ({new} new)" for d, (reached, new) in enumerate(report.depths, 1)
        ),
        "  violations (crash states breaking each invariant): "
        + ", ".join(f"{inv} {counts[inv]}" for inv in INVARIANTS),
    ]
    if isinstance(explorer, UpgradeExplorer):
        lines.append(upgrade_outcomes(explorer, report))
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
    names = list(NAMES) if args.protocol == "all" else [args.protocol]
    status = 0
    for name in names:
        explorer = explorer_for(name, args.ordering, not args.no_torn, args.depth)
        report = explorer.run()
        print("\n".join(render(explorer, report, args.traces)))
        if name != "2020" and report.violations:
            status = 1
    sys.stdout.flush()
    return status
