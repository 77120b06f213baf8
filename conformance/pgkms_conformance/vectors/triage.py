"""Triage of vector flags: every flag names a bug type and the effect of failing it (VEC_04).

As in Wycheproof, a flag's note says what the case is (``description``), which kind of bug an
implementation that fails it has (``bugType``) and what that implementation would do wrong
(``effect``, one line). The bug types are ranked: a report lists the failures of the most severe
type first, so an implementer knows which to fix first. A test without flags is a plain
known-answer case; its failure is ``BASIC``.

A vector file brought from elsewhere may add flags of its own ("free notes"): their note needs a
``description``; ``bugType`` (any UPPER_SNAKE name; an unknown one ranks after the known ones)
and ``effect`` are optional there, required for the project's own flags.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

# Bug type -> what it means, most severe first.
BUG_TYPES: Final[dict[str, str]] = {
    "AUTH_BYPASS": "an integrity or authentication check is skipped: tampered, truncated or "
    "wrong-key input is accepted",
    "KEY_LOSS": "the internal keys, or other files of the cluster, are lost, replaced or "
    "silently changed: the cluster's data can no longer be read, or is read with the wrong keys",
    "CONFIDENTIALITY": "a secret (passphrase, key, plaintext) reaches a message, a log or "
    "another process",
    "MALLEABILITY": "a modified input is accepted and yields a different result the caller "
    "cannot tell from the original",
    "BASIC": "the operation computes a wrong result on ordinary input: no interoperability",
    "KNOWN_2020_DEFECT": "the 2020 patch behaved this way and the specification corrects it "
    "(a DEV_* deviation): failing it repeats the 2020 defect",
    "LEGACY": "input that the 2020 patch wrote or accepted, weaknesses of its format included: "
    "failing it breaks compatibility with existing clusters",
    "EDGE_CASE": "a boundary value (a length at a limit, an empty or unusual byte string)",
}
DEFAULT_BUG_TYPE: Final = "BASIC"  # what a failing test without flags is
UNTRIAGED: Final = "UNTRIAGED"  # a test whose (free) flags name no bug type
BUG_TYPE_PATTERN: Final = "^[A-Z][A-Z0-9_]*$"
# The flag names a vector file may use (UPPER_SNAKE, or CamelCase as crash_recovery's).
FLAG_PATTERN: Final = "^[A-Za-z][A-Za-z0-9_]*$"

Note = dict[str, str]


class TriageError(ValueError):
    """A flag note without a known bug type, or without its description or effect."""


def note(bug_type: str, effect: str, description: str) -> Note:
    """One flag's note as a vector file carries it."""
    if bug_type not in BUG_TYPES:
        raise TriageError(f"bug type {bug_type!r} is not one of {', '.join(BUG_TYPES)}")
    if not effect.strip() or not description.strip():
        raise TriageError(f"a {bug_type} note needs a description and an effect")
    if "\n" in effect:
        raise TriageError(f"the effect of a {bug_type} note must be one line")
    return {"bugType": bug_type, "description": description, "effect": effect}


def severity(bug_type: str) -> int:
    """The rank of a bug type: 0 is the most severe; unknown types rank after every known one."""
    order = list(BUG_TYPES)
    return order.index(bug_type) if bug_type in order else len(order)


def bug_types_of(flags: Iterable[str], notes: dict[str, Any]) -> tuple[str, ...]:
    """The bug types of a test's flags, most severe first: ``BASIC`` for a test without flags,
    ``UNTRIAGED`` for one whose flags (free notes of a file from elsewhere) name none."""
    flags = list(flags)
    if not flags:
        return (DEFAULT_BUG_TYPE,)
    found: set[str] = set()
    for flag in flags:
        entry = notes.get(flag)
        if isinstance(entry, dict) and isinstance(entry.get("bugType"), str):
            found.add(entry["bugType"])
    if not found:
        return (UNTRIAGED,)
    return tuple(sorted(found, key=lambda b: (severity(b), b)))
