"""Sphinx extension: the rotation state machine's diagram and tables, from the crash package.

Directives (argument: ``spec`` or ``2020``):

- ``.. pgkms-crash-diagram:: spec``: the SVG state diagram, inlined (HTML builders);
- ``.. pgkms-crash-steps:: spec``: the procedure's steps with their requirements;
- ``.. pgkms-crash-phases:: spec``: each phase and what recovery decides after a crash there;
- ``.. pgkms-crash-recovery:: spec``: the recovery decision table and each decision's steps;
- ``.. pgkms-durability-points:: rotation``: the durability points of a procedure
  (``pgkms_conformance.crash.points``: the orderings the harness judges an IUT's trace by).

Everything is drawn from ``pgkms_conformance.crash.machine`` (the same tables the explorer
checks the code against) by ``pgkms_conformance.crash.docs``: pure Python, offline.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.parsers.rst import Directive
from docutils.statemachine import StringList

try:
    from pgkms_conformance.crash import docs, points
except ImportError:  # building from a checkout without the package installed
    _ROOT = Path(__file__).resolve().parents[2]
    sys.path[:0] = [str(_ROOT / "conformance"), str(_ROOT / "reference")]
    from pgkms_conformance.crash import docs, points

PROTOCOLS = ("spec", "2020")


class _ProtocolDirective(Directive):
    required_arguments = 1
    has_content = False

    def protocol(self) -> str:
        name = self.arguments[0]
        if name not in PROTOCOLS:
            raise self.error(f"unknown protocol {name!r}; expected one of {PROTOCOLS}")
        return name

    def parse_rst(self, lines: list[str]) -> list[nodes.Node]:
        container = nodes.container()
        self.state.nested_parse(StringList(lines, source="pgkms_crash"), 0, container)
        return list(container.children)


class CrashDiagram(_ProtocolDirective):
    def run(self) -> list[nodes.Node]:
        protocol = self.protocol()
        svg = docs.render_svg(docs.PROCEDURES[protocol], docs.CRASH_DECISIONS[protocol])
        return [nodes.raw("", svg, format="html")]


class CrashSteps(_ProtocolDirective):
    def run(self) -> list[nodes.Node]:
        return self.parse_rst(docs.steps_table(self.protocol()))


class CrashPhases(_ProtocolDirective):
    def run(self) -> list[nodes.Node]:
        return self.parse_rst(docs.phases_table(self.protocol()))


class CrashRecovery(_ProtocolDirective):
    def run(self) -> list[nodes.Node]:
        return self.parse_rst(docs.recovery_table(self.protocol()))


class DurabilityPoints(Directive):
    required_arguments = 1
    final_argument_whitespace = True
    has_content = False

    def run(self) -> list[nodes.Node]:
        name = self.arguments[0]
        if name not in points.POINTS:
            raise self.error(f"unknown procedure {name!r}; expected one of {list(points.POINTS)}")
        container = nodes.container()
        lines = docs.points_table(name)
        self.state.nested_parse(StringList(lines, source="pgkms_crash"), 0, container)
        return list(container.children)


DIRECTIVES = {
    "pgkms-crash-diagram": CrashDiagram,
    "pgkms-crash-steps": CrashSteps,
    "pgkms-crash-phases": CrashPhases,
    "pgkms-crash-recovery": CrashRecovery,
    "pgkms-durability-points": DurabilityPoints,
}


def setup(app: Any) -> dict[str, Any]:
    for name, directive in DIRECTIVES.items():
        app.add_directive(name, directive)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
