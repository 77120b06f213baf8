"""Sphinx configuration of the pgkms user guide (built offline, warnings as errors)."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE / "_ext"))

project = "pgkms user guide"
author = "the pgkms project"
copyright = "2026, the pgkms project"
release = "0.1.0"

extensions = ["sphinx.ext.autodoc", "pgkms_cli", "pgkms_docstrings"]
root_doc = "index"
# generated/: tables generated from the protocol definition, included by their pages.
exclude_patterns = ["_build", "examples", "generated"]
html_theme = "alabaster"
html_title = "pgkms user guide"
intersphinx_mapping: dict[str, tuple[str, str | None]] = {}  # never fetch anything

autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
