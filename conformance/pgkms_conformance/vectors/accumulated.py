"""Accumulated wrap vectors: many deterministic cases checked against one published digest.

Case ``i`` (0 <= i < count) of an ``accumulated_wrap`` test with label ``L`` and maximum
plaintext length ``M`` is, with ``D`` the vectors' byte source (``drbg``):

    enc_key   = D("L/i/enc_key", 32)
    mac_key   = D("L/i/mac_key", 32)
    iv        = D("L/i/iv", 16)
    n         = uint16-little-endian(D("L/i/length", 2)) mod (M + 1)
    plaintext = D("L/i/plaintext", n)
    wrapped_i = wrap(enc_key, mac_key, plaintext) with that iv   (WRAP_01..WRAP_04)

where ``i`` is written in decimal. The expected ``digest`` is SHA-256 over
``wrapped_0 || wrapped_1 || ... || wrapped_{count-1}`` (each wrapped value's length follows from
its plaintext's, so the concatenation is unambiguous). A runner expands the test into ``count``
``wrap`` requests with injected IVs; any implementation can check a million cases against one
hash (``pgkms-conformance vectors generate --accumulated 1000000`` publishes it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

from pgkms.kdf import WrapKeys
from pgkms.randomness import ScriptedRandom
from pgkms.secret import Secret
from pgkms.wrap import wrap

from pgkms_conformance.vectors import drbg

DEFAULT_COUNT = 10_000
LABEL = "accumulated"
MAX_PLAINTEXT_LEN = 128


@dataclass(frozen=True, repr=False)
class Case:
    enc_key: bytes
    mac_key: bytes
    iv: bytes
    plaintext: bytes

    def __repr__(self) -> str:
        return f"<Case: {len(self.plaintext)}-byte plaintext>"

    def request(self) -> dict[str, str]:
        """The ``wrap`` request parameters of this case."""
        return {
            "enc_key": self.enc_key.hex(),
            "mac_key": self.mac_key.hex(),
            "plaintext": self.plaintext.hex(),
            "iv": self.iv.hex(),
        }


def case(label: str, i: int, max_len: int) -> Case:
    """Case ``i`` as the module docstring defines it."""
    n = int.from_bytes(drbg.derive(f"{label}/{i}/length", 2), "little") % (max_len + 1)
    return Case(
        enc_key=drbg.derive(f"{label}/{i}/enc_key", 32),
        mac_key=drbg.derive(f"{label}/{i}/mac_key", 32),
        iv=drbg.derive(f"{label}/{i}/iv", 16),
        plaintext=drbg.derive(f"{label}/{i}/plaintext", n),
    )


def cases(label: str, count: int, max_len: int) -> Iterator[Case]:
    for i in range(count):
        yield case(label, i, max_len)


def reference_digest(label: str, count: int, max_len: int) -> str:
    """The expected digest, computed with the reference's ``wrap``."""
    h = hashlib.sha256()
    for c in cases(label, count, max_len):
        keys = WrapKeys(enc=Secret(c.enc_key), mac=Secret(c.mac_key))
        h.update(wrap(keys, Secret(c.plaintext), ScriptedRandom([c.iv])))
    return h.hexdigest()
