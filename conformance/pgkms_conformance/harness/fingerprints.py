"""A fixed-size memory of every secret of a run, for finding them again in text (ERR_02).

Keeping every form of every secret costs memory in proportion to ``--examples``. This keeps
fingerprints instead, in a Bloom filter of ``BLOOM_BITS`` bits whatever the run's length: for
each secret, a hash of its first ``W`` bytes (``W`` the largest of ``WINDOWS`` not over its
length), and, for its raw-text forms, of the first bytes of each of its lines. A secret that
appears whole in a text, in any form ``redact.secret_forms`` names, starts at some position of
one of the byte *views* of a line of that text; ``withhold`` hashes every window of every view
and withholds each line where one is (probably) a fingerprint:

* the line's UTF-8 and Latin-1 bytes (the secret as raw text; the secret's own lines are
  fingerprinted separately, since a raw secret can span lines);
* the line with Python string and bytes escapes undone (``repr`` forms);
* each run of hex digits decoded at both nibble offsets, and each run of base64 characters
  (standard or URL-safe, padded or not) decoded at each of four offsets.

A Bloom filter answers "maybe" for some strings never added, never "no" for one that was: a
false match withholds an innocent line, nothing lets a secret through. A 1,000-example run
inserts about 40,000 distinct prefixes; even at 200,000 the chance that a window passes both
the pre-filter and the filter by accident is under 10^-12.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re

# Values this short are not worth hiding (and would scrub innocent text such as "0000").
MIN_SECRET_LEN = 6
WINDOWS = (6, 12, 24)  # fingerprinted prefix lengths; longer prefixes match innocent text less
BLOOM_BITS = 1 << 27  # 16 MiB
BLOOM_HASHES = 6
QUICK_BITS = 1 << 24  # 2 MiB
WITHHELD = "<line withheld: it carries a secret the harness sent or received>"

_HEX_RUN = re.compile(rf"[0-9a-fA-F]{{{2 * MIN_SECRET_LEN},}}")
_B64_RUN = re.compile(rf"[A-Za-z0-9+/\-_]{{{4 * MIN_SECRET_LEN // 3},}}")
_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|.)", re.DOTALL)
_SIMPLE = {"n": "\n", "r": "\r", "t": "\t", "a": "\a", "b": "\b", "f": "\f", "v": "\v", "0": "\0"}
_URLSAFE = bytes.maketrans(b"-_", b"+/")


def window_of(length: int) -> int:
    return max(w for w in WINDOWS if w <= length)


class Fingerprints:
    """The Bloom filter and the two operations on it: ``add`` a secret, ``withhold`` lines."""

    def __init__(self, bits: int = BLOOM_BITS, hashes: int = BLOOM_HASHES) -> None:
        self._bits = bits
        self._hashes = hashes
        self._filter = bytearray(bits // 8)
        # A one-hash pre-filter on Python's own (per-process) string hash: about thirty times
        # cheaper than blake2b, it rules out nearly every window before the real filter, whose
        # deterministic hash decides, so a report does not depend on the process's hash seed.
        self._quick = bytearray(QUICK_BITS // 8)
        self._windows: set[int] = set()  # the prefix lengths used so far (scan only those)

    # -- the filter ------------------------------------------------------------------------------
    def _indexes(self, window: bytes) -> list[int]:
        digest = hashlib.blake2b(window, digest_size=16).digest()
        h1 = int.from_bytes(digest[:8], "little")
        h2 = int.from_bytes(digest[8:], "little") | 1
        return [(h1 + i * h2) % self._bits for i in range(self._hashes)]

    def _insert(self, prefix: bytes) -> None:
        self._windows.add(len(prefix))
        for i in self._indexes(prefix):
            self._filter[i >> 3] |= 1 << (i & 7)
        q = hash(prefix) & (QUICK_BITS - 1)
        self._quick[q >> 3] |= 1 << (q & 7)

    def _contains(self, window: bytes) -> bool:
        return all(self._filter[i >> 3] & (1 << (i & 7)) for i in self._indexes(window))

    # -- secrets ---------------------------------------------------------------------------------
    def add(self, secret: bytes) -> None:
        """Fingerprint ``secret``: its leading bytes, and those of each line of its raw text
        (each distinct prefix once: usually all of these are the same bytes, and a filter that
        fills less answers "maybe" less often)."""
        pieces = {secret}
        for encoding in ("utf-8", "latin-1"):
            try:
                text = secret.decode(encoding)
            except UnicodeDecodeError:
                continue
            for variant in (text, text.strip()):
                for line in variant.split("\n"):
                    pieces |= {line.encode(encoding), line.strip().encode(encoding)}
        prefixes = {p[: window_of(len(p))] for p in pieces if len(p) >= MIN_SECRET_LEN}
        for prefix in prefixes:
            self._insert(prefix)

    # -- texts -----------------------------------------------------------------------------------
    def withhold(self, text: str) -> str:
        """``text`` with every line that carries a fingerprinted secret replaced by WITHHELD."""
        if not self._windows or len(text) < MIN_SECRET_LEN:
            return text
        lines = text.split("\n")
        changed = False
        for n, line in enumerate(lines):
            if len(line) >= MIN_SECRET_LEN and any(self._hit(v) for v in _views(line)):
                lines[n] = WITHHELD
                changed = True
        return "\n".join(lines) if changed else text

    def _hit(self, view: bytes) -> bool:
        quick, mask = self._quick, QUICK_BITS - 1
        for w in self._windows:
            for j in range(len(view) - w + 1):
                window = view[j : j + w]
                q = hash(window) & mask
                if quick[q >> 3] & (1 << (q & 7)) and self._contains(window):
                    return True
        return False


def _views(line: str) -> list[bytes]:
    """Every byte string a secret written into ``line`` could be found in (module doc)."""
    views = _encodings(line)
    if "\\" in line:
        views += _encodings(_unescape(line))
    for match in _HEX_RUN.finditer(line):
        run = match.group()
        for offset in (0, 1):
            digits = run[offset:]
            views.append(bytes.fromhex(digits[: len(digits) // 2 * 2]))
    for match in _B64_RUN.finditer(line):
        b64 = match.group().encode().translate(_URLSAFE)
        for offset in range(4):
            views.append(_b64(b64[offset:]))
    return views


def _encodings(text: str) -> list[bytes]:
    utf8 = text.encode("utf-8", "surrogatepass")
    if text.isascii():
        return [utf8]
    return [utf8, text.encode("latin-1", "replace")]


def _b64(run: bytes) -> bytes:
    usable = len(run) // 4 * 4 + (len(run) % 4 if len(run) % 4 > 1 else 0)
    chunk = run[:usable]
    try:
        return base64.b64decode(chunk + b"=" * (-len(chunk) % 4))
    except (binascii.Error, ValueError):
        return b""


def _unescape(text: str) -> str:
    """Undo the escapes ``repr`` writes for a str or a bytes object (unknown ones kept)."""

    def replace(match: re.Match[str]) -> str:
        code = match.group(1)
        if code[0] in "xuU" and len(code) > 1:
            value = int(code[1:], 16)
            return chr(value) if value <= 0x10FFFF else match.group()
        return _SIMPLE.get(code, code if code in "\\'\"" else match.group())

    return _ESCAPE.sub(replace, text)
