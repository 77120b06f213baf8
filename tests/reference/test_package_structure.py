"""The reference's shape: core modules map to spec chapters, plumbing lives apart in pgkms.tools.

The core modules (``reference/pgkms/*.py``) are the executable specification: each names the one
chapter it implements (``Chapter ``spec/chapters/<file>.rst````) in its docstring, and together
the modules of a chapter cite every requirement that chapter defines. The plumbing
(``reference/pgkms/tools/``) drives the core and is never imported by it.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pgkms
from pgkms_conformance.trace import ids_in_text, read_definitions

PACKAGE = Path(pgkms.__file__).parent
ROOT = PACKAGE.parent.parent
CHAPTER_RE = re.compile(r"Chapter ``spec/chapters/([a-z0-9-]+\.rst)``")
ENTRY_MODULES = {"__init__.py", "__main__.py"}


def core_modules() -> list[Path]:
    return sorted(p for p in PACKAGE.glob("*.py") if p.name not in ENTRY_MODULES)


def docstring(path: Path) -> str:
    return ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""


def claimed_chapter(path: Path) -> list[str]:
    return CHAPTER_RE.findall(docstring(path))


def test_every_core_module_names_exactly_one_existing_chapter() -> None:
    wrong = {}
    for path in core_modules():
        chapters = claimed_chapter(path)
        if len(chapters) != 1 or not (ROOT / "spec" / "chapters" / chapters[0]).is_file():
            wrong[path.name] = chapters
    assert wrong == {}, "each core module's docstring names one chapter file that exists"


def test_the_modules_of_a_chapter_cite_every_requirement_it_defines() -> None:
    problems: list[str] = []
    defined: dict[str, set[str]] = {}
    for d in read_definitions(ROOT, problems):
        if d.kind == "req":
            defined.setdefault(Path(d.path).name, set()).add(d.id)
    assert problems == []
    cited: dict[str, set[str]] = {}
    for path in core_modules():
        for chapter in claimed_chapter(path):
            cited.setdefault(chapter, set()).update(ids_in_text(docstring(path)))
    missing = {
        chapter: sorted(defined.get(chapter, set()) - ids)
        for chapter, ids in cited.items()
        if defined.get(chapter, set()) - ids
    }
    assert missing == {}, "name these ids in the docstring of the module that implements them"


def test_core_modules_never_import_the_plumbing() -> None:
    offenders = []
    for path in [*core_modules(), PACKAGE / "__init__.py"]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            if any(n == "pgkms.tools" or n.startswith("pgkms.tools.") for n in names):
                offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []


def test_importing_the_core_loads_no_plumbing() -> None:
    code = "import sys, pgkms; print(sorted(m for m in sys.modules if m.startswith('pgkms.tools')))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"


def test_the_old_entry_points_still_start_the_plumbing() -> None:
    hello = b'{"id": 1, "op": "hello"}\n'
    adapter = subprocess.run(
        [sys.executable, "-m", "pgkms.adapter"], input=hello, capture_output=True, timeout=60
    )
    assert adapter.returncode == 0
    assert b'"implementation":"pgkms-reference"' in adapter.stdout
    cli = subprocess.run(
        [sys.executable, "-m", "pgkms", "--help"], capture_output=True, text=True, timeout=60
    )
    assert cli.returncode == 0
    assert "upgrade-keys" in cli.stdout
