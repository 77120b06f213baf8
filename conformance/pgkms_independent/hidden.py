"""``Hidden``: secret bytes that never show themselves.

Passphrases, KEKs, internal keys and plaintexts are passed around in ``Hidden`` so that a repr,
a log line, an assertion message or a traceback shows a length at most. ``expose()`` is the only
way in, and it is easy to grep for.
"""

from __future__ import annotations

import hmac


class Hidden:
    __slots__ = ("_data",)

    def __init__(self, data: bytes) -> None:
        self._data = bytes(data)

    def expose(self) -> bytes:
        return self._data

    @property
    def size(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"Hidden(<{len(self._data)} bytes>)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Hidden):
            return NotImplemented
        return hmac.compare_digest(self._data, other._data)

    __hash__ = None  # type: ignore[assignment]  # secrets are not dictionary keys
