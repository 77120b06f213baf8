"""Key directories as listings, built with the reference's own KDF, wrap and record encoder.

The directory families (``key_directory``, ``rotation``) start from these listings and damage
them in named ways. All values come from the vectors' byte source, so a listing here is the
same on every machine.
"""

from __future__ import annotations

from collections.abc import Sequence

from pgkms.kdf import WrapKeys, derive_kek
from pgkms.randomness import ScriptedRandom
from pgkms.record import KeyRecord, encode_record
from pgkms.secret import Secret
from pgkms.wrap import wrap

from pgkms_conformance.image import ListingJson
from pgkms_conformance.vectors import drbg

DIR_MODE = 0o700
FILE_MODE = 0o600
KEY_DIR = "pg_cryptokeys"
TMP_DIR = "pg_cryptokeys_tmp"
NAMES = ("0000", "0001", "0002")


def passphrase(label: str, n: int = 80) -> bytes:
    """A printable passphrase ``derive_printable(label, n)``."""
    return drbg.derive_printable(label, n)


def internal_keys(label: str) -> list[bytes]:
    """Three 64-byte internal keys ``D('<label>/key-N', 64)``."""
    return [drbg.derive(f"{label}/key-{i}", 64) for i in range(3)]


def ivs(label: str) -> list[bytes]:
    """Three IVs ``D('<label>/iv-N', 16)``."""
    return [drbg.derive(f"{label}/iv-{i}", 16) for i in range(3)]


def kek(passphrase_bytes: bytes) -> WrapKeys:
    return derive_kek(Secret(passphrase_bytes))


def wrapped_keys(
    passphrase_bytes: bytes, keys: Sequence[bytes], iv_list: Sequence[bytes]
) -> list[bytes]:
    k = kek(passphrase_bytes)
    return [
        wrap(k, Secret(key), ScriptedRandom([iv])) for key, iv in zip(keys, iv_list, strict=True)
    ]


def records(
    passphrase_bytes: bytes, keys: Sequence[bytes], iv_list: Sequence[bytes]
) -> list[bytes]:
    """The three 132-byte records of a key set."""
    return [
        encode_record(KeyRecord(i, w))
        for i, w in enumerate(wrapped_keys(passphrase_bytes, keys, iv_list))
    ]


def key_dir(
    contents: Sequence[bytes],
    directory: str = KEY_DIR,
    names: Sequence[str] = NAMES,
    dir_mode: int = DIR_MODE,
    file_mode: int = FILE_MODE,
) -> ListingJson:
    """A listing of ``directory`` holding ``contents`` under ``names``."""
    out: ListingJson = {f"{directory}/": {"mode": dir_mode}}
    for name, content in zip(names, contents, strict=True):
        out[f"{directory}/{name}"] = {"mode": file_mode, "content": content.hex()}
    return out


def key_set(
    passphrase_bytes: bytes,
    keys: Sequence[bytes],
    iv_list: Sequence[bytes],
    directory: str = KEY_DIR,
) -> ListingJson:
    """A complete, valid key directory."""
    return key_dir(records(passphrase_bytes, keys, iv_list), directory)


def merge(*listings: ListingJson) -> ListingJson:
    out: ListingJson = {}
    for listing in listings:
        out.update(listing)
    return dict(sorted(out.items()))


def without(listing: ListingJson, *paths: str) -> ListingJson:
    return {p: e for p, e in listing.items() if p not in paths}


def with_content(listing: ListingJson, path: str, content: bytes) -> ListingJson:
    out = dict(listing)
    out[path] = {**out[path], "content": content.hex()}
    return out


def content(listing: ListingJson, path: str) -> bytes:
    return bytes.fromhex(listing[path]["content"])


def rename_dir(listing: ListingJson, old: str, new: str) -> ListingJson:
    """``listing`` with every path under ``old/`` moved under ``new/``."""
    return {(new + p[len(old) :] if p.startswith(old + "/") else p): e for p, e in listing.items()}
