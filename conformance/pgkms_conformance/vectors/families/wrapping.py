"""The two wrap families: ``wrap.json`` (internal keys under a KEK: ``wrap``/``unwrap``) and
``sql_wrap.json`` (user secrets under the SQL key: ``sql_wrap``/``sql_unwrap``).

Both use one wrap format (WRAP_01..WRAP_08), so both get the same systematic cases: every
plaintext length 0..64 and a spread beyond, round trips, every bit flip of one wrapped value
(HMAC and ciphertext: rejected; IV: accepted with a changed plaintext, SEC_IV), every truncation,
extensions by 1..16 bytes, valid HMACs over bad padding, and wrong keys.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pgkms_conformance.material import unpadded_wrap
from pgkms_conformance.vectors import drbg
from pgkms_conformance.vectors.builder import Family, GeneratorError
from pgkms_conformance.vectors.families import common

LENGTHS = (*range(65), 100, 255, 256, 1000, 4096, 65536)
SEED_EXAMPLE = b"my secret passward"  # the seed thread's pg_wrap example: 18 bytes -> 80


@dataclass(frozen=True)
class Variant:
    """What differs between the two families: op names, key fields, requirement IDs."""

    family: str
    wrap_op: str
    unwrap_op: str
    key_params: Callable[[bytes, bytes], dict[str, Any]]  # (enc, mac) -> request fields
    wrap_reqs: list[str]
    unwrap_reqs: list[str]
    short_reqs: list[str]  # cited by too-short inputs
    what: str  # "internal key" / "user secret"


def _kek_params(enc: bytes, mac: bytes) -> dict[str, Any]:
    return {"enc_key": enc.hex(), "mac_key": mac.hex()}


def _sql_params(enc: bytes, mac: bytes) -> dict[str, Any]:
    return {"sql_key": (enc + mac).hex()}


WRAP = Variant(
    family="wrap",
    wrap_op="wrap",
    unwrap_op="unwrap",
    key_params=_kek_params,
    wrap_reqs=["WRAP_01", "WRAP_02", "WRAP_04"],
    unwrap_reqs=["WRAP_07", "WRAP_08"],
    short_reqs=["WRAP_05", "DEV_UNWRAP_LENGTH"],
    what="internal key",
)
SQL_WRAP = Variant(
    family="sql_wrap",
    wrap_op="sql_wrap",
    unwrap_op="sql_unwrap",
    key_params=_sql_params,
    wrap_reqs=["SQL_01", "WRAP_01", "WRAP_02", "WRAP_04"],
    unwrap_reqs=["SQL_01", "SQL_03", "WRAP_07", "WRAP_08"],
    short_reqs=["SQL_02", "WRAP_05"],
    what="user secret",
)


def _keys(v: Variant, label: str) -> tuple[bytes, bytes]:
    if v is SQL_WRAP:
        key = drbg.derive(f"{v.family}/{label}/sql_key", 64)
        return key[:32], key[32:]
    return drbg.derive(f"{v.family}/{label}/enc_key", 32), drbg.derive(
        f"{v.family}/{label}/mac_key", 32
    )


def build(v: Variant) -> Family:
    fam = Family(
        name=v.family,
        header=[
            f"Wrap format vectors for the {v.what} path: ops {v.wrap_op!r} and {v.unwrap_op!r}. "
            "wrapped = HMAC-SHA256(mac, C) || IV || C, C = AES-256-CBC(enc, IV, PKCS#7(P)).",
            drbg.DESCRIPTION,
            f"Labels: keys of the length cases are D('{v.family}/length-N/<key>', n) with <key> "
            "enc_key (32) and mac_key (32), or sql_key (64: enc = first 32 bytes, mac = last 32); "
            f"plaintext D('{v.family}/length-N/plaintext', N); IV D('{v.family}/length-N/iv', 16). "
            "The damaged-value cases start from the value wrapped under label "
            f"'{v.family}/target'.",
            "Bit numbering: bit k is bit (k mod 8) (0 = least significant) of byte k div 8 of the "
            "wrapped value.",
        ],
        notes={
            "IV_NOT_AUTHENTICATED": common.IV_NOT_AUTHENTICATED,
            "PADDING_FORGED_VIA_IV": common.PADDING_FORGED_VIA_IV,
            "BAD_PADDING_VALID_HMAC": common.BAD_PADDING_VALID_HMAC,
            "TRUNCATED": common.TRUNCATED,
            "EXTENDED": common.EXTENDED,
            "BIT_FLIP_MAC": common.BIT_FLIP_MAC,
            "BIT_FLIP_CIPHERTEXT": common.BIT_FLIP_CIPHERTEXT,
            "WRONG_KEY": common.WRONG_KEY,
        },
        triage=common.WRAP_TRIAGE,
    )
    _lengths(fam, v)
    target_plain, target = _target(fam, v)
    _bit_flips(fam, v, target_plain, target)
    _truncations(fam, v, target)
    _bad_paddings(fam, v)
    _wrong_keys(fam, v, target)
    return fam


def _lengths(fam: Family, v: Variant) -> None:
    g = fam.group("round_trip", "wrap with an injected IV, then unwrap the result, per length")
    for n in LENGTHS:
        label = f"{v.family}/length-{n}"
        enc, mac = _keys(v, f"length-{n}")
        plain = drbg.derive(f"{label}/plaintext", n)
        iv = drbg.derive(f"{label}/iv", 16)
        keys = v.key_params(enc, mac)
        out = g.add(
            v.wrap_op,
            {**keys, "plaintext": plain.hex(), "iv": iv.hex()},
            comment=f"wrap a {n}-byte {v.what}: {common.wrapped_len(n)} bytes out",
            requirements=[*v.wrap_reqs],
            expected=None,
        )
        wrapped = bytes.fromhex(out["wrapped"])
        if len(wrapped) != common.wrapped_len(n) or wrapped[32:48] != iv:
            raise GeneratorError(f"{label}: reference output has the wrong length or IV")
        g.add(
            v.unwrap_op,
            {**keys, "wrapped": wrapped.hex()},
            comment=f"unwrap the {common.wrapped_len(n)}-byte value back to {n} bytes",
            requirements=[*v.unwrap_reqs, "WRAP_05", "WRAP_06"],
            expected={"plaintext": plain.hex()},
        )


def _target(fam: Family, v: Variant) -> tuple[bytes, bytes]:
    """The value every damaged-value case starts from: a 64-byte internal key (128 bytes
    wrapped) for ``wrap``; the seed thread's example secret (80 bytes wrapped) for
    ``sql_wrap``."""
    g = fam.group("target", "the intact value the damaged-value groups below start from")
    enc, mac = _keys(v, "target")
    plain = SEED_EXAMPLE if v is SQL_WRAP else drbg.derive(f"{v.family}/target/plaintext", 64)
    iv = drbg.derive(f"{v.family}/target/iv", 16)
    keys = v.key_params(enc, mac)
    what = "the seed thread's example 'my secret passward'" if v is SQL_WRAP else "a 64-byte key"
    out = g.add(
        v.wrap_op,
        {**keys, "plaintext": plain.hex(), "iv": iv.hex()},
        comment=f"wrap {what}: {common.wrapped_len(len(plain))} bytes",
        requirements=[*v.wrap_reqs],
    )
    wrapped = bytes.fromhex(out["wrapped"])
    g.add(
        v.unwrap_op,
        {**keys, "wrapped": wrapped.hex()},
        comment="unwrap the intact target value",
        requirements=[*v.unwrap_reqs],
        expected={"plaintext": plain.hex()},
    )
    return plain, wrapped


def _bit_flips(fam: Family, v: Variant, plain: bytes, target: bytes) -> None:
    enc, mac = _keys(v, "target")
    keys = v.key_params(enc, mac)
    g = fam.group("hmac_bit_flip", "every single-bit flip in the HMAC (bytes 0..31)")
    for bit in range(0, 32 * 8):
        g.add(
            v.unwrap_op,
            {**keys, "wrapped": common.flip_bit(target, bit).hex()},
            comment=f"HMAC bit {bit} flipped (byte {bit // 8}, bit {bit % 8})",
            requirements=["WRAP_07", *v.unwrap_reqs[:1]],
            flags=["BIT_FLIP_MAC"],
            error="hmac_mismatch",
        )
    g = fam.group(
        "iv_bit_flip",
        "every single-bit flip in the IV (bytes 32..47): ACCEPTED by design, first block altered",
    )
    for bit in range(32 * 8, 48 * 8):
        k = bit - 32 * 8  # bit index within the IV
        altered = bytearray(plain + bytes([16 - len(plain) % 16]) * (16 - len(plain) % 16))
        altered[k // 8] ^= 1 << (k % 8)
        n = altered[-1]
        expected = bytes(altered[:-n]) if 1 <= n <= 16 and altered[-n:] == bytes([n]) * n else None
        params = {**keys, "wrapped": common.flip_bit(target, bit).hex()}
        comment = f"IV bit {k} flipped (byte {32 + k // 8}): plaintext byte {k // 8} bit {k % 8}"
        if plain == SEED_EXAMPLE and k == 0:
            comment += ": 'my secret passward' unwraps as 'ly secret passward' (seen in 2020)"
        if expected is None:  # a one-block value whose padding the flip broke
            g.add(
                v.unwrap_op,
                params,
                comment=comment + " lands in the padding and breaks it",
                requirements=["WRAP_04", "WRAP_08", "SEC_IV"],
                flags=["IV_NOT_AUTHENTICATED"],
                error="bad_padding",
            )
            continue
        g.add(
            v.unwrap_op,
            params,
            comment=comment,
            requirements=["WRAP_04", "SEC_IV", *v.unwrap_reqs[:1]],
            flags=["IV_NOT_AUTHENTICATED"],
            expected={"plaintext": expected.hex()},
        )
    g = fam.group("ciphertext_bit_flip", "every single-bit flip in the ciphertext (bytes 48..)")
    for bit in range(48 * 8, len(target) * 8):
        g.add(
            v.unwrap_op,
            {**keys, "wrapped": common.flip_bit(target, bit).hex()},
            comment=f"ciphertext bit {bit - 384} flipped (byte {bit // 8}, bit {bit % 8})",
            requirements=["WRAP_07", *v.unwrap_reqs[:1]],
            flags=["BIT_FLIP_CIPHERTEXT"],
            error="hmac_mismatch",
        )


def _length_error(n: int) -> str:
    if n < 64:
        return "wrapped_too_short"
    if (n - 48) % 16:
        return "wrapped_length_invalid"
    return "hmac_mismatch"


def _length_reqs(v: Variant, code: str) -> list[str]:
    return {
        "wrapped_too_short": v.short_reqs,
        "wrapped_length_invalid": ["WRAP_06", *v.unwrap_reqs[:1]],
        "hmac_mismatch": ["WRAP_07", *v.unwrap_reqs[:1]],
    }[code]


def _truncations(fam: Family, v: Variant, target: bytes) -> None:
    enc, mac = _keys(v, "target")
    keys = v.key_params(enc, mac)
    g = fam.group(
        "truncated", f"every prefix of the {len(target)}-byte target, 0..{len(target) - 1}"
    )
    for n in range(len(target)):
        code = _length_error(n)
        g.add(
            v.unwrap_op,
            {**keys, "wrapped": target[:n].hex()},
            comment=f"first {n} bytes of the target",
            requirements=_length_reqs(v, code),
            flags=["TRUNCATED"],
            error=code,
        )
    g = fam.group("extended", "the target with 1..16 bytes appended")
    for k in range(1, 17):
        code = _length_error(len(target) + k)
        tail = drbg.derive(f"{v.family}/extended-{k}", k)
        g.add(
            v.unwrap_op,
            {**keys, "wrapped": (target + tail).hex()},
            comment=f"target + {k} byte(s) D('{v.family}/extended-{k}', {k})",
            requirements=_length_reqs(v, code),
            flags=["EXTENDED"],
            error=code,
        )


def _bad_paddings(fam: Family, v: Variant) -> None:
    g = fam.group("bad_padding", "valid HMAC over a ciphertext whose padding is not PKCS#7")
    enc, mac = _keys(v, "padding")
    keys = v.key_params(enc, mac)
    for i, (what, padded) in enumerate(common.BAD_PADDINGS):
        iv = drbg.derive(f"{v.family}/padding-{i}/iv", 16)
        g.add(
            v.unwrap_op,
            {**keys, "wrapped": unpadded_wrap(enc, mac, iv, padded).hex()},
            comment=f"decrypted padding: {what}",
            requirements=["WRAP_08", *v.unwrap_reqs[:1]],
            flags=["BAD_PADDING_VALID_HMAC"],
            error="bad_padding",
        )
    # The 2020 observation: a 1-byte secret, last IV byte changed so the padding reads 0x01.
    plain = b"a"
    iv = drbg.derive(f"{v.family}/padding-forged/iv", 16)
    padded = plain + b"\x0f" * 15
    wrapped = bytearray(unpadded_wrap(enc, mac, iv, padded))
    wrapped[47] ^= 0x0F ^ 0x01  # the last IV byte: plaintext byte 15 becomes 0x01
    g.add(
        v.unwrap_op,
        {**keys, "wrapped": bytes(wrapped).hex()},
        comment="1-byte secret 'a', last IV byte changed: padding forged, 'a' + fourteen 0x0f",
        requirements=["WRAP_04", "WRAP_08", "SEC_IV"],
        flags=["IV_NOT_AUTHENTICATED", "PADDING_FORGED_VIA_IV"],
        expected={"plaintext": (b"a" + b"\x0f" * 14).hex()},
    )


def _wrong_keys(fam: Family, v: Variant, target: bytes) -> None:
    g = fam.group("wrong_key", "the intact target unwrapped under other keys")
    enc, mac = _keys(v, "target")
    other_enc, other_mac = _keys(v, "other")
    cases = [
        ("another HMAC key, the right encryption key", enc, other_mac, "hmac_mismatch"),
        ("another encryption key, the right HMAC key", other_enc, mac, "bad_padding"),
        ("both keys from another label", other_enc, other_mac, "hmac_mismatch"),
        ("the two halves swapped", mac, enc, "hmac_mismatch"),
    ]
    for what, e, m, code in cases:
        g.add(
            v.unwrap_op,
            {**v.key_params(e, m), "wrapped": target.hex()},
            comment=f"{what} (other keys: label '{v.family}/other')",
            requirements=[{"hmac_mismatch": "WRAP_07", "bad_padding": "WRAP_08"}[code]],
            flags=["WRONG_KEY"],
            error=code,
        )


def build_wrap() -> Family:
    return build(WRAP)


def build_sql_wrap() -> Family:
    fam = build(SQL_WRAP)
    g = fam.group("sql_specific", "what pg_wrap/pg_unwrap add to the wrap format")
    enc, mac = _keys(SQL_WRAP, "target")
    keys = SQL_WRAP.key_params(enc, mac)
    for n in (1, 32, 47, 48, 63):
        g.add(
            "sql_unwrap",
            {**keys, "wrapped": drbg.derive(f"sql_wrap/short-{n}", n).hex()},
            comment=f"{n} bytes of D('sql_wrap/short-{n}', {n}): rejected before anything else",
            requirements=["SQL_02", "WRAP_05"],
            error="wrapped_too_short",
        )
    for label, plain, what in (
        ("latin1", "café".encode("latin-1"), "Latin-1 bytes, not valid UTF-8"),
        ("binary", bytes(range(256)), "every byte value 0x00..0xff once"),
        ("overlong", b"\xc0\xaf\xed\xa0\x80", "overlong and surrogate UTF-8 encodings"),
    ):
        iv = drbg.derive(f"sql_wrap/{label}/iv", 16)
        out = g.add(
            "sql_wrap",
            {**keys, "plaintext": plain.hex(), "iv": iv.hex()},
            comment=f"wrap {what}",
            requirements=["SQL_01", "SQL_04"],
        )
        g.add(
            "sql_unwrap",
            {**keys, "wrapped": out["wrapped"]},
            comment=f"unwrap {what}: bytes come back unchanged, no encoding check",
            requirements=["SQL_04"],
            expected={"plaintext": plain.hex()},
        )
    return fam
