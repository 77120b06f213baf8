"""The spec's diagram and tables are drawn from the transition data (one source)."""

from __future__ import annotations

import importlib.util
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path
from types import ModuleType

import pytest
from docutils.core import publish_string
from docutils.parsers.rst import directives
from pgkms_conformance.crash import docs, points
from pgkms_conformance.crash.machine import SPEC_ROTATION

EXT = Path(__file__).parents[2] / "spec" / "_ext" / "pgkms_crash.py"
SVG = "{http://www.w3.org/2000/svg}"


@pytest.mark.parametrize("protocol", ["spec", "2020"])
def test_the_svg_is_well_formed_and_shows_every_phase_and_step(protocol: str) -> None:
    procedure = docs.PROCEDURES[protocol]
    root = ET.fromstring(docs.render_svg(procedure, docs.CRASH_DECISIONS[protocol]))
    texts = [t.text or "" for t in root.iter(f"{SVG}text")]
    for phase in procedure.phases:
        assert phase in texts
    for step in procedure.steps:
        assert docs.step_label(step) in texts
    assert len(list(root.iter(f"{SVG}rect"))) == len(procedure.phases)


def test_a_change_to_the_table_changes_the_diagram() -> None:
    edited = replace(SPEC_ROTATION, steps=SPEC_ROTATION.steps[:-1])
    assert docs.render_svg(edited) != docs.render_svg(SPEC_ROTATION)
    assert "rotated" not in docs.render_svg(edited)


def load_extension() -> ModuleType:
    spec = importlib.util.spec_from_file_location("pgkms_crash_ext", EXT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_sphinx_directives_render_through_docutils() -> None:
    ext = load_extension()
    for name, directive in ext.DIRECTIVES.items():
        directives.register_directive(name, directive)
    protocol_directives = [n for n in ext.DIRECTIVES if n.startswith("pgkms-crash-")]
    source = "\n\n".join(
        f".. {name}:: {protocol}" for name in protocol_directives for protocol in ("spec", "2020")
    )
    # :need: roles belong to sphinx-needs; plain docutils reports them but still renders.
    html = publish_string(source, writer="html", settings_overrides={"report_level": 5}).decode()
    assert html.count("<svg") == 2
    for phase_or_decision in ("current_emptying", "replace_current", "adopt_tmp"):
        assert phase_or_decision in html
    with pytest.raises(Exception, match="unknown protocol"):
        publish_string(
            ".. pgkms-crash-steps:: 2019",
            writer="html",
            settings_overrides={"halt_level": 3, "report_level": 5},
        )


@pytest.mark.req("ROT_05", "DISK_07")
def test_the_durability_points_table_is_drawn_from_the_points_the_harness_judges() -> None:
    ext = load_extension()
    directives.register_directive(
        "pgkms-durability-points", ext.DIRECTIVES["pgkms-durability-points"]
    )
    html = publish_string(
        ".. pgkms-durability-points:: rotation",
        writer="html",
        settings_overrides={"report_level": 5},
    ).decode()
    for point in points.POINTS["rotation"]:
        assert point.text in html
    with pytest.raises(Exception, match="unknown procedure"):
        publish_string(
            ".. pgkms-durability-points:: rotation twice",
            writer="html",
            settings_overrides={"halt_level": 3, "report_level": 5},
        )
