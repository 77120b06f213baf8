"""Let autodoc read the reference's docstrings as their authors meant them.

The reference's docstrings are written for people reading the code: numbered steps and bullet
lists start right after a sentence and end without a blank line. reStructuredText wants blank
lines around a list, so this hook inserts them (and nothing else) before autodoc parses the
docstring. The source files stay as they are.
"""

from __future__ import annotations

import re
from typing import Any

from sphinx.application import Sphinx

_ITEM = re.compile(r"^(\s*)(?:\d+\.|[-*])\s+\S")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def loosen_lists(lines: list[str]) -> list[str]:
    """Blank lines before a list that follows text, and after a list that text follows."""
    out: list[str] = []
    list_indent: int | None = None  # indentation of the current list's items
    for line in lines:
        item = _ITEM.match(line)
        previous = out[-1] if out else ""
        if not line.strip():
            out.append(line)
            continue
        if item:
            if list_indent is None and previous.strip():
                out.append("")
            list_indent = len(item.group(1))
        elif list_indent is not None and _indent(line) <= list_indent:
            if previous.strip():
                out.append("")
            list_indent = None
        out.append(line)
    return out


def _process(  # noqa: PLR0917  (the signature autodoc calls)
    app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    lines[:] = loosen_lists(lines)


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("autodoc-process-docstring", _process)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
