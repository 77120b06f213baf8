"""A bytes holder whose repr and str never show the value.

Chapter ``spec/chapters/security.rst``, section "Secrets and randomness": SEC_DIAGNOSTICS.

Keys, passphrases and plaintexts travel inside ``Secret`` so that a stray ``print``, log line,
assertion message or traceback shows only the length (spec: Security considerations,
SEC_DIAGNOSTICS).
"""

from __future__ import annotations

import hmac


class Secret:
    """Opaque secret bytes. ``reveal()`` is the only way to the value, and is greppable."""

    __slots__ = ("_value",)

    def __init__(self, value: bytes | bytearray | memoryview) -> None:
        # Always an immutable copy (free for ``bytes``): a caller's buffer may change later.
        self._value = bytes(value)

    def reveal(self) -> bytes:
        return self._value

    def __len__(self) -> int:
        return len(self._value)

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {len(self._value)} bytes>"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        raise TypeError("secrets are not hashable")
