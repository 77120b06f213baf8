"""Every command and code block of README.md and docs/ is run, or says why not (``blocks.py``).

Each page's runnable blocks (``sh`` and ``python``) become one bash script, in page order, run
in a fresh temporary directory as a user would type them one after the other: a variable set
in one block is there in the next. Three things stand in for what a test cannot do, each
visible here and nowhere else:

* ``pip install`` is checked, not run (the test environment is already installed, and CI has
  no business changing it): the target must be this checkout and every extra it names must be
  defined in pyproject.toml.
* ``pgkms-conformance run`` is run with ``--stages protocol`` appended and ``stress`` with
  ``--rounds 2``, so that a documented run costs seconds: the arguments as documented are all
  parsed and used (adapter command, report files), only the amount of work is bounded.
* ``./my-adapter``, the README's name for the reader's own adapter, is a script in the
  temporary directory that starts the reference implementation's adapter (any flags ignored).

A synopsis block's lines are parsed by the program's own argument parser. A command quoted
inline in prose (or in an example's comment, as ``// Run: pgkms-conformance run --impl ...``)
is too short to run but must name subcommands and options that exist.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from pgkms.tools import cli as pgkms_cli
from pgkms_conformance import cli as conformance_cli
from pgkms_conformance.harness.report_html import spec_chapters

from tests.docs.blocks import MARKERS, ROOT, RUNNABLE, Block, blocks, pages

BIN = Path(sys.executable).parent

# What each page's run must show besides exit status 0: (text in stdout, how many times).
EXPECTED_OUTPUT: dict[str, list[tuple[str, int]]] = {
    "README.md": [("VERDICT: PASS", 1)],
    "docs/quickstart.rst": [
        ("created pg_cryptokeys with 3 internal keys", 1),
        ("the passphrase opens all 3 internal keys", 4),
        ("cannot detect a modified IV", 2),
        ("my secret passward", 2),
        ("key-check values saved", 1),
        ("are the ones", 1),
        ("rotation state: no interrupted rotation", 1),
        ("internal keys re-wrapped under the new passphrase", 1),
    ],
    "docs/validating.rst": [("VERDICT: PASS", 1), ("invariant violations: 0", 1)],
}
# The files a page's run must leave in its working directory.
EXPECTED_FILES: dict[str, list[str]] = {
    "README.md": ["report.json", "report.xml", "report.html"],
    "docs/validating.rst": ["report.json", "report.xml", "report.html"],
}

PIP_CHECK = r"""
import sys, tomllib
root, args = sys.argv[1], sys.argv[2:]
targets = [a for a in args if not a.startswith("-")]
if not targets or targets[0] != "install" or len(targets) != 2:
    sys.exit(f"pip check: expected 'pip install [options] TARGET', got {args}")
target = targets[1]
base, _, extras = target.partition("[")
if base != ".":
    sys.exit(f"pip check: the target {target!r} is not this checkout ('.')")
defined = tomllib.load(open(f"{root}/pyproject.toml", "rb"))["project"]["optional-dependencies"]
wanted = [e for e in extras.rstrip("]").split(",") if e]
unknown = [e for e in wanted if e not in defined]
if unknown:
    sys.exit(f"pip check: pyproject.toml defines no extra {unknown}")
