"""Key-check values: an opt-in way for an operator to notice that an internal key changed.

The 2020 format's HMAC does not cover the IV, so a modified IV in a key file silently changes
the key it opens to, and startup cannot notice (spec finding SEC_IV); two key files swapped
with their ids go unnoticed too (SEC_RECORD_ID). A *key-check file*, kept outside
``pg_cryptokeys``, records one value per internal key::

    pgkms-key-check/1
    0 <hex of KCV(SQL key)>
    1 <hex of KCV(block key)>
    2 <hex of KCV(WAL key)>

    KCV(key) = HMAC-SHA256(key = the 64-byte internal key, message = KCV_LABEL)[0:16]

``pgkms verify --save-key-check FILE`` writes it after a successful startup;
``pgkms verify --key-check FILE`` compares the keys the passphrase opens with it and fails with
``key_check_mismatch`` when one differs. The keys never change (KEY_02: rotation re-wraps
them), so one file stays valid across rotations. The 2020 format is untouched and nothing else
reads the file; it is an operator's tool of the reference CLI, not a conformance requirement.

Threat model (spec chapter "Security considerations", SEC_IV): it detects an attacker who can
modify files in PGDATA (kind b) as long as they cannot also modify the key-check file, so keep
it where PGDATA's writers cannot write (beside the passphrase in a secrets manager, on
read-only media). It detects nothing changed before the file was saved, and only when
``verify`` is run with it. It reveals nothing usable about the keys: each value is a truncated
HMAC-SHA256 output under a 64-byte random key, and confirming a guess of that key is as hard
as guessing 64 random bytes.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re

from pgkms.errors import InputError, KmsError, StorageError
from pgkms.fs import FileSystem, OsFileSystem
from pgkms.internal_keys import InternalKeys
from pgkms.shown import shown

KCV_LABEL = b"pgkms key check value v1"
KCV_LEN = 16  # bytes of the HMAC kept: a forgery without the key succeeds with p = 2**-128
HEADER = "pgkms-key-check/1"
_LINE = re.compile(r"^([0-2]) ([0-9a-f]{32})$")
_NAMES = {0: "SQL key", 1: "block key", 2: "WAL key"}
FILE_LEN = len(HEADER) + 1 + 3 * (2 + 2 * KCV_LEN + 1)  # the exact size of every such file


class KeyCheckMismatch(KmsError):
    """A key the passphrase opens differs from the one the key-check file recorded (CLI only)."""

    code = "key_check_mismatch"


def key_check_values(keys: InternalKeys) -> dict[int, bytes]:
    return {
        int(key_id): hmac.new(secret.reveal(), KCV_LABEL, hashlib.sha256).digest()[:KCV_LEN]
        for key_id, secret in keys.by_id().items()
    }


def render(keys: InternalKeys) -> str:
    values = key_check_values(keys)
    return HEADER + "\n" + "".join(f"{i} {values[i].hex()}\n" for i in sorted(values))


def save(path: str, keys: InternalKeys, fs: FileSystem | None = None) -> None:
    """Write a new key-check file, mode 0600, durably; an existing file is never replaced."""
    fs = fs or OsFileSystem()
    if fs.stat(path) is not None:
        raise InputError(
            f"{shown(path)}: exists already; a key-check file is never replaced (the keys do "
            "not change: compare with --key-check instead)"
        )
    fs.create_file(path, render(keys).encode("ascii"), 0o600)  # exclusive: no race replaces
    fs.fsync_file(path)
    fs.fsync_dir(os.path.dirname(path.rstrip("/")) or ".")  # the new entry survives a crash


def load(path: str, fs: FileSystem | None = None) -> dict[int, bytes]:
    """Read a key-check file; anything but the exact format is refused, naming what is wrong."""
    fs = fs or OsFileSystem()
    st = fs.stat(path)
    if st is None:
        raise StorageError(f"{shown(path)}: cannot read the key-check file: it does not exist")
    if st.kind == "file" and st.size != FILE_LEN:
        raise InputError(
            f"{shown(path)}: not a key-check file ({st.size} bytes, expected {FILE_LEN})"
        )
    data = fs.read_file(path)  # no link followed, no FIFO opened, a bounded read
    try:
        lines = data.decode("ascii").splitlines()
    except UnicodeDecodeError:
        raise InputError(f"{shown(path)}: not a key-check file (not ASCII text)") from None
    if not lines or lines[0] != HEADER:
        raise InputError(f"{shown(path)}: not a key-check file (line 1 is not {HEADER})")
    values: dict[int, bytes] = {}
    for number, line in enumerate(lines[1:], start=2):
        match = _LINE.match(line)
        if match is None or int(match.group(1)) in values:
            raise InputError(
                f"{shown(path)}: line {number}: expected a new key id 0..2, a space and "
                f"{2 * KCV_LEN} lower-case hex digits"
            )
        values[int(match.group(1))] = bytes.fromhex(match.group(2))
    if sorted(values) != [0, 1, 2]:
        raise InputError(f"{shown(path)}: expected the values of keys 0, 1 and 2")
    return values


def check(path: str, keys: InternalKeys, fs: FileSystem | None = None) -> None:
    """Compare every key with the file (in constant time); name the first key that differs."""
    recorded = load(path, fs)
    for key_id, value in sorted(key_check_values(keys).items()):
        if not hmac.compare_digest(value, recorded[key_id]):
            raise KeyCheckMismatch(
                f"key {key_id} ({_NAMES[key_id]}): the key the passphrase opens is not the one "
                f"{shown(path)} recorded: a key file was modified (an IV changed, SEC_IV) or "
                "replaced since the file was saved"
            )
