"""One testable obligation per requirement: each ``req`` item carries exactly one RFC 2119
keyword, and an ``assumption`` item none (it states what is assumed, not what is required).

A requirement with several keywords is split (the extra obligations get ids of their own) or
rephrased to one keyword where the extra ones only restated it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pgkms_conformance import trace

REPO = Path(__file__).resolve().parents[2]
KEYWORD_RE = re.compile(
    r"\b(?:MUST NOT|MUST|REQUIRED|SHALL NOT|SHALL|SHOULD NOT|SHOULD|NOT RECOMMENDED"
    r"|RECOMMENDED|MAY|OPTIONAL)\b"
)
ITEM_RE = re.compile(r"^(\s*)\.\.\s+(req|assumption)::")
ID_OPTION_RE = re.compile(r"^\s+:id:\s*(\S+)\s*$")
OPTION_RE = re.compile(r"^\s+:[a-z_]+:")  # the item's options (id, status, tags, links)


def _items() -> list[tuple[str, str, str, str]]:
    """(id, kind, chapter file, body text) of every ``req`` and ``assumption`` item."""
    found: list[tuple[str, str, str, str]] = []
    for path in sorted((REPO / "spec").rglob("*.rst")):
        lines = path.read_text(encoding="utf-8").splitlines()
        at = 0
        while at < len(lines):
            match = ITEM_RE.match(lines[at])
            if not match:
                at += 1
                continue
            indent, kind = len(match.group(1)), match.group(2)
            end = at + 1
            while end < len(lines) and (
                not lines[end].strip() or len(lines[end]) - len(lines[end].lstrip()) > indent
            ):
                end += 1
            block = lines[at:end]
            ids = [m.group(1) for m in map(ID_OPTION_RE.match, block) if m]
            assert ids, f"{path.name}:{at + 1}: {kind} without :id:"
            body = " ".join(line for line in block[1:] if not OPTION_RE.match(line))
            found.append((ids[0], kind, path.name, body))
            at = end
    return found


def _keywords(body: str) -> list[str]:
    text = re.sub(r":[a-z]+:`[^`]*`", "", body)  # role targets never hold keywords
    return KEYWORD_RE.findall(text)


def test_items_are_found() -> None:
    items = _items()
    kinds = {kind for _, kind, _, _ in items}
    assert kinds == {"req", "assumption"}
    defined = {d.id for d in trace.check(REPO).definitions if d.kind in ("req", "assumption")}
    assert {i for i, _, _, _ in items} == defined


@pytest.mark.parametrize("item", _items(), ids=lambda item: item[0])
def test_one_keyword_per_requirement_none_per_assumption(item: tuple[str, str, str, str]) -> None:
    item_id, kind, chapter, body = item
    found = _keywords(body)
    if kind == "assumption":
        assert found == [], f"{item_id} ({chapter}) is an assumption but says {found}"
    else:
        assert len(found) == 1, f"{item_id} ({chapter}) carries {found}: split or rephrase it"


def test_keyword_pattern_sees_compound_text() -> None:
    assert _keywords("It MUST do x and MUST NOT do y; it MAY do z.") == ["MUST", "MUST NOT", "MAY"]
    assert _keywords("see :need:`MUST_01` and lower-case must") == []