print(f"pip install {target}: checked (this checkout, extras {wanted or 'none'})")
"""

PRELUDE = """set -euo pipefail
pip() { python3 "$DOCTEST_DIR/pip_check.py" "$DOCTEST_ROOT" "$@"; }
pgkms-conformance() {
  case "${1:-}" in
    run) command pgkms-conformance "$@" --stages protocol --quiet ;;
    stress) command pgkms-conformance "$@" --rounds 2 ;;
    *) command pgkms-conformance "$@" ;;
  esac
}
"""

MY_ADAPTER = f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -P -m pgkms.adapter\n"


def _all_blocks() -> list[Block]:
    return [b for page in pages() for b in blocks(page)]


def _script(page_blocks: list[Block]) -> str:
    parts = [PRELUDE]
    for block in page_blocks:
        parts.append(f"# --- {block.where}")
        if block.language == "python":
            parts.append(f"python3 - <<'DOCTEST_PYTHON'\n{block.code}DOCTEST_PYTHON")
        else:
            parts.append(block.code)
    return "\n".join(parts) + "\n"


def _runnable_pages() -> list[str]:
    names = {b.page for b in _all_blocks() if b.marker is None and b.language in RUNNABLE}
    return sorted(names)


def test_every_block_is_run_or_says_why_not() -> None:
    found = _all_blocks()
    assert len(found) > 10  # the collector sees the pages at all
    problems = []
    for block in found:
        if block.marker is None and block.language not in RUNNABLE:
            problems.append(f"{block.where}: a {block.language} block needs a marker ({MARKERS})")
        if block.marker is not None and not block.reason:
            problems.append(f"{block.where}: marker {block.marker} without a reason")
    assert problems == []


def test_blocks_run_by_another_test_name_an_existing_test() -> None:
    for block in _all_blocks():
        if block.marker != "run-by":
            continue
        file, _, test = block.reason.partition("::")
        text = (ROOT / file).read_text(encoding="utf-8")
        assert f"def {test}(" in text, block.where


def _synopsis_line(tokens: list[str], where: str) -> None:
    program, args = tokens[0], [t.strip("[]") for t in tokens[1:]]
    args = [a for a in args if a]
    if program == "pip":
        done = subprocess.run(
            [sys.executable, "-c", PIP_CHECK, str(ROOT), *args], capture_output=True, text=True
        )
        assert done.returncode == 0, f"{where}: {done.stderr}"
        return
    parsers = {"pgkms": pgkms_cli.build_parser, "pgkms-conformance": conformance_cli.build_parser}
    assert program in parsers, f"{where}: no parser known for {program!r}"
    status: object = 0
    try:
        parsers[program]().parse_args(args)
    except SystemExit as stop:  # --version and --help exit 0; bad usage exits 2
        status = stop.code
    assert status == 0, f"{where}: {program} refuses {args}"


def test_synopsis_lines_parse(capsys: pytest.CaptureFixture[str]) -> None:
    checked = 0
    for block in _all_blocks():
        if block.marker != "synopsis":
            continue
        for n, line in enumerate(block.code.splitlines()):
            tokens = shlex.split(line, comments=True)
            for redirect in ("<", ">"):
                if redirect in tokens:
                    tokens = tokens[: tokens.index(redirect)]
            if tokens:
                _synopsis_line(tokens, f"{block.page}:{block.line + n}")
                checked += 1
    capsys.readouterr()
    assert checked >= 10


@pytest.mark.parametrize("page", _runnable_pages())
def test_documented_commands_run(page: str, tmp_path: Path) -> None:
    page_blocks = [b for b in blocks(ROOT / page) if b.marker is None and b.language in RUNNABLE]
    (tmp_path / "pip_check.py").write_text(PIP_CHECK, encoding="utf-8")
    adapter = tmp_path / "my-adapter"
    adapter.write_text(MY_ADAPTER, encoding="utf-8")
    adapter.chmod(0o755)
    script = tmp_path / "doc.sh"
    script.write_text(_script(page_blocks), encoding="utf-8")
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "DOCTEST_DIR": str(tmp_path),
        "DOCTEST_ROOT": str(ROOT),
        "TMPDIR": str(tmp_path),  # mktemp -d of the examples lands here, removed with it
    }
    done = subprocess.run(
        ["bash", str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"{page}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    for text, times in EXPECTED_OUTPUT.get(page, []):
        assert done.stdout.count(text) == times, (text, done.stdout[-3000:])
    for name in EXPECTED_FILES.get(page, []):
        assert (tmp_path / name).is_file(), name


def test_every_runnable_page_has_its_expectations() -> None:
    """A page whose commands run must also say what they must show: exit 0 is not enough."""
    assert set(_runnable_pages()) == set(EXPECTED_OUTPUT)


def test_the_pip_check_refuses_an_unknown_extra(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PIP_CHECK, str(ROOT), "install", "-e", ".[no-such-extra]"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1 and "no extra ['no-such-extra']" in done.stderr
    assert tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]


def test_the_guide_links_to_chapters_and_anchors_the_spec_has() -> None:
    """``:spec:`text <chapters/x.html#ID>``` roles: the chapter exists, the ID is defined in it."""
    role = re.compile(r":spec:`[^<`]*<([^>#`]+)(?:#([^>`]+))?>`")
    links = [
        (page, target, anchor)
        for page in (ROOT / "docs").glob("*.rst")
        for target, anchor in role.findall(page.read_text(encoding="utf-8"))
    ]
    assert len(links) >= 3
    chapters = spec_chapters()
    for page, target, anchor in links:
        assert (ROOT / "spec" / target).with_suffix(".rst").is_file(), (page.name, target)
        if anchor:
            assert chapters.get(anchor) == target, (page.name, anchor)


_INLINE = re.compile(r"`{1,2}(pgkms(?:-conformance)?(?: [^`]+)?)`{1,2}")
_COMMENT = re.compile(r"(?://|#)\s*\w*:?\s*(pgkms-conformance [^\n]+)")


def _inline_commands() -> list[tuple[str, str]]:
    """(where, command) for every inline command of the pages, and the examples' comments."""
    found = []
    for page in pages():
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), start=1):
            for match in _INLINE.finditer(line):
                found.append((f"{page.relative_to(ROOT)}:{number}", match.group(1)))
    for source in sorted((ROOT / "docs" / "examples").rglob("*")):
        if source.suffix not in (".go", ".c", ".h") and source.name != "Makefile":
            continue
        for number, line in enumerate(source.read_text(encoding="utf-8").splitlines(), start=1):
            for match in _COMMENT.finditer(line):
                found.append((f"{source.relative_to(ROOT)}:{number}", match.group(1)))
    return found


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse has no public API for this
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _inline_problem(command: str) -> str | None:
    """What is wrong with a quoted command: an unknown subcommand or option (None: nothing)."""
    parsers = {"pgkms": pgkms_cli.build_parser, "pgkms-conformance": conformance_cli.build_parser}
    words = command.replace("[", " ").replace("]", " ").split()
    parser = parsers[words[0]]()
    descending = True  # subcommand words come first; after any other word, arguments only
    for word in words[1:]:
        if word.startswith("-"):
            option = word.split("=")[0]
            if option not in parser._option_string_actions:
                return f"{parser.prog} has no option {option}"
            continue
        choices = _subparsers(parser) if descending else {}
        if word in choices:
            parser = choices[word]
        elif choices:
            return f"{parser.prog} has no subcommand {word!r}"
        else:
            descending = False
    return None


def test_inline_commands_name_real_subcommands_and_options() -> None:
    """A command quoted in prose (``pgkms-conformance run --impl reference``) or in an example's
    comment names a subcommand that exists and only options that subcommand has."""
    commands = _inline_commands()
    assert len(commands) >= 20
    problems = [f"{where}: {command}: {_inline_problem(command)}" for where, command in commands]
    assert [p for p in problems if not p.endswith(": None")] == []


def test_the_inline_check_catches_a_wrong_option_or_subcommand() -> None:
    assert _inline_problem("pgkms-conformance run --adapter ./x") == (
        "pgkms-conformance run has no option --adapter"
    )
    assert _inline_problem("pgkms frobnicate DATADIR") == "pgkms has no subcommand 'frobnicate'"
    assert _inline_problem("pgkms-conformance vectors check") is None
    assert _inline_problem("pgkms recover DATADIR [--passphrase-command CMD [--apply]]") is None
