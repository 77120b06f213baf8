"""Shared helpers for the harness tests: fake IUTs, isolated temp dirs, process checks."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from pgkms_conformance.bundled import BUNDLED

FAKE = Path(__file__).parent / "fakes" / "bad_adapter.py"
REFERENCE = BUNDLED["reference"]


def fake(mode: str, budget: int = 0) -> list[str]:
    return [sys.executable, str(FAKE), mode, str(budget)]


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie awaiting its reaper counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def drbg_bytes(label: str, n: int) -> bytes:
    """Deterministic test bytes (SHAKE-256 of a label): random-looking, the same every run."""
    return hashlib.shake_256(f"pgkms-tests/{label}".encode()).digest(n)
