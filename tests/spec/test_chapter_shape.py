"""The spec's shape: every chapter opens the same way and names what implements it.

A chapter opens with its title, then the fields ``:Status:``, ``:Requirements:``,
``:Implemented in:`` and ``:Vectors:`` in that order, then ``Overview``. The named paths must
exist, the requirement ranges must name exactly the requirements the chapter defines, and the
vector files must be exactly the ones whose tests cite the chapter's items.
"""

from __future__ import annotations

import re
from collections import defaultdict
from functools import cache
from pathlib import Path

import pytest
from pgkms_conformance import trace

REPO = Path(__file__).resolve().parents[2]
CHAPTERS = sorted((REPO / "spec" / "chapters").glob("*.rst"))
FIELDS = ("Status", "Requirements", "Implemented in", "Vectors")
# Index-like chapters: only the status is required (any other field present is still checked).
INDEX_LIKE = {"changelog", "deviations", "traceability"}
# Chapters that do not open the standard way yet, each with the reason. Shrinks to empty: a
# chapter listed here that opens correctly fails the test below until it is removed.
NOT_YET_SHAPED: dict[str, str] = {}
FIELD_RE = re.compile(r"^:([A-Za-z ]+):(.*)$")
PATH_RE = re.compile(r"``([^`]+)``")
STATUS_RE = re.compile(r"^(draft|pinned|generated at build time), specification version 1$")


def _opening(path: Path) -> tuple[list[str], dict[str, str]]:
    """The opening's lines up to ``Overview`` and its fields (continuation lines joined)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) > 3, f"{path.name}: too short to have an opening"
    title, underline = lines[0], lines[1]
    assert title.strip() and underline == "=" * len(title), (
        f"{path.name}: must start with its title underlined by '=' (no label before it)"
    )
    assert lines[2] == "", f"{path.name}: a blank line must follow the title"
    fields: dict[str, str] = {}
    order: list[str] = []
    at = 3
    while at < len(lines) and lines[at]:
        match = FIELD_RE.match(lines[at])
        if match:
            order.append(match.group(1))
            fields[match.group(1)] = match.group(2).strip()
        else:
            assert lines[at].startswith("   ") and order, f"{path.name}:{at + 1}: not a field"
            fields[order[-1]] += " " + lines[at].strip()
        at += 1
    assert lines[at : at + 3] == ["", "Overview", "--------"], (
        f"{path.name}: the fields must be followed by a blank line and 'Overview'"
    )
    return order, fields


@cache
def _report() -> trace.Report:
    return trace.check(REPO)


def _defined_in(chapter: Path) -> set[str]:
    rel = chapter.relative_to(REPO).as_posix()
    return {d.id for d in _report().definitions if d.path == rel}


def _vector_files_citing(ids: set[str]) -> set[str]:
    return {c.path for c in _report().citations if c.source == "vector" and c.id in ids}


def _shaped() -> list[Path]:
    return [c for c in CHAPTERS if c.stem not in NOT_YET_SHAPED]


def test_every_chapter_is_checked() -> None:
    assert len(CHAPTERS) >= 20
    assert set(NOT_YET_SHAPED) <= {c.stem for c in CHAPTERS}


@pytest.mark.parametrize("chapter", _shaped(), ids=lambda c: c.stem)
def test_chapter_opens_with_the_standard_fields(chapter: Path) -> None:
    order, fields = _opening(chapter)
    if chapter.stem in INDEX_LIKE:
        assert order[:1] == ["Status"], f"{chapter.name}: opens with :Status:"
        assert [f for f in order if f in FIELDS] == [f for f in FIELDS if f in order]
        assert set(order) <= set(FIELDS)
    else:
        assert order == list(FIELDS), f"{chapter.name}: fields {order}, expected {FIELDS}"
    assert STATUS_RE.match(fields["Status"]), f"{chapter.name}: status {fields['Status']!r}"


@pytest.mark.parametrize("chapter", _shaped(), ids=lambda c: c.stem)
def test_named_paths_exist(chapter: Path) -> None:
    _, fields = _opening(chapter)
    for name in ("Implemented in", "Vectors"):
        value = fields.get(name)
        if value is None or value == "none":
            continue
        named = PATH_RE.findall(value)
        assert named, f"{chapter.name}: :{name}: names no path and is not 'none'"
        missing = [p for p in named if not (REPO / p).exists()]
        assert missing == [], f"{chapter.name}: :{name}: no such path {missing}"


@pytest.mark.parametrize("chapter", _shaped(), ids=lambda c: c.stem)
def test_requirements_field_names_exactly_the_chapters_requirements(chapter: Path) -> None:
    _, fields = _opening(chapter)
    defined = {i for i in _defined_in(chapter) if trace.ID_RE.match(i)}
    value = fields["Requirements"]
    if value.startswith("none"):
        assert defined == set(), f"{chapter.name}: says none but defines {sorted(defined)}"
        return
    plain = value.replace(":need:", "").replace("`", "")
    assert set(trace.ids_in_text(plain)) == defined, f"{chapter.name}: :Requirements: {value!r}"


@pytest.mark.parametrize("chapter", _shaped(), ids=lambda c: c.stem)
def test_vectors_field_names_exactly_the_files_citing_the_chapter(chapter: Path) -> None:
    _, fields = _opening(chapter)
    value = fields.get("Vectors")
    defined = _defined_in(chapter)
    if value is None or not defined:
        return  # index-like chapter without the field, or a chapter that defines nothing
    if PATH_RE.findall(value) == ["vectors/"]:
        return  # the chapter about the vector files themselves
    named = set(PATH_RE.findall(value))
    assert named == _vector_files_citing(defined), f"{chapter.name}: :Vectors: {value!r}"


def test_allow_list_only_holds_chapters_still_unshaped() -> None:
    for stem in sorted(NOT_YET_SHAPED):
        try:
            order, _ = _opening(REPO / "spec" / "chapters" / f"{stem}.rst")
        except AssertionError:
            continue
        assert order != list(FIELDS), f"{stem} opens correctly now: remove it from NOT_YET_SHAPED"


def test_vector_files_each_cite_some_chapter() -> None:
    by_file: dict[str, set[str]] = defaultdict(set)
    for c in _report().citations:
        if c.source == "vector":
            by_file[c.path].add(c.id)
    named: set[str] = set()
    for chapter in _shaped():
        _, fields = _opening(chapter)
        named.update(PATH_RE.findall(fields.get("Vectors", "")))
    assert set(by_file) <= named
