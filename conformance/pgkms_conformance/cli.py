"""``pgkms-conformance``: one console script, one subcommand per tool.

Each tool lives in its own module exposing ``configure(parser)`` (add its arguments) and
``run(args) -> int``. The table below is the only place that knows them all.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import importlib.util
import sys
from collections.abc import Sequence
from typing import NoReturn

# Neither needs the "conformance" extra, so --version and the missing-extra message still work.
from pgkms_conformance.harness.report_json import SCHEMA_ID
from pgkms_conformance.protocol.client import PROTOCOL_VERSION

# subcommand -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "trace": ("pgkms_conformance.trace", "requirement traceability: every requirement tested"),
    "crash": ("pgkms_conformance.crash.cli", "explore crash states of passphrase rotation"),
    "vectors": ("pgkms_conformance.vectors.cli", "generate, check or validate test vectors"),
    "protocol": (
        "pgkms_conformance.protocol.cli",
        "generate or check the files made from the adapter protocol's definition",
    ),
    "run": ("pgkms_conformance.harness.cli", "judge an implementation through its adapter"),
    "mutants": ("pgkms_conformance.mutants.cli", "run the harness on the mutant zoo"),
    "stress": (
        "pgkms_conformance.harness.stress",
        "concurrent procedures on one data directory: lost key sets, violations",
    ),
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


# The top-level help, in plain text (argparse prints it as is).
DESCRIPTION = (
    "The conformance toolkit for PostgreSQL's 2020 cluster key manager (kms_v10): judge an "
    "implementation through its adapter, generate and check the test vectors, explore crash "
    "states, run the mutant zoo, check requirement traceability."
)
EPILOG = "'pgkms-conformance COMMAND --help' describes each command and its exit status."


def version_text() -> str:
    """The toolkit's version and the versions of the contracts it speaks."""
    return (
        f"pgkms-conformance {importlib.metadata.version('pgkms')} "
        f"(adapter protocol {PROTOCOL_VERSION}, report {SCHEMA_ID})"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="pgkms-conformance", description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("--version", action="version", version=version_text())
    sub = parser.add_subparsers(
        dest="command", required=True, parser_class=_Parser, metavar="COMMAND", title="commands"
    )
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=help_text, description=help_text)
        module.configure(p)
        p.set_defaults(run=module.run)
    return parser


# The third-party packages the toolkit needs beyond the reference's own (the "conformance"
# extra). ``pip install -e .`` installs the console script without them.
EXTRA_MODULES: tuple[str, ...] = ("jsonschema", "hypothesis", "Crypto")


def missing_extra() -> list[str]:
    return [name for name in EXTRA_MODULES if importlib.util.find_spec(name) is None]


def main(argv: Sequence[str] | None = None) -> int:
    missing = missing_extra()
    if missing:
        sys.stderr.write(
            f"pgkms-conformance: missing {', '.join(missing)}; install the toolkit with "
            "pip install 'pgkms[conformance]' (or, from a clone, pip install -e '.[conformance]')\n"
        )
        return 2
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        sys.stderr.write("pgkms-conformance: interrupted\n")
        return 130
