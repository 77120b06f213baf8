"""Which requirement a wrong answer breaks: the most specific one, judged from what differs.

A failure is charged to one requirement (its *primary* one) and cites the others its check
covers. Two judgements are shared by the vector runner and the harness's stages:

- a wrong *wrapped value* is charged by the first region that differs, in the order the value
  is computed (``WRAP_LAYOUT``): its length (the padding rule fixes ``|C|``), the IV (drawn
  first), the ciphertext (from the IV), the HMAC (over the ciphertext alone). The regions'
  rules come from the wrap-format chapter: ``T`` is WRAP_04's, ``IV`` WRAP_03's, ``C``
  WRAP_02's; the right regions in the wrong places break the layout itself, WRAP_01.
- a wrong *error code* is charged to the rule that prescribes the code the reference gave (the
  IUT should have refused that way), or, when the reference accepted, to the rule of the check
  that fired wrongly.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from pgkms.layout import AES_BLOCK, WRAP_LAYOUT, WRAP_OVERHEAD

# WRAP_LAYOUT field -> the requirement that defines its content (spec: wrap-format chapter).
REGION_RULES: Final = {"hmac": "WRAP_04", "iv": "WRAP_03", "ciphertext": "WRAP_02"}
LENGTH_RULE: Final = "WRAP_02"  # |C| = 16 * (floor(|P| / 16) + 1)
LAYOUT_RULE: Final = "WRAP_01"  # W = T || IV || C
# The order a wrap computes its regions in: a region depends only on those before it.
CAUSAL_ORDER: Final = ("iv", "ciphertext", "hmac")

# error code -> the rules that prescribe it, the most specific first (pg_unwrap's own before
# the wrap format's; bootstrap/rotation's length rules before startup's).
CODE_RULES: Final[dict[str, tuple[str, ...]]] = {
    "wrapped_too_short": ("SQL_02", "WRAP_05"),
    "wrapped_length_invalid": ("WRAP_06",),
    "hmac_mismatch": ("WRAP_07",),
    "bad_padding": ("WRAP_08",),
    "record_size_invalid": ("DISK_08",),
    "record_id_invalid": ("DISK_04",),
    "record_id_mismatch": ("DISK_05",),
    "key_length_invalid": ("KEY_03",),
    "unexpected_file": ("DISK_06",),
    "keys_already_exist": ("BOOT_01",),
    "wrong_passphrase": ("START_03", "ROT_01"),
    "no_valid_key_set": ("REC_05",),
    "passphrase_too_short": ("PASS_04", "PASS_07"),
    "passphrase_too_long": ("PASS_05", "PASS_06"),
    # A command that fails where it should not: its exit status misjudged (PASS_03), or a long
    # output not drained so that the writer died of SIGPIPE (PASS_11, cited by those vectors).
    "passphrase_command_failed": ("PASS_03", "PASS_11"),
}


def _regions(value: bytes) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for f in WRAP_LAYOUT:
        end = None if f.size is None else f.offset + f.size
        out[f.name] = value[f.offset : end]
    return out


def wrapped_rule(expected: bytes, found: bytes) -> str:
    """The requirement a wrapped value ``found`` (instead of ``expected``) breaks first."""
    if len(found) != len(expected):
        # Whole blocks after T || IV: the padding rule gave the wrong |C|; else not the layout.
        blocks = len(found) >= WRAP_OVERHEAD and (len(found) - WRAP_OVERHEAD) % AES_BLOCK == 0
        return LENGTH_RULE if blocks else LAYOUT_RULE
    want, got = _regions(expected), _regions(found)
    if want != got and all(part in found for part in want.values()):
        return LAYOUT_RULE  # the right parts, in the wrong places
    for name in CAUSAL_ORDER:
        if want[name] != got[name]:
            return REGION_RULES[name]
    return LAYOUT_RULE


def code_rule(code: str | None, cited: Iterable[str]) -> str | None:
    """The rule among ``cited`` that prescribes error ``code``; None when none does."""
    candidates = CODE_RULES.get(code or "", ())
    cited = tuple(cited)
    return next((r for r in candidates if r in cited), None)


def charged(primary: str | None, cited: Iterable[str]) -> tuple[str, ...]:
    """``cited`` with ``primary`` first (added if the check did not cite it)."""
    rest = tuple(dict.fromkeys(cited))
    if primary is None:
        return rest
    return (primary, *(r for r in rest if r != primary))
