"""The bundled implementations, by the names ``--impl`` accepts."""

from __future__ import annotations

import shlex
import sys

# -P: the current directory is not put on sys.path, so a folder named pgkms (or
# pgkms_independent) where the harness is run cannot shadow the installed package.
BUNDLED: dict[str, list[str]] = {
    "reference": [sys.executable, "-P", "-m", "pgkms.adapter"],
    "independent": [sys.executable, "-P", "-m", "pgkms_independent.adapter"],
}


def adapter_command(impl: str) -> list[str]:
    """``reference`` / ``independent`` name a bundled adapter; anything else is a shell-style
    command line (split with shlex, not run through a shell)."""
    return list(BUNDLED[impl]) if impl in BUNDLED else shlex.split(impl)
