"""The wrap format: ``HMAC-SHA256(mac, C) || IV || C`` with ``C = AES-256-CBC(enc, IV, PKCS#7(P))``.

Chapter ``spec/chapters/wrap-format.rst``: WRAP_01..WRAP_08.

Used for the internal keys under the KEK and for user secrets under the SQL key. Unwrap performs
its checks in the order the spec numbers them, so that every implementation reports the same
error code for the same malformed input.
"""

from __future__ import annotations

import hmac

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from pgkms.errors import BadPadding, HmacMismatch, InputError, WrappedLengthInvalid, WrappedTooShort
from pgkms.kdf import WrapKeys
from pgkms.layout import AES_BLOCK, HMAC_LEN, IV_LEN, WRAP_OVERHEAD, WRAPPED_MIN_LEN
from pgkms.randomness import RandomSource, system_random
from pgkms.secret import Secret


def _hmac_sha256(key: Secret, data: bytes) -> bytes:
    mac = crypto_hmac.HMAC(key.reveal(), hashes.SHA256())
    mac.update(data)
    return mac.finalize()


def pkcs7_pad(data: bytes) -> bytes:
    """WRAP_02: always pad, 1..16 bytes each equal to the pad length."""
    n = AES_BLOCK - len(data) % AES_BLOCK
    return data + bytes([n]) * n


def pkcs7_unpad(padded: bytes, what: str) -> bytes:
    """WRAP_08: the last byte ``n`` must be 1..16 and the last ``n`` bytes must all equal ``n``.

    Only reached after the HMAC verified, so this check leaks nothing to an attacker who lacks
    the MAC key (no padding oracle); the comparison is constant-time all the same.
    """
    n = padded[-1]
    if not 1 <= n <= AES_BLOCK or not hmac.compare_digest(padded[-n:], bytes([n]) * n):
        raise BadPadding(f"{what}: PKCS#7 padding is invalid after a valid HMAC")
    return padded[:-n]


def wrap(keys: WrapKeys, plaintext: Secret, random: RandomSource = system_random) -> bytes:
    """WRAP_01..WRAP_04: wrap ``plaintext``; draws exactly one 16-byte IV from ``random``."""
    iv = random(IV_LEN)
    if len(iv) != IV_LEN:
        raise InputError(f"IV: expected {IV_LEN} bytes, found {len(iv)}")
    encryptor = Cipher(algorithms.AES(keys.enc.reveal()), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(pkcs7_pad(plaintext.reveal())) + encryptor.finalize()
    # WRAP_04 (2020 format): the HMAC covers the ciphertext only, not the IV. A known weakness
    # (spec SEC_IV) that cannot be fixed without breaking compatibility with the patch.
    return _hmac_sha256(keys.mac, ciphertext) + iv + ciphertext


def unwrap(keys: WrapKeys, wrapped: bytes, what: str = "wrapped value") -> Secret:
    """WRAP_05..WRAP_08: verify and decrypt ``wrapped``; ``what`` names it in error messages."""
    # WRAP_05: room for the HMAC, the IV and at least one cipher block.
    if len(wrapped) < WRAPPED_MIN_LEN:
        raise WrappedTooShort(
            f"{what}: expected at least {WRAPPED_MIN_LEN} bytes, found {len(wrapped)}"
        )
    # WRAP_06: the ciphertext is whole AES blocks.
    if (len(wrapped) - WRAP_OVERHEAD) % AES_BLOCK:
        raise WrappedLengthInvalid(
            f"{what}: ciphertext of {len(wrapped) - WRAP_OVERHEAD} bytes is not a multiple "
            f"of {AES_BLOCK}"
        )
    tag = wrapped[:HMAC_LEN]
    iv = wrapped[HMAC_LEN:WRAP_OVERHEAD]
    ciphertext = wrapped[WRAP_OVERHEAD:]
    # WRAP_07: authenticate before decrypting, comparing in constant time (the 2020 patch used
    # memcmp; spec deviation DEV_MEMCMP).
    if not hmac.compare_digest(tag, _hmac_sha256(keys.mac, ciphertext)):
        raise HmacMismatch(f"{what}: HMAC does not match")
    decryptor = Cipher(algorithms.AES(keys.enc.reveal()), modes.CBC(iv)).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    return Secret(pkcs7_unpad(padded, what))
