"""``kdf.json``: the passphrase -> KEK derivation (KDF_01) and the passphrase length rules
(PASS_04..PASS_07) through ``check_passphrase``."""

from __future__ import annotations

import hashlib

from pgkms_conformance.vectors import drbg
from pgkms_conformance.vectors.builder import Family

KDF_LENGTHS = (64, 65, 100, 127, 128, 255, 256, 512, 1000, 1023, 1024)
PURPOSES = ("bootstrap", "startup", "rotation")


def _derivation(passphrase: bytes) -> dict[str, str]:
    """KDF_01 computed here with hashlib, a second opinion on the reference's answer."""
    d = hashlib.sha512(passphrase).digest()
    return {"enc_key": d[:32].hex(), "mac_key": d[32:].hex()}


TRIAGE = {
    "NOT_UTF8": (
        "BASIC",
        "decodes or normalises the passphrase and derives another KEK: 2020 keys do not open",
    ),
    "TRAILING_NEWLINE": (
        "BASIC",
        "trims the newline and derives another KEK: keys made with `echo` do not open",
    ),
    "EXACT_BOUND": ("EDGE_CASE", "refuses a passphrase whose length is exactly at a bound"),
    "CUT_AT_STARTUP": (
        "LEGACY",
        "refuses a long startup passphrase the 2020 patch cut, so its keys no longer open",
    ),
    "TOO_LONG_REJECTED": (
        "KNOWN_2020_DEFECT",
        "silently cuts a long new passphrase and wraps keys under one the user never typed",
    ),
    "EMBEDDED_NUL": (
        "BASIC",
        "hashes only the bytes before the first NUL: a weaker KEK, and another one",
    ),
}


def build() -> Family:
    fam = Family(
        name="kdf",
        header=[
            "Key derivation: derive_kek(passphrase) -> enc_key = SHA-512(passphrase)[0:32], "
            "mac_key = SHA-512(passphrase)[32:64] (KDF_01); and the passphrase length rules per "
            "purpose through check_passphrase (PASS_04..PASS_07).",
            drbg.DESCRIPTION,
            "Labels: printable passphrases 'kdf/printable-N', binary ones 'kdf/binary-N', length "
            "rule inputs 'kdf/length-N' (printable), each N bytes long.",
        ],
        triage=TRIAGE,
        notes={
            "NOT_UTF8": "The passphrase is not valid UTF-8. It is bytes, hashed as given; an "
            "implementation that decodes, normalises or re-encodes it derives another KEK and "
            "cannot open keys the 2020 patch wrote.",
            "TRAILING_NEWLINE": "The passphrase ends with a newline (what `echo` prints). Nothing "
            "is trimmed (PASS_01): an implementation that strips it derives another KEK.",
            "EXACT_BOUND": "A length exactly at a bound: 64 bytes is accepted although the 2020 "
            "message said 'more than 64 bytes'; 1024 bytes is accepted.",
            "CUT_AT_STARTUP": "Startup keeps only the first 1024 bytes (PASS_06), as the 2020 "
            "patch did, so keys it wrapped under a longer command output still open.",
            "TOO_LONG_REJECTED": "Bootstrap and rotation reject more than 1024 bytes (PASS_05); "
            "the 2020 patch silently cut (DEV_TRUNCATE), wrapping keys under a passphrase the "
            "user never typed in full.",
            "EMBEDDED_NUL": "The passphrase contains NUL bytes; a C implementation that treats it "
            "as a string hashes only the part before the first NUL.",
        },
    )
    g = fam.group("derive_printable", "printable passphrases of lengths 64..1024")
    for n in KDF_LENGTHS:
        p = drbg.derive_printable(f"kdf/printable-{n}", n)
        g.add(
            "derive_kek",
            {"passphrase": p.hex()},
            comment=f"{n}-byte printable passphrase",
            requirements=["KDF_01"],
            flags=["EXACT_BOUND"] if n in (64, 1024) else [],
            expected=_derivation(p),
        )
    g = fam.group("derive_bytes", "passphrases as bytes: not UTF-8, NUL, trailing newline")
    for n in (64, 200, 1024):
        p = drbg.derive(f"kdf/binary-{n}", n)
        g.add(
            "derive_kek",
            {"passphrase": p.hex()},
            comment=f"{n} bytes of D('kdf/binary-{n}', {n}): arbitrary binary",
            requirements=["KDF_01", "PASS_01"],
            flags=["NOT_UTF8", "EMBEDDED_NUL"] if b"\x00" in p else ["NOT_UTF8"],
            expected=_derivation(p),
        )
    base = drbg.derive_printable("kdf/printable-64", 64)
    for what, p, flags in (
        ("Latin-1 'é' (0xe9) inside printable text", base[:40] + b"\xe9" + base[41:], ["NOT_UTF8"]),
        ("a lone UTF-8 continuation byte 0x80 at the end", base[:63] + b"\x80", ["NOT_UTF8"]),
        ("NUL bytes in the middle", base[:20] + b"\x00\x00" + base[22:], ["EMBEDDED_NUL"]),
        ("64 printable bytes followed by a newline (65)", base + b"\n", ["TRAILING_NEWLINE"]),
        ("63 printable bytes and a newline (64)", base[:63] + b"\n", ["TRAILING_NEWLINE"]),
        ("64 printable bytes followed by CR LF (66)", base + b"\r\n", ["TRAILING_NEWLINE"]),
    ):
        g.add(
            "derive_kek",
            {"passphrase": p.hex()},
            comment=what,
            requirements=["KDF_01", "PASS_01"],
            flags=flags,
            expected=_derivation(p),
        )
    _length_rules(fam)
    return fam


