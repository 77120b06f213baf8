"""Sphinx configuration of the pgkms specification (built offline, warnings as errors)."""

from __future__ import annotations

import sys
from pathlib import Path

from pgkms_conformance.ids import REQUIREMENT_PATTERN

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE / "_ext"))

project = "pgkms specification"
author = "the pgkms project"
copyright = "2026, the pgkms project"
version = "1"
release = "1.0-draft"

extensions = ["sphinx_needs", "pgkms_spec"]
# The crash-model helper's extension renders the rotation state machine; load it when present.
if (HERE / "_ext" / "pgkms_crash.py").exists():
    extensions.append("pgkms_crash")

root_doc = "index"
# chapters/generated/: sections generated from definitions, included by their chapters.
exclude_patterns = ["_build", "chapters/generated"]
# Literal blocks are hex dumps, listings and diagrams, never Python: no highlighting guessed.
highlight_language = "none"
templates_path: list[str] = []
html_theme = "alabaster"
html_static_path = ["_static"]
html_css_files = ["pgkms.css"]  # need boxes within the text column
html_title = "pgkms specification v1"
nitpicky = True
intersphinx_mapping: dict[str, tuple[str, str | None]] = {}  # never fetch anything

# --- sphinx-needs: requirements, assumptions, security findings, deviations from 2020 --------
needs_types = [
    {"directive": "req", "title": "Requirement", "prefix": "", "color": "#BFD8D2", "style": "node"},
    {
        "directive": "assumption",
        "title": "Assumption",
        "prefix": "",
        "color": "#E8E8E8",
        "style": "node",
    },
    {
        "directive": "finding",
        "title": "Security finding",
        "prefix": "SEC_",
        "color": "#FEDCD2",
        "style": "node",
    },
    {
        "directive": "deviation",
        "title": "Deviation from the 2020 patch",
        "prefix": "DEV_",
        "color": "#DCB239",
        "style": "node",
    },
]
# AREA_NN requirements (the lead's citation regex), SEC_<NAME> findings, DEV_<NAME> deviations.
needs_id_regex = rf"^({REQUIREMENT_PATTERN}|SEC_[A-Z][A-Z0-9_]*|DEV_[A-Z][A-Z0-9_]*)$"
needs_id_required = True
needs_role_need_template = "{{ id }}"  # inline references show the bare identifier
# Statuses used: pinned / draft (requirements, assumptions), format / fixed (findings),
# adopted (deviations).
needs_build_json = True
needs_reproducible_json = True
