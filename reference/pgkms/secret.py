"""A bytes holder whose repr and str never show the value.

Chapter ``spec/chapters/security.rst``, section "Secrets and randomness": SEC_DIAGNOSTICS.

Keys, passphrases and plaintexts travel inside ``Secret`` so that a stray ``print``, log line,
assertion message or traceback shows only the length (spec: Security considerations,
SEC_DIAGNOSTICS).
"""

from __future__ import annotations

import hmac


class Secret:
    """Opaque secret bytes. ``reveal()`` is the only way to the value, and is greppable.

    ``view()`` is the same value without a copy, read-only, for a caller that only reads it
    once (hex-encodes or writes out a large unwrapped secret).
    """

    __slots__ = ("_value",)

    def __init__(self, value: bytes | bytearray | memoryview) -> None:
        # Always an immutable copy (free for ``bytes``): a caller's buffer may change later.
        self._value: bytes | bytearray = bytes(value)

    @classmethod
    def adopt(cls, buffer: bytearray) -> Secret:
        """A secret that owns ``buffer`` instead of copying it; the caller hands it over and
        keeps no reference. For a large unwrap, which decrypts into a buffer of its own: the
        copy into ``bytes`` was a tenth of a 1 MiB unwrap's time."""
        secret = cls.__new__(cls)
        secret._value = buffer
        return secret

    def reveal(self) -> bytes:
        if isinstance(self._value, bytearray):
            # An adopted buffer becomes bytes on first use; two threads racing here make equal
            # copies, and the buffer lives on only while a ``view()`` of it does.
            self._value = bytes(self._value)
        return self._value

    def view(self) -> memoryview:
        return memoryview(self._value).toreadonly()

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
