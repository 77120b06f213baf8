"""Test material the toolkit builds itself: seeded bytes, and wrapped values the reference's
``wrap`` can never produce.

``derive(label, n)`` is the deterministic byte source of every vector and of the crash
explorer's scenario (VEC_03):

    D(label, n) = SHAKE-128(b"pgkms-vectors/v1/" || UTF-8(label)), first n bytes

``label`` is a short ASCII path naming the value (``wrap/length-17/iv``, ``crash/key-0``); the
same label always gives the same bytes, so regeneration is byte-identical on every machine.

``unpadded_wrap`` builds ``HMAC-SHA256(mac, C) || IV || C`` around block-aligned bytes with no
padding added (WRAP_01, WRAP_04): a value whose HMAC is valid but whose padding need not be, so
vectors and harness can check that unwrap verifies padding strictly (WRAP_08).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Final

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

SEED: Final = b"pgkms-vectors/v1/"
BLOCK: Final = 16


def derive(label: str, n: int) -> bytes:
    """``D(label, n)``: the first ``n`` bytes of SHAKE-128 over the seed and the label."""
    if n < 0:
        raise ValueError(f"derive: byte count must be >= 0, found {n}")
    return hashlib.shake_128(SEED + label.encode("utf-8")).digest(n)


def unpadded_wrap(enc: bytes, mac: bytes, iv: bytes, blocks: bytes) -> bytes:
    """HMAC-SHA256(mac, C) || IV || C with C = AES-256-CBC(enc, IV, blocks), padding NOT added;
    ``blocks`` must be whole AES blocks."""
    if len(blocks) % BLOCK:
        raise ValueError(f"unpadded_wrap: expected whole {BLOCK}-byte blocks, found {len(blocks)}")
    encryptor = Cipher(algorithms.AES(enc), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(blocks) + encryptor.finalize()
    return hmac.new(mac, ciphertext, hashlib.sha256).digest() + iv + ciphertext
