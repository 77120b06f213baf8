"""The deterministic byte source every vector draws from (VEC_03).

Definition, complete enough to reproduce any vector's keys, IVs, passphrases and plaintexts:

    D(label, n) = SHAKE-128(b"pgkms-vectors/v1/" || UTF-8(label)), first n bytes

``label`` is a short ASCII path naming the value, e.g. ``wrap/length-17/iv`` or
``accumulated/42/plaintext``; each vector file's header lists the labels it uses. Distinct
labels give independent-looking values, and the same label always gives the same bytes, so
regeneration is byte-identical on every machine. ``D`` itself is ``material.derive``, which the
crash explorer's scenario draws from too.
"""

from __future__ import annotations

from typing import Final

from pgkms_conformance.material import SEED, derive

__all__ = ["DESCRIPTION", "SEED", "derive", "derive_printable"]


def derive_printable(label: str, n: int) -> bytes:
    """``n`` printable ASCII bytes (0x21..0x7e): byte i is ``0x21 + D(label, n)[i] % 94``.

    Used for passphrases a human could type, so a vector's comment can show their shape.
    """
    return bytes(0x21 + b % 94 for b in derive(label, n))


DESCRIPTION: Final = (
    "Randomness: every key, IV, passphrase and plaintext is D(label, n) = the first n bytes of "
    "SHAKE-128(b'pgkms-vectors/v1/' || UTF-8(label)); printable passphrases map each byte b of "
    "D(label, n) to 0x21 + b % 94. The label of each value is given in the test's comment or "
    "this header."
)
