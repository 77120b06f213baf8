"""Sphinx configuration of the pgkms user guide (built offline, warnings as errors)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE / "_ext"))

project = "pgkms user guide"
author = "the pgkms project"
copyright = "2026, the pgkms project"
release = "0.1.0"

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.extlinks",
    "pgkms_cli",
    "pgkms_docstrings",
    "pgkms_doc_markers",
]
root_doc = "index"
# generated/: tables generated from the protocol definition, included by their pages.
exclude_patterns = ["_build", "examples", "generated"]
html_theme = "alabaster"
html_title = "pgkms user guide"
intersphinx_mapping: dict[str, tuple[str, str | None]] = {}  # never fetch anything
# Shell examples are shell; a bare ``::`` block is not Python.
highlight_language = "none"

# ``:spec:`Wrap format <chapters/wrap-format.html#WRAP_04>``` links into the specification. By
# default the one ``nox -s docs`` builds beside this guide (spec/_build/html, reached from
# docs/_build/html); PGKMS_SPEC_URL points the links at a published copy instead.
SPEC_URL = os.environ.get("PGKMS_SPEC_URL", "../../../spec/_build/html/")
extlinks = {"spec": (SPEC_URL.rstrip("/") + "/%s", None)}

autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
