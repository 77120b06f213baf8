"""Key derivation: cluster passphrase -> KEK encryption key and KEK HMAC key.

Chapter ``spec/chapters/key-derivation.rst``: KDF_01.

The 2020 design hashes the passphrase once with SHA-512, with no salt and no iterations. That is
a weakness of the format (spec: Security considerations, SEC_KDF) which a compatible
implementation cannot fix: the patch could not open keys wrapped under any other derivation.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from pgkms.layout import ENC_KEY_LEN, KEK_DIGEST_LEN
from pgkms.secret import Secret


@dataclass(frozen=True, repr=False)
class WrapKeys:
    """An (encryption key, HMAC key) pair: the KEK, or the halves of an internal key."""

    enc: Secret
    mac: Secret

    def __repr__(self) -> str:
        return "<WrapKeys: redacted>"


def derive_kek(passphrase: Secret) -> WrapKeys:
    """KDF_01: ``D = SHA-512(passphrase)``; KEK encryption key ``D[:32]``, HMAC key ``D[32:]``."""
    # hashlib (OpenSSL's SHA-512, as in ``cryptography``): a third of the cost of setting up a
    # ``cryptography`` hash object, which was the largest part of a ``derive_kek`` request.
    d = hashlib.sha512(passphrase.reveal()).digest()
    assert len(d) == KEK_DIGEST_LEN
    return WrapKeys(enc=Secret(d[:ENC_KEY_LEN]), mac=Secret(d[ENC_KEY_LEN:]))


def split_internal_key(key: Secret) -> WrapKeys:
    """KEY_01: an internal key is its 32-byte AES key followed by its 32-byte HMAC key."""
    raw = key.reveal()
    return WrapKeys(enc=Secret(raw[:ENC_KEY_LEN]), mac=Secret(raw[ENC_KEY_LEN:]))
