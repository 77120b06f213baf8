"""``pgkms-conformance protocol generate | check``: the files generated from the definition.

``generate`` rewrites the JSON Schemas, the spec chapter's generated sections and the guide's
table from ``spec/adapter-protocol.toml``; ``check`` changes nothing and exits 1, naming each
file, when a committed file differs from a regeneration (CI runs it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pgkms_conformance.protocol.definition import REPO_ROOT, DefinitionError
from pgkms_conformance.protocol.generate import drift, write


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "action",
        choices=("generate", "check"),
        help="generate: rewrite the generated files; check: fail if any differs",
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=REPO_ROOT,
        help="the source tree holding the generated files (default: this checkout)",
    )


def run(args: argparse.Namespace) -> int:
    try:
        if args.action == "generate":
            changed = write(args.root)
            for path in changed:
                print(f"wrote {path}")
            print(f"{len(changed)} file(s) changed")
            return 0
        problems = drift(args.root)
    except DefinitionError as exc:
        sys.stderr.write(f"pgkms-conformance protocol: {exc}\n")
        return 2
    for problem in problems:
        print(problem)
    if problems:
        print("run 'pgkms-conformance protocol generate' and commit the result")
        return 1
    print("protocol: every generated file matches spec/adapter-protocol.toml")
    return 0
