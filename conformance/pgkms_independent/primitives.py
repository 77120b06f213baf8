"""The cryptography of the design, on pycryptodome.

- ``derive``: KDF_01, one SHA-512 of the passphrase, split into an AES key and an HMAC key;
- ``seal``: WRAP_01..WRAP_04, ``HMAC-SHA256(mac, C) || IV || C``, C = AES-256-CBC(PKCS#7(P));
- ``open_sealed``: WRAP_05..WRAP_08 in the spec's order; the tag is verified (constant time)
  before anything is decrypted.
"""

from __future__ import annotations

from dataclasses import dataclass

from Crypto.Cipher import AES
from Crypto.Hash import HMAC, SHA256, SHA512
from Crypto.Util.Padding import pad, unpad

from pgkms_independent.codec import BLOCK, HALF_KEY, INTERNAL_KEY_SIZE, IV_SIZE, split_wrapped
from pgkms_independent.failures import Code, FormatFailure
from pgkms_independent.hidden import Hidden


@dataclass(frozen=True, repr=False)
class KeyPair:
    """An AES-256 key and an HMAC-SHA256 key: the KEK, or the halves of an internal key."""

    cipher_key: Hidden
    mac_key: Hidden

    def __repr__(self) -> str:
        return "KeyPair(<hidden>)"

    @classmethod
    def from_internal_key(cls, key: Hidden) -> KeyPair:
        """KEY_01, SQL_01: an internal key is ``AES key (32) || HMAC key (32)``."""
        raw = key.expose()
        if len(raw) != INTERNAL_KEY_SIZE:
            raise FormatFailure(
                Code.KEY_LENGTH_INVALID,
                f"internal key: {len(raw)} bytes, expected {INTERNAL_KEY_SIZE}",
            )
        return cls(Hidden(raw[:HALF_KEY]), Hidden(raw[HALF_KEY:]))


def derive(passphrase: Hidden) -> KeyPair:
    """KDF_01: D = SHA-512(passphrase); AES key D[0:32], HMAC key D[32:64]; no salt, no rounds."""
    digest = SHA512.new(passphrase.expose()).digest()
    return KeyPair(Hidden(digest[:HALF_KEY]), Hidden(digest[HALF_KEY:]))


def _tag(mac_key: Hidden, ciphertext: bytes) -> HMAC.HMAC:
    # WRAP_04: over the ciphertext alone; the IV is not authenticated (2020 format, SEC_IV).
    return HMAC.new(mac_key.expose(), ciphertext, digestmod=SHA256)


def seal(keys: KeyPair, plaintext: Hidden, iv: bytes) -> bytes:
    """WRAP_01..WRAP_04 with the given IV (the caller draws it from a CSPRNG, WRAP_03)."""
    if len(iv) != IV_SIZE:
        raise ValueError(f"IV: {len(iv)} bytes, expected {IV_SIZE}")
    cipher = AES.new(keys.cipher_key.expose(), AES.MODE_CBC, iv=iv)
    ciphertext = cipher.encrypt(pad(plaintext.expose(), BLOCK, style="pkcs7"))
    return _tag(keys.mac_key, ciphertext).digest() + iv + ciphertext


def open_sealed(keys: KeyPair, blob: bytes, label: str) -> Hidden:
    """WRAP_05..WRAP_08; ``label`` names the value in messages (a path, "wrapped secret")."""
    parts = split_wrapped(blob, label)  # steps 1 and 2
    try:  # step 3: pycryptodome's verify compares in constant time
        _tag(keys.mac_key, parts.ciphertext).verify(parts.tag)
    except ValueError:
        raise FormatFailure(
            Code.HMAC_MISMATCH, f"{label}: the HMAC at offset 0 does not authenticate"
        ) from None
    padded = AES.new(keys.cipher_key.expose(), AES.MODE_CBC, iv=parts.iv).decrypt(parts.ciphertext)
    try:  # step 4: strict PKCS#7 (last byte n in 1..16, the last n bytes all equal n)
        return Hidden(unpad(padded, BLOCK, style="pkcs7"))
    except ValueError:
        raise FormatFailure(
            Code.BAD_PADDING, f"{label}: PKCS#7 padding is invalid although the HMAC matched"
        ) from None
