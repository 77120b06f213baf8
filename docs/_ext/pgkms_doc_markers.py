"""``.. not-run:: REASON`` and ``.. run-by:: TEST``: what the documentation tests do with the
code block that follows, shown to the reader as one small line.

``tests/docs/blocks.py`` reads the same markers: a block without one is run by
``tests/docs/test_documented_commands.py``; a marked block says here, visibly, why it is not
(a toolchain CI lacks, the whole suite, the output of the command above) or which test runs it.
"""

from __future__ import annotations

from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

_LEAD = {
    "not-run": "Not run by the documentation tests: ",
    "run-by": "Run by the documentation test ",
    "synopsis": "Checked against the program's argument parser, not run: ",
}


class MarkerDirective(SphinxDirective):
    required_arguments = 1
    final_argument_whitespace = True

    def run(self) -> list[nodes.Node]:
        reason = " ".join(self.arguments[0].split())
        text = _LEAD[self.name] + reason.rstrip(".") + "."
        paragraph = nodes.paragraph("", "", classes=["doc-test-marker"])
        paragraph += nodes.emphasis(text, text)
        return [paragraph]


def setup(app: Sphinx) -> dict[str, Any]:
    for name in _LEAD:
        app.add_directive(name, MarkerDirective)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
