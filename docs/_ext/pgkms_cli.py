"""``.. pgkms-cli:: module:function``: a CLI reference generated from an argparse parser.

The parser is the one the program itself uses (``pgkms.tools.cli.build_parser``), so the
reference cannot drift from the program: every subcommand becomes a section with its usage line
and a table of its arguments.
"""

from __future__ import annotations

import argparse
import importlib
from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse has no public API for this
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _argument_rows(parser: argparse.ArgumentParser) -> list[tuple[str, str]]:
    rows = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
            continue
        if action.option_strings:
            name = ", ".join(action.option_strings)
            if action.nargs != 0:
                name += f" {action.metavar or action.dest.upper()}"
        else:
            name = str(action.metavar or action.dest)
        help_text = (action.help or "").replace("%%", "%")
        if action.required and action.option_strings:
            help_text += " (required)"
        rows.append((name, help_text))
    return rows


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("*", "\\*").replace("`", "\\`").replace("|", "\\|")


class CliDirective(SphinxDirective):
    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        module_name, _, func = self.arguments[0].partition(":")
        module = importlib.import_module(module_name)
        parser: argparse.ArgumentParser = getattr(module, func)()
        self.env.note_dependency(module.__file__ or "")
        lines: list[str] = []
        for name, sub in _subcommands(parser).items():
            title = f"{parser.prog} {name}"
            lines += [title, "~" * len(title), "", _escape(sub.description or ""), ""]
            lines += ["::", ""] + ["   " + u for u in sub.format_usage().strip().splitlines()]
            lines += [""]
            rows = _argument_rows(sub)
            if rows:
                lines += [".. list-table::", "   :header-rows: 1", "   :widths: 35 65", ""]
                lines += ["   * - argument", "     - meaning"]
                for arg, help_text in rows:
                    lines += [f"   * - ``{arg}``", f"     - {_escape(help_text)}"]
                lines += [""]
        container = nodes.section()
        nested_parse_with_titles(self.state, StringList(lines), container, self.content_offset)
        return list(container.children)


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("pgkms-cli", CliDirective)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
