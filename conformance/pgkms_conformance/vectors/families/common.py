"""What the wrap families share: the notes of their flags, byte surgery (``flip_bit``), wrapped
lengths, and the padded plaintexts that break PKCS#7 (``BAD_PADDINGS``).

Wrapped values around an already padded (or deliberately mis-padded) plaintext, whose HMAC is
valid but whose padding is not, are ``material.unpadded_wrap``: something the reference's
``wrap`` can never produce, by design.
"""

from __future__ import annotations

# Flags shared by the wrap families; each family copies the ones it uses into its notes.
IV_NOT_AUTHENTICATED = (
    "The wrap format's HMAC covers the ciphertext only, not the IV (WRAP_04, weakness SEC_IV). "
    "Flipping IV bits flips the same bits of the first plaintext block and unwrap still succeeds. "
    "The design ACCEPTS this input: an implementation that rejects it has authenticated the IV "
    "and no longer reads what the 2020 patch wrote; one that returns a different plaintext has "
    "decrypted wrongly."
)
PADDING_FORGED_VIA_IV = (
    "Changing IV bytes of a one-block value rewrites its padding undetected: the unwrap "
    "succeeds with a different length (SEC_IV), as observed on the 2020 server ('a' followed by "
    "fourteen 0x0f bytes)."
)
BAD_PADDING_VALID_HMAC = (
    "The HMAC is valid, so unwrap reaches decryption; the decrypted padding is not strict PKCS#7 "
    "(WRAP_08). An implementation that accepts it strips padding loosely (e.g. only checks the "
    "last byte) and returns a wrong plaintext."
)
TRUNCATED = (
    "A prefix of a valid wrapped value. Below 64 bytes it must fail the length check "
    "(wrapped_too_short, WRAP_05); otherwise a length that is not 48 + a multiple of 16 is "
    "wrapped_length_invalid (WRAP_06); a whole-block prefix fails the HMAC (WRAP_07). Checks "
    "must run in this order so every implementation reports the same code."
)
EXTENDED = (
    "A valid wrapped value with bytes appended. The length check (WRAP_06) rejects it unless "
    "a whole block was added, in which case the HMAC fails (WRAP_07). An implementation that "
    "ignores trailing bytes accepts data the writer never produced."
)
BIT_FLIP_MAC = (
    "One bit of the stored HMAC flipped: must fail with hmac_mismatch (WRAP_07), before any "
    "decryption."
)
BIT_FLIP_CIPHERTEXT = (
    "One bit of the ciphertext flipped: the HMAC covers the ciphertext, so this must fail with "
    "hmac_mismatch (WRAP_07), never reach decryption, never return a plaintext."
)
WRONG_KEY = (
    "Unwrap under keys other than the ones used to wrap. A wrong HMAC key fails the HMAC "
    "(WRAP_07); the right HMAC key with a wrong encryption key passes the HMAC and fails the "
    "padding check (WRAP_08) for the value chosen here."
)


# Bug type and effect of each shared wrap flag (``triage``): what an implementation failing a case
# with that flag does wrong.
WRAP_TRIAGE = {
    "IV_NOT_AUTHENTICATED": (
        "LEGACY",
        "rejects values the 2020 patch wrote (it authenticates the IV), or decrypts the first "
        "block wrongly",
    ),
    "PADDING_FORGED_VIA_IV": (
        "LEGACY",
        "rejects what the format accepts, or returns a plaintext other than the one the "
        "altered IV decrypts to",
    ),
    "BAD_PADDING_VALID_HMAC": (
        "MALLEABILITY",
        "accepts loose padding and returns a plaintext the writer never wrapped",
    ),
    "TRUNCATED": (
        "AUTH_BYPASS",
        "accepts a cut wrapped value, or names another fault than the first check's",
    ),
    "EXTENDED": (
        "AUTH_BYPASS",
        "ignores trailing bytes and accepts a value the writer never produced",
    ),
    "BIT_FLIP_MAC": ("AUTH_BYPASS", "accepts a value whose HMAC does not verify"),
    "BIT_FLIP_CIPHERTEXT": (
        "AUTH_BYPASS",
        "decrypts a tampered ciphertext instead of failing its HMAC",
    ),
    "WRONG_KEY": (
        "AUTH_BYPASS",
        "unwraps under the wrong keys, or reports another fault than the first failing check",
    ),
}


def flip_bit(data: bytes, bit: int) -> bytes:
    """``data`` with bit ``bit`` flipped; bit 0 is the least significant bit of byte 0."""
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def wrapped_len(n: int) -> int:
    """WRAP_02: the length a plaintext of ``n`` bytes wraps to."""
    return 48 + 16 * (n // 16 + 1)


# (comment, padded plaintext) pairs with a valid HMAC but invalid PKCS#7 padding (WRAP_08).
BAD_PADDINGS: tuple[tuple[str, bytes], ...] = (
    ("last byte 0x00 (a pad length of zero)", b"A" * 15 + b"\x00"),
    ("last byte 0x11 (pad length 17 exceeds the block)", b"A" * 15 + b"\x11"),
    ("last byte 0xff", b"A" * 15 + b"\xff"),
    ("last byte 0x02, byte before it 0x01", b"A" * 14 + b"\x01\x02"),
    ("last byte 0x05, one of the four before it differs", b"A" * 11 + b"\x05\x05\x04\x05\x05"),
    ("a whole block of 0x10 except its first byte", b"\x0f" + b"\x10" * 15),
    ("two blocks, last byte 0x20 (pad length 32 spans blocks)", b"\x20" * 32),
    ("two blocks, no padding at all (plaintext a multiple of 16)", b"0123456789abcdef" * 2),
)
