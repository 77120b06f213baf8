"""Keeping secrets out of everything the harness prints or writes (except explicit replay files).

Two tools. ``describe`` turns bytes into what a report may show: a length and a SHA-256 prefix,
enough to tell two values apart and to match them against a replay file, useless to an attacker.
``Redactor`` remembers every secret-bearing value the harness sent to or received from the IUT
and scrubs them, as hex, base64 or raw text, from any text that came back from the IUT (error
messages, stderr): a broken IUT may echo its input, and the report must not carry it on.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from typing import Any

# Values this short are not worth hiding (and would scrub innocent text such as "0000").
_MIN_SECRET_LEN = 6
_HEXCHARS = frozenset("0123456789abcdef")


def describe(value: bytes) -> str:
    """A report-safe description of bytes: ``'18 bytes, sha256 3f2a9c1e'``."""
    return f"{len(value)} bytes, sha256 {hashlib.sha256(value).hexdigest()[:8]}"


def describe_hex(value: str) -> str:
    """``describe`` for a hex string as the protocol carries it (non-hex text is only measured)."""
    try:
        return describe(bytes.fromhex(value))
    except ValueError:
        return f"a non-hex string of {len(value)} characters"


# Result fields that are never secret: shown as they are.
PLAIN_FIELDS = frozenset({"decision", "key_id", "protocol", "implementation", "version"})


def describe_field(name: str, value: Any) -> str:
    return repr(value) if name in PLAIN_FIELDS else describe_json(value)


def describe_json(value: Any) -> str:
    """Describe a result field: hex strings as bytes, lists element-wise, other scalars as is."""
    if isinstance(value, str) and len(value) % 2 == 0 and set(value) <= _HEXCHARS and value:
        return describe_hex(value)
    if isinstance(value, list):
        return "[" + ", ".join(describe_json(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {describe_json(v)}" for k, v in sorted(value.items())) + "}"
    if isinstance(value, str):
        return f"a string of {len(value)} characters"
    return repr(value)


def secret_forms(secret: bytes) -> list[str]:
    """The ways a secret can show up in text."""
    forms = [secret.hex(), secret.hex().upper()]
    b64 = base64.b64encode(secret).decode()
    forms += [b64, b64.rstrip("="), base64.urlsafe_b64encode(secret).decode().rstrip("=")]
    for encoding in ("utf-8", "latin-1"):
        try:
            text = secret.decode(encoding)
        except UnicodeDecodeError:
            continue
        if text.strip():
            forms += [text, text.strip(), repr(text)[1:-1], repr(secret)[2:-1]]
    return [f for f in dict.fromkeys(forms) if len(f) >= _MIN_SECRET_LEN]


class Redactor:
    """Collects secrets; ``scrub`` removes every known form of every one from a text."""

    def __init__(self) -> None:
        self._forms: dict[str, int] = {}  # form -> length of the secret, for the placeholder

    def add(self, secret: bytes) -> None:
        if len(secret) < _MIN_SECRET_LEN:
            return
        for form in secret_forms(secret):
            self._forms.setdefault(form, len(secret))

    def add_hex(self, value: str) -> None:
        try:
            self.add(bytes.fromhex(value))
        except ValueError:
            return

    def add_json(self, value: Any) -> None:
        """Register every hex string inside a request or result (fields, lists, listings)."""
        if isinstance(value, str):
            if len(value) % 2 == 0 and set(value) <= _HEXCHARS:
                self.add_hex(value)
        elif isinstance(value, dict):
            for item in value.values():
                self.add_json(item)
        elif isinstance(value, list):
            for item in value:
                self.add_json(item)

    def scrub(self, text: str) -> str:
        if not text:
            return text
        # Longest forms first, so a secret's hex is replaced whole before any shorter secret
        # that happens to be inside it.
        for form in sorted((f for f in self._forms if f in text), key=len, reverse=True):
            text = text.replace(form, f"<redacted {self._forms[form]}-byte secret>")
        return text

    def scrub_all(self, texts: Iterable[str]) -> tuple[str, ...]:
        return tuple(self.scrub(t) for t in texts)

    def __len__(self) -> int:
        return len(self._forms)
