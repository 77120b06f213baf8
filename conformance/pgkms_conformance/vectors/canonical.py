"""Canonical bytes of a vector file, and the stable id of a test (VEC_02).

File form: ``json.dumps(document, indent=2, ensure_ascii=True)`` followed by one newline, keys
in the order the generator builds them (the envelope first, then the tests), so a reader meets
the header before the data. Every value in a document is a string, an integer, a list or an
object, so this form is the same on every Python version and platform.

Test id: the first 16 hex digits of SHA-256 over the compact, key-sorted JSON of
``{"input": ..., "op": ...}``. It changes exactly when what the test asks changes, so a report
can name a test by an id that survives reordering and renumbering.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def dumps(document: Any) -> str:
    """The canonical text of a vector file (or schema)."""
    return json.dumps(document, indent=2, ensure_ascii=True) + "\n"


def vector_id(op: str, params: dict[str, Any]) -> str:
    """16 hex digits identifying ``op`` applied to ``params``."""
    compact = json.dumps(
        {"input": params, "op": op}, sort_keys=True, separators=(",", ":"), ensure_ascii=True
    )
    return hashlib.sha256(compact.encode("ascii")).hexdigest()[:16]
