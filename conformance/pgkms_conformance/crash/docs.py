"""The spec's rotation diagram and tables, drawn from the transition data in ``machine.py``.

Pure Python, no Graphviz and no network: the SVG is laid out here (a vertical chain of phases,
one arrow per change of phase, repeated steps as loops) and the tables are reStructuredText
``list-table`` blocks. ``spec/_ext/pgkms_crash.py`` calls these from its directives, so the
document cannot drift from the tables the explorer checks the code against.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

from pgkms.recovery import RECOVERY_TABLE

from pgkms_conformance.crash import points
from pgkms_conformance.crash.machine import (
    LEGACY_CRASH_DECISIONS,
    LEGACY_RECOVERY,
    LEGACY_RECOVERY_TABLE,
    LEGACY_ROTATION,
    SPEC_CRASH_DECISIONS,
    SPEC_RECOVERY,
    SPEC_ROTATION,
    Procedure,
    Step,
)

PROCEDURES = {"spec": SPEC_ROTATION, "2020": LEGACY_ROTATION}
CRASH_DECISIONS = {"spec": SPEC_CRASH_DECISIONS, "2020": LEGACY_CRASH_DECISIONS}
RECOVERIES = {"spec": SPEC_RECOVERY, "2020": LEGACY_RECOVERY}

_BOX_W, _BOX_H, _GAP, _X, _TOP = 190, 34, 76, 30, 20
_REPEAT = {"once": "", "per_key_file": " (each key file)", "per_entry": " (each entry)"}


def step_label(step: Step) -> str:
    return f"{step.kind} {step.role}{_REPEAT[step.repeat]}"


def edges(procedure: Procedure) -> list[tuple[str, str, list[str]]]:
    """(from phase, to phase, step labels), in order; a step that keeps the phase is a loop."""
    out: list[tuple[str, str, list[str]]] = []
    phase = procedure.start
    for step in procedure.steps:
        if out and out[-1][0] == phase and out[-1][1] == step.phase:
            out[-1][2].append(step_label(step))
        else:
            out.append((phase, step.phase, [step_label(step)]))
        phase = step.phase
    return out


def render_svg(procedure: Procedure, decisions: dict[str, frozenset[str]] | None = None) -> str:
    """The procedure as an SVG state diagram; ``decisions`` annotate each phase's crash."""
    phases = procedure.phases
    row = {p: i for i, p in enumerate(phases)}
    height = _TOP * 2 + len(phases) * _BOX_H + (len(phases) - 1) * _GAP
    width = 980
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
        f"<title>{escape(procedure.name)}</title>",
        '<defs><marker id="arrow" markerWidth="8" markerHeight="8" refX="7" refY="4" '
        'orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#333"/></marker></defs>',
    ]

    def top(phase: str) -> int:
        return _TOP + row[phase] * (_BOX_H + _GAP)

    for phase in phases:
        y = top(phase)
        parts.append(
            f'<rect x="{_X}" y="{y}" width="{_BOX_W}" height="{_BOX_H}" rx="8" '
            'fill="#eef3fb" stroke="#335"/>'
            f'<text x="{_X + _BOX_W / 2}" y="{y + _BOX_H / 2 + 4}" text-anchor="middle" '
            f'font-weight="bold">{escape(phase)}</text>'
        )
        if decisions is not None and phase in decisions:
            label = "crash here, recovery: " + ", ".join(sorted(decisions[phase]))
            parts.append(
                f'<text x="{_X + _BOX_W + 270}" y="{y + _BOX_H / 2 + 4}" fill="#844" '
                f'font-style="italic">{escape(label)}</text>'
            )
    cx = _X + _BOX_W / 2
    for source, target, labels in edges(procedure):
        if source == target:  # a loop on the right side of the box
            y = top(source)
            parts.append(
                f'<path d="M{_X + _BOX_W},{y + 8} C{_X + _BOX_W + 40},{y - 6} '
                f'{_X + _BOX_W + 40},{y + _BOX_H + 6} {_X + _BOX_W},{y + _BOX_H - 8}" '
                'fill="none" stroke="#333" marker-end="url(#arrow)"/>'
            )
            text_y, text_x = float(y + 4), float(_X + _BOX_W + 46)
        else:
            y1, y2 = top(source) + _BOX_H, top(target)
            if y2 > y1:
                parts.append(
                    f'<line x1="{cx}" y1="{y1}" x2="{cx}" y2="{y2 - 2}" stroke="#333" '
                    'marker-end="url(#arrow)"/>'
                )
                text_y, text_x = float(y1 + 16), cx + 8
            else:  # back to an earlier phase: around the left side
                yb, yt = top(source) + _BOX_H / 2, top(target) + _BOX_H / 2
                parts.append(
                    f'<path d="M{_X},{yb} C{_X - 28},{yb} {_X - 28},{yt} {_X - 2},{yt}" '
                    'fill="none" stroke="#333" stroke-dasharray="4 3" '
                    'marker-end="url(#arrow)"/>'
                )
                text_y, text_x = (yb + yt) / 2, 2.0
        for i, label in enumerate(labels):
            parts.append(f'<text x="{text_x}" y="{text_y + 13 * i}">{escape(label)}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _list_table(title: str, header: list[str], rows: list[list[str]]) -> list[str]:
    lines = [f".. list-table:: {title}", "   :header-rows: 1", ""]
    for cells in [header, *rows]:
        lines.append(f"   * - {cells[0]}")
        lines += [f"     - {cell}" for cell in cells[1:]]
    return lines


def steps_table(protocol: str) -> list[str]:
    """RST: the procedure's steps, the phase each leads to, and the requirements it meets."""
    procedure = PROCEDURES[protocol]
    rows = [
        [str(i), f"``{step.kind}``", step.role + _REPEAT[step.repeat], f"``{step.phase}``",
         ", ".join(f":need:`{r}`" for r in step.reqs) or "(none)"]
        for i, step in enumerate(procedure.steps, 1)
    ]  # fmt: skip
    return _list_table(
        f"Steps of the {procedure.name}", ["#", "operation", "on", "phase after", "requirements"],
        rows,
    )  # fmt: skip


def phases_table(protocol: str) -> list[str]:
    """RST: each phase, what is on disk, and what recovery decides after a crash there."""
    procedure = PROCEDURES[protocol]
    notes = dict(procedure.phase_notes)
    decisions = CRASH_DECISIONS[protocol]
    rows = [
        [f"``{phase}``", notes.get(phase, ""),
         ", ".join(f"``{d}``" for d in sorted(decisions.get(phase, frozenset())))]
        for phase in procedure.phases
    ]  # fmt: skip
    return _list_table(
        f"Phases of the {procedure.name}",
        ["phase", "on disk", "recovery decisions after a crash here (explored)"],
        rows,
    )


def recovery_table(protocol: str) -> list[str]:
    """RST: the recovery decision table and each decision's steps."""
    if protocol == "spec":
        rows = [
            [f"``{cur.value}``", f"``{tmp.value}``", f"``{decision.value}``"]
            for (cur, tmp), decision in RECOVERY_TABLE.items()
        ]
        header = ["pg_cryptokeys", "pg_cryptokeys_tmp", "decision"]
    else:
        rows = [
            [str(tmp), str(cur), str(complete), f"``{decision}``"]
            for (tmp, cur, complete), decision in LEGACY_RECOVERY_TABLE.items()
        ]
        header = ["tmp present", "pg_cryptokeys present", "tmp holds 3 key files", "decision"]
    lines = _list_table(f"{protocol} recovery decisions", header, rows)
    for name, procedure in RECOVERIES[protocol].items():
        lines += ["", f"``{name}``: " + "; ".join(step_label(s) for s in procedure.steps) + "."]
    return lines


def points_table(name: str) -> list[str]:
    """RST: the durability points of one procedure (``points.POINTS``), as the harness judges
    them: what must be durable, before what, charged to which requirement."""
    procedure = points.PROCEDURES[name]
    rows = [
        [str(i), p.text, f"{p.step}", f":need:`{p.requirement}`",
         ", ".join(f":need:`{r}`" for r in p.also) or "(none)"]
        for i, p in enumerate(points.POINTS[name], 1)
    ]  # fmt: skip
    return _list_table(
        f"Durability points of the {procedure.name}",
        ["#", "point", "fsync step", "charged to", "also cited"],
        rows,
    )