def _length_rules(fam: Family) -> None:
    g = fam.group("check_passphrase", "the length rules for each purpose")
    for purpose in PURPOSES:
        short_reqs = ["PASS_07", "START_01"] if purpose == "startup" else ["PASS_04"]
        long_reqs = ["PASS_06"] if purpose == "startup" else ["PASS_05"]
        if purpose == "bootstrap":
            short_reqs.append("BOOT_02")
            long_reqs.append("BOOT_02")
        if purpose == "rotation":
            short_reqs.append("ROT_02")
            long_reqs.append("ROT_02")
        for n in (0, 1, 32, 63):
            g.add(
                "check_passphrase",
                {
                    "passphrase": drbg.derive_printable(f"kdf/length-{n}", n).hex(),
                    "purpose": purpose,
                },
                comment=f"{purpose}: {n} bytes is too short",
                requirements=short_reqs,
                error="passphrase_too_short",
            )
        for n in (64, 65, 1023, 1024):
            p = drbg.derive_printable(f"kdf/length-{n}", n)
            g.add(
                "check_passphrase",
                {"passphrase": p.hex(), "purpose": purpose},
                comment=f"{purpose}: {n} bytes is accepted unchanged",
                requirements=[*short_reqs[:1], *long_reqs[:1]],
                flags=["EXACT_BOUND"] if n in (64, 1024) else [],
                expected={"passphrase": p.hex()},
            )
        for n in (1025, 2048, 4096):
            p = drbg.derive_printable(f"kdf/length-{n}", n)
            params = {"passphrase": p.hex(), "purpose": purpose}
            if purpose == "startup":
                g.add(
                    "check_passphrase",
                    params,
                    comment=f"startup: {n} bytes is cut to its first 1024",
                    requirements=long_reqs,
                    flags=["CUT_AT_STARTUP"],
                    expected={"passphrase": p[:1024].hex()},
                )
            else:
                g.add(
                    "check_passphrase",
                    params,
                    comment=f"{purpose}: {n} bytes is too long, rejected (not cut)",
                    requirements=long_reqs,
                    flags=["TOO_LONG_REJECTED"],
                    error="passphrase_too_long",
                )
