"""``accumulated.json``: one test whose pseudo-op expands into N deterministic wrap cases."""

from __future__ import annotations

from pgkms_conformance.vectors import accumulated, drbg
from pgkms_conformance.vectors.builder import Family


def build(count: int = accumulated.DEFAULT_COUNT) -> Family:
    fam = Family(
        name="accumulated",
        header=[
            "Accumulated wrap: the pseudo-op accumulated_wrap stands for `count` wrap requests; "
            "case i uses enc_key = D('L/i/enc_key', 32), mac_key = D('L/i/mac_key', 32), "
            "iv = D('L/i/iv', 16), n = uint16-LE(D('L/i/length', 2)) mod (M + 1), plaintext = "
            "D('L/i/plaintext', n), with L = input.label, M = input.maxPlaintextLength and i in "
            "decimal. expected.digest = SHA-256(wrapped_0 || ... || wrapped_{count-1}).",
            drbg.DESCRIPTION,
            "A runner needs the IUT's 'wrap' op and its 'inject_randomness' capability. "
            "`pgkms-conformance vectors generate --accumulated 1000000` writes the digest of a "
            "million cases.",
        ],
        notes={
            "PSEUDO_OP": "Not an adapter op: the runner expands it into `count` wrap requests and "
            "hashes the outputs. A mismatch means at least one case wraps differently; rerun the "
            "cases one by one (accumulated.case(label, i, M)) to find the first.",
        },
        triage={
            "PSEUDO_OP": (
                "BASIC",
                "wraps some ordinary inputs differently: its key files do not open elsewhere",
            )
        },
    )
    g = fam.group("accumulated_wrap", f"{count} deterministic wrap cases hashed into one digest")
    digest = accumulated.reference_digest(accumulated.LABEL, count, accumulated.MAX_PLAINTEXT_LEN)
    g.add_precomputed(
        "accumulated_wrap",
        {
            "count": count,
            "label": accumulated.LABEL,
            "maxPlaintextLength": accumulated.MAX_PLAINTEXT_LEN,
        },
        comment=f"{count} wraps, plaintexts of 0..{accumulated.MAX_PLAINTEXT_LEN} bytes",
        requirements=["WRAP_01", "WRAP_02", "WRAP_04"],
        flags=["PSEUDO_OP"],
        expected={"digest": digest},
    )
    return fam
