"""The wrap format: ``HMAC-SHA256(mac, C) || IV || C`` with ``C = AES-256-CBC(enc, IV, PKCS#7(P))``.

Chapter ``spec/chapters/wrap-format.rst``: WRAP_01..WRAP_08.

Used for the internal keys under the KEK and for user secrets under the SQL key. Unwrap performs
its checks in the order the spec numbers them, so that every implementation reports the same
error code for the same malformed input.
"""

from __future__ import annotations

import hmac
import threading

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes

from pgkms.errors import BadPadding, HmacMismatch, InputError, WrappedLengthInvalid, WrappedTooShort
from pgkms.kdf import WrapKeys
from pgkms.layout import AES_BLOCK, HMAC_LEN, IV_LEN, WRAP_OVERHEAD, WRAPPED_MIN_LEN
from pgkms.randomness import RandomSource, system_random
from pgkms.secret import Secret

# Why ``wrap`` and ``unwrap`` have two paths. The plain path is the format read aloud: pad,
# encrypt, concatenate. For a large secret its fresh copies (the padded plaintext, ``update``'s
# output, ``+ finalize()``, ``tag + iv + C``) are each new pages from the allocator, and their
# page faults cost about as much as the HMAC. The buffer path of wrap encrypts into one reused
# per-thread scratch buffer and copies out once; that of unwrap decrypts into the buffer the
# secret keeps. Below the sizes here the plain path is as fast or faster (measured with
# bench/run.py's machinery, CPU time). Both give the same bytes.
LARGE_WRAP = 64 * 1024  # plaintext bytes
LARGE_UNWRAP = 128 * 1024  # ciphertext bytes
# A thread keeps its scratch buffer up to this size; a larger wrap allocates its own.
SCRATCH_KEPT_MAX = 16 * 1024 * 1024


class _Scratch(threading.local):
    buffer = bytearray()


_SCRATCH = _Scratch()


def _scratch(size: int) -> memoryview:
    """``size`` bytes of this thread's scratch buffer (grown when too small)."""
    buffer = _SCRATCH.buffer
    if len(buffer) < size:
        buffer = bytearray(size)
        if size <= SCRATCH_KEPT_MAX:
            _SCRATCH.buffer = buffer
    return memoryview(buffer)[:size]


def _wipe(view: memoryview) -> None:
    """Zero ``view`` without allocating: one zero byte, then the zeros so far copied onward."""
    view[:1] = b"\0"
    done = 1
    while done < len(view):
        step = min(done, len(view) - done)
        view[done : done + step] = view[:step]
        done += step


def _hmac_sha256(key: Secret, data: bytes | memoryview) -> bytes:
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
    return padded[: len(padded) - _padding_length(padded, what)]


def _padding_length(padded: bytes | memoryview, what: str) -> int:
    """WRAP_08's check (see ``pkcs7_unpad``): the padding's length, once it is valid."""
    n = padded[-1]
    if not 1 <= n <= AES_BLOCK or not hmac.compare_digest(padded[-n:], bytes([n]) * n):
        raise BadPadding(f"{what}: PKCS#7 padding is invalid after a valid HMAC")
    return n


def wrap(keys: WrapKeys, plaintext: Secret, random: RandomSource = system_random) -> bytes:
    """WRAP_01..WRAP_04: wrap ``plaintext``; draws exactly one 16-byte IV from ``random``."""
    iv = random(IV_LEN)
    if len(iv) != IV_LEN:
        raise InputError(f"IV: expected {IV_LEN} bytes, found {len(iv)}")
    encryptor = Cipher(algorithms.AES(keys.enc.reveal()), modes.CBC(iv)).encryptor()
    data = plaintext.reveal()
    if len(data) >= LARGE_WRAP:
        return _wrap_large(keys, data, iv, encryptor)
    ciphertext = encryptor.update(pkcs7_pad(data)) + encryptor.finalize()
    # WRAP_04 (2020 format): the HMAC covers the ciphertext only, not the IV. A known weakness
    # (spec SEC_IV) that cannot be fixed without breaking compatibility with the patch.
    return _hmac_sha256(keys.mac, ciphertext) + iv + ciphertext


def _wrap_large(keys: WrapKeys, data: bytes, iv: bytes, encryptor: CipherContext) -> bytes:
    """``wrap`` of a large plaintext, laid out as ``tag || iv || C`` in the scratch buffer.

    Only the last, partial block is padded (a copy of at most 15 bytes plus the padding); the
    whole blocks are encrypted straight from the plaintext. ``update_into`` wants room for one
    block more than it writes, hence the slack beyond ``size``. The buffer holds only public
    bytes (ciphertext, IV, tag), so it is not wiped.
    """
    whole = len(data) - len(data) % AES_BLOCK
    size = WRAP_OVERHEAD + whole + AES_BLOCK  # PKCS#7 adds 1..16 bytes: one block more
    out = _scratch(size + AES_BLOCK - 1)
    out[HMAC_LEN:WRAP_OVERHEAD] = iv
    written = encryptor.update_into(memoryview(data)[:whole], out[WRAP_OVERHEAD:])
    written += encryptor.update_into(pkcs7_pad(data[whole:]), out[WRAP_OVERHEAD + written :])
    encryptor.finalize()  # CBC holds nothing back: every block was written above
    # WRAP_04 (2020 format), as in ``wrap``: the HMAC covers the ciphertext only.
    out[:HMAC_LEN] = _hmac_sha256(keys.mac, out[WRAP_OVERHEAD:size])
    return bytes(out[:size])


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
    # Views, not copies: a large ciphertext is read where it lies.
    view = memoryview(wrapped)
    tag, iv, ciphertext = view[:HMAC_LEN], view[HMAC_LEN:WRAP_OVERHEAD], view[WRAP_OVERHEAD:]
    # WRAP_07: authenticate before decrypting, comparing in constant time (the 2020 patch used
    # memcmp; spec deviation DEV_MEMCMP).
    if not hmac.compare_digest(tag, _hmac_sha256(keys.mac, ciphertext)):
        raise HmacMismatch(f"{what}: HMAC does not match")
    decryptor = Cipher(algorithms.AES(keys.enc.reveal()), modes.CBC(bytes(iv))).decryptor()
    if len(ciphertext) < LARGE_UNWRAP:
        padded = decryptor.update(ciphertext) + decryptor.finalize()
        return Secret(pkcs7_unpad(padded, what))
    # A large plaintext is decrypted into a buffer that the returned secret then owns
    # (``Secret.adopt``: no copy into ``bytes``); only bad padding leaves it behind, wiped.
    out = bytearray(len(ciphertext) + AES_BLOCK - 1)
    with memoryview(out) as view:
        written = decryptor.update_into(ciphertext, view)
        decryptor.finalize()
        try:
            padding = _padding_length(view[:written], what)
        except BadPadding:
            _wipe(view)
            raise
    del out[written - padding :]
    return Secret.adopt(out)
