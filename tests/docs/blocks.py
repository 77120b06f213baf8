"""The code blocks of README.md and docs/, with what the documentation tests do with each.

A block is run unless a marker right above it says otherwise:

``not-run: REASON``
    not executed, for the reason given (a toolchain CI does not have, the whole suite, the
    output of the command above);
``synopsis: REASON``
    a usage summary with placeholders: each line is checked against the program's argument
    parser (``pgkms``, ``pgkms-conformance``) or, for ``pip install``, against the extras the
    project defines, but not run;
``run-by: tests/docs/FILE.py::TEST``
    run by that test, which builds what the block needs around it.

In reStructuredText the marker is a directive (``.. not-run:: ...``, continued on indented
lines), which the guide shows as one small line above the block (docs/_ext/pgkms_doc_markers.py);
in Markdown it is an HTML comment (``<!-- not-run: ... -->``), seen in the source.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MARKERS = ("not-run", "synopsis", "run-by")
RUNNABLE = ("sh", "python")

_RST_BLOCK = re.compile(r"^(\s*)\.\. code-block::\s*(\S+)\s*$")
_RST_MARKER = re.compile(r"^\.\. (not-run|synopsis|run-by)::\s*(.*)$")
_MD_FENCE = re.compile(r"^```(\S*)\s*$")
_MD_MARKER = re.compile(r"^<!--\s*(not-run|synopsis|run-by):\s*(.*?)\s*(-->)?\s*$")


@dataclass(frozen=True)
class Block:
    page: str  # relative to the repository root
    line: int  # of the block's first line of code, 1-based
    language: str
    code: str
    marker: str | None  # one of MARKERS, or None: the block is run
    reason: str

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def pages() -> list[Path]:
    """README.md and every page under docs/ (sources only: no build output)."""
    found = [ROOT / "README.md"]
    for suffix in ("*.rst", "*.md"):
        found += sorted(
            p for p in (ROOT / "docs").rglob(suffix) if "_build" not in p.relative_to(ROOT).parts
        )
    return found


def blocks(page: Path) -> list[Block]:
    lines = page.read_text(encoding="utf-8").splitlines()
    name = page.relative_to(ROOT).as_posix()
    if page.suffix == ".md":
        return _markdown_blocks(name, lines)
    return _rst_blocks(name, lines)


def _rst_marker(lines: list[str], directive: int) -> tuple[str | None, str]:
    """The marker comment ending just above line index ``directive`` (blank lines between)."""
    i = directive - 1
    while i >= 0 and not lines[i].strip():
        i -= 1
    end = i
    while i >= 0 and lines[i].startswith("   ") and lines[i].strip():
        i -= 1  # continuation lines of the comment
    if i < 0:
        return None, ""
    match = _RST_MARKER.match(lines[i])
    if match is None:
        return None, ""
    text = " ".join([match.group(2), *(line.strip() for line in lines[i + 1 : end + 1])])
    return match.group(1), text.strip()


def _rst_body(lines: list[str], start: int, indent: int) -> tuple[int, str]:
    """The indented body after a directive or ``::`` line: (first code line index, code)."""
    body: list[str] = []
    first = None
    for j in range(start, len(lines)):
        line = lines[j]
        if line.strip() and len(line) - len(line.lstrip()) <= indent:
            break
        if first is None and (not line.strip() or line.strip().startswith(":")):
            continue  # blank lines and directive options before the code
        if first is None:
            first = j
        body.append(line)
    if first is None:
        return start, ""
    margin = min(len(x) - len(x.lstrip()) for x in body if x.strip())
    return first, "\n".join(x[margin:] for x in body).strip() + "\n"


def _rst_blocks(name: str, lines: list[str]) -> list[Block]:
    found: list[Block] = []
    for i, line in enumerate(lines):
        directive = _RST_BLOCK.match(line)
        literal = line.rstrip().endswith("::") and not line.lstrip().startswith("..")
        if directive is None and not literal:
            continue
        indent = len(line) - len(line.lstrip())
        language = directive.group(2) if directive else "(literal ::)"
        first, code = _rst_body(lines, i + 1, indent)
        if not code:
            continue
        marker, reason = _rst_marker(lines, i)
        found.append(Block(name, first + 1, language, code, marker, reason))
    return found


def _markdown_blocks(name: str, lines: list[str]) -> list[Block]:
    found: list[Block] = []
    i = 0
    while i < len(lines):
        fence = _MD_FENCE.match(lines[i])
        if fence is None:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        code = "\n".join(lines[i + 1 : end]).strip() + "\n"
        marker, reason = _markdown_marker(lines, i)
        found.append(Block(name, i + 2, fence.group(1) or "(none)", code, marker, reason))
        i = end + 1
    return found


def _markdown_marker(lines: list[str], fence: int) -> tuple[str | None, str]:
    """An HTML comment ending on the line right above the fence."""
    end = fence - 1
    if end < 0 or not lines[end].rstrip().endswith("-->"):
        return None, ""
    start = end
    while start > 0 and "<!--" not in lines[start]:
        start -= 1
    text = " ".join(line.strip() for line in lines[start : end + 1])
    match = _MD_MARKER.match(text)
    if match is None:
        return None, ""
    return match.group(1), match.group(2).strip()
