"""Keeping secrets out of everything the harness prints or writes (except explicit replay files).

Two tools. ``describe`` turns bytes into what a report may show: a length and a SHA-256 prefix,
enough to tell two values apart and to match them against a replay file, useless to an attacker.
``Redactor`` remembers every secret-bearing value the harness sent to or received from the IUT
and scrubs them, as hex, base64 or raw text, from any text that came back from the IUT (error
messages, stderr): a broken IUT may echo its input, and the report must not carry it on.

Its memory is bounded whatever ``--examples`` is (``Redactor`` says how): the exact forms of the
most recent secrets, up to ``RECENT_FORM_BYTES``, replaced by a placeholder naming the length;
and, for every secret ever registered, fingerprints in a Bloom filter of fixed size
(``fingerprints``), which withholds a whole line that carries any older one. Registering a
secret only queues it (bounded too, ``PENDING_BYTES``); the first text to scrub takes the queue
apart into the two tiers, with the outcome of taking each secret apart as it came.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from pgkms_conformance.harness.fingerprints import MIN_SECRET_LEN, Fingerprints

_MIN_SECRET_LEN = MIN_SECRET_LEN
# The exact forms kept for placeholders, in bytes of memory (a form's characters plus
# ``_FORM_OVERHEAD`` for the string object and its dict slot): the forms of about ten thousand
# typical secrets, or all ten forms of one 500 KiB secret (the largest vector value is 64 KiB).
RECENT_FORM_BYTES = 8 * 1024 * 1024
_FORM_OVERHEAD = 150
# Registered values held before they are taken apart (``Redactor``): a default run registers
# about 2 MiB, and most of it (the vectors' inputs) is held by the run anyway.
PENDING_BYTES = 16 * 1024 * 1024
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
    # The empty string too: in a result it is 0 bytes, said as every other length is said.
    if isinstance(value, str) and len(value) % 2 == 0 and set(value) <= _HEXCHARS:
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


def _held_bytes(secret: bytes, forms: list[str]) -> int:
    return len(secret) + sum(len(f) for f in forms) + _FORM_OVERHEAD * (1 + len(forms))


class Redactor:
    """Collects secrets; ``scrub`` removes every known form of every one from a text.

    Two tiers, so that memory stays bounded and no secret gets through (ERR_02):

    * the exact forms (``secret_forms``) of the most recent secrets, least recently registered
      forgotten first once they exceed ``RECENT_FORM_BYTES``: these are replaced in place by
      ``<redacted N-byte secret>``, so a message stays readable. A case's own secrets are
      registered as it runs, so they are here when its messages are scrubbed;
    * fingerprints of every secret ever registered (``Fingerprints``: a fixed-size Bloom filter
      of each secret's leading bytes, in every form a text can carry). A line of text that still
      carries one, an IUT echoing a value of an earlier case, say, is withheld whole. A false
      match withholds an innocent line (at the filter's fill after 5,000 examples, well under
      one line in a million); it never lets a secret through.
    """

    def __init__(
        self, recent_bytes: int = RECENT_FORM_BYTES, pending_bytes: int = PENDING_BYTES
    ) -> None:
        self._recent: OrderedDict[str, int] = OrderedDict()  # form -> the secret's length
        self._recent_bytes = 0
        self._recent_limit = recent_bytes
        self._fingerprints = Fingerprints()
        # The forms of the secrets registered lately, so that one registered again (a run sends
        # the same keys many times: most registrations are repeats) costs neither its forms nor
        # its fingerprints (already in the filter) again. Bounded as the exact tier is.
        self._forms_of: OrderedDict[bytes, list[str]] = OrderedDict()
        self._forms_of_bytes = 0
        # Values registered and not yet taken apart into the tiers: as given (bytes) or as the
        # request or result carried them (str, hex-ness still to be checked), in order. Taking
        # a secret apart was a tenth of a default run's harness CPU, and a passing run scrubs
        # no text at all, so the work waits for the first text that needs it (``_settle``),
        # or for the pending values to reach ``pending_bytes``. The outcome is the same as
        # taking each value apart as it comes. Threads of the safety stage register at once.
        self._pending: list[bytes | str] = []
        self._pending_bytes = 0
        self._pending_limit = pending_bytes
        self._guard = threading.Lock()

    def add(self, secret: bytes) -> None:
        if len(secret) >= _MIN_SECRET_LEN:
            self._defer(secret)

    def add_hex(self, value: str) -> None:
        try:
            self.add(bytes.fromhex(value))
        except ValueError:
            return

    def add_json(self, value: Any) -> None:
        """Register every hex string inside a request or result (fields, lists, listings)."""
        if isinstance(value, str):
            if len(value) >= 2 * _MIN_SECRET_LEN:
                self._defer(value)  # a hex string, or skipped when settled
        elif isinstance(value, dict):
            for item in value.values():
                self.add_json(item)
        elif isinstance(value, list):
            for item in value:
                self.add_json(item)

    def _defer(self, value: bytes | str) -> None:
        with self._guard:
            self._pending.append(value)
            self._pending_bytes += len(value) + _FORM_OVERHEAD
            if self._pending_bytes > self._pending_limit:
                self._settle()

    def _settle(self) -> None:
        """Take every pending value apart, in the order registered (call with ``_guard``)."""
        pending, self._pending, self._pending_bytes = self._pending, [], 0
        for value in pending:
            if isinstance(value, bytes):
                self._take_apart(value)
            elif len(value) % 2 == 0 and set(value) <= _HEXCHARS:
                self._take_apart(bytes.fromhex(value))

    def _take_apart(self, secret: bytes) -> None:
        """Put ``secret``'s forms in the exact tier (most recent last), the oldest forgotten."""
        for form in self._forms(secret):
            if form in self._recent:
                self._recent.move_to_end(form)
                continue
            self._recent[form] = len(secret)
            self._recent_bytes += len(form) + _FORM_OVERHEAD
        while self._recent_bytes > self._recent_limit and len(self._recent) > 1:
            form, _ = self._recent.popitem(last=False)
            self._recent_bytes -= len(form) + _FORM_OVERHEAD

    def _forms(self, secret: bytes) -> list[str]:
        """``secret_forms(secret)``, fingerprinting a secret the first time it is seen lately."""
        forms = self._forms_of.get(secret)
        if forms is not None:
            self._forms_of.move_to_end(secret)
            return forms
        self._fingerprints.add(secret)
        forms = secret_forms(secret)
        self._forms_of[secret] = forms
        self._forms_of_bytes += _held_bytes(secret, forms)
        while self._forms_of_bytes > self._recent_limit and len(self._forms_of) > 1:
            old, old_forms = self._forms_of.popitem(last=False)
            self._forms_of_bytes -= _held_bytes(old, old_forms)
        return forms

    def scrub(self, text: str) -> str:
        if not text:
            return text
        with self._guard:  # the tiers stay still while they are read (threads register)
            self._settle()
            # Longest forms first, so a secret's hex is replaced whole before any shorter
            # secret that happens to be inside it.
            for form in sorted((f for f in self._recent if f in text), key=len, reverse=True):
                text = text.replace(form, f"<redacted {self._recent[form]}-byte secret>")
            return self._fingerprints.withhold(text)

    def scrub_all(self, texts: Iterable[str]) -> tuple[str, ...]:
        return tuple(self.scrub(t) for t in texts)

    def __len__(self) -> int:
        """The number of exact forms held (bounded by ``RECENT_FORM_BYTES``)."""
        with self._guard:
            self._settle()
        return len(self._recent)
