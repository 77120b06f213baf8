"""Secret hygiene, the filesystem discipline and the error code table (SEC_DIAGNOSTICS, DISK_07,
record codec DISK_03..05, ERR_01)."""

from __future__ import annotations

import ast
import struct
from pathlib import Path

import pgkms
import pytest
from pgkms.errors import (
    HexInvalid,
    InputError,
    KmsError,
    RecordIdInvalid,
    RecordIdMismatch,
    RecordSizeInvalid,
    error_codes,
)
from pgkms.internal_keys import InternalKeys
from pgkms.kdf import derive_kek
from pgkms.passphrase import run_passphrase_command
from pgkms.record import KeyRecord, decode_record, encode_record
from pgkms.secret import Secret
from pgkms.tools.adapter import MalformedRequest

PACKAGE = Path(pgkms.__file__).parent


def test_reprs_never_show_secrets() -> None:
    value = b"canary-secret-value-0123456789"
    secret = Secret(value)
    kek = derive_kek(Secret(value * 3))
    keys = InternalKeys(secret, secret, secret)
    output = run_passphrase_command("printf canary-secret-value-0123456789")
    for obj in (secret, kek, keys, output):
        for text in (repr(obj), str(obj), f"{obj}"):
            assert "canary" not in text and value.hex() not in text


def test_secrets_compare_and_refuse_hashing() -> None:
    assert Secret(b"a") == Secret(b"a") and Secret(b"a") != Secret(b"b")
    with pytest.raises(TypeError):
        hash(Secret(b"a"))


def test_an_adopted_buffer_is_the_secret_and_views_are_read_only() -> None:
    buffer = bytearray(b"canary-secret-value")
    secret = Secret.adopt(buffer)
    assert secret == Secret(b"canary-secret-value") and len(secret) == 19
    assert "canary" not in repr(secret) and "canary" not in str(secret)
    view = secret.view()
    assert view.readonly and bytes(view) == b"canary-secret-value"
    with pytest.raises(TypeError):
        view[0] = 0
    revealed = secret.reveal()
    assert type(revealed) is bytes and revealed == b"canary-secret-value"
    buffer[0] = ord("C")  # a caller that broke the hand-over no longer reaches the revealed bytes
    assert secret.reveal() == b"canary-secret-value" and bytes(Secret(b"x").view()) == b"x"


def test_error_codes_are_unique_and_snake_case() -> None:
    codes = error_codes()
    assert all(code.replace("_", "").isalpha() and code.islower() for code in codes)
    assert {
        "wrong_passphrase",
        "hmac_mismatch",
        "bad_padding",
        "wrapped_too_short",
        "record_size_invalid",
        "record_id_mismatch",
        "key_file_missing",
        "unexpected_file",
        "passphrase_too_short",
        "passphrase_too_long",
        "passphrase_command_failed",
    } <= set(codes)


@pytest.mark.req("ERR_01")
def test_error_code_table_is_complete_and_stable() -> None:
    before = error_codes()
    # Raised itself (a bad injected draw) although HexInvalid subclasses it: in the table.
    assert before["input_invalid"] is InputError
    assert before["hex_invalid"] is HexInvalid
    # Categories are never raised; the adapter's protocol errors (loaded here, KmsError
    # subclasses too) belong to the protocol, not to the table.
    assert not {"kms_error", "passphrase_error", "unwrap_error", "key_store_error"} & set(before)
    assert issubclass(MalformedRequest, KmsError)
    assert MalformedRequest.code not in before


@pytest.mark.req("DISK_03", "DISK_04", "DISK_05")
def test_record_codec() -> None:
    rec = KeyRecord(2, bytes(range(128)))
    data = encode_record(rec)
    assert data[:4] == b"\x02\x00\x00\x00" and len(data) == 132
    assert decode_record(data, 2, "f") == rec
    with pytest.raises(RecordIdMismatch, match="offset 0 is 2, expected 1"):
        decode_record(data, 1, "f")
    with pytest.raises(RecordIdInvalid):
        decode_record(struct.pack("<I", 3) + data[4:], None, "f")
    with pytest.raises(RecordIdInvalid):  # a big-endian id reads as 2**24 * id
        decode_record(struct.pack(">I", 1) + data[4:], 1, "f")
    with pytest.raises(RecordSizeInvalid, match="found 133"):
        decode_record(data + b"\0", 2, "f")


FS_CALLS = {
    "open",
    "mkdir",
    "rename",
    "unlink",
    "rmdir",
    "remove",
    "listdir",
    "fsync",
    "replace",
    "makedirs",
    "rmtree",
    "scandir",
    "stat",
    "lstat",
    "chmod",
    "write_bytes",
    "read_bytes",
    "write_text",
    "read_text",
}
# fs.py touches the filesystem, lock.py too (reached only through FileSystem.lock); fstrace.py
# wraps a FileSystem
ALLOWED = {"fs.py", "lock.py", "tools/fstrace.py"}


@pytest.mark.req("DISK_07")
def test_no_module_bypasses_the_filesystem_interface() -> None:
    """Every disk effect must go through pgkms.fs, or the crash explorer would miss it."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = path.relative_to(PACKAGE).as_posix()
        if module in ALLOWED:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                owner = (
                    func.value.id
                    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
                    else ""
                )
                if name in FS_CALLS and owner in {"", "os", "shutil", "Path", "pathlib"}:
                    offenders.append(f"{module}:{node.lineno} {owner}.{name}")
    # The passphrase command reads a pipe (not the key store), and the demo makes its temp dir.
    assert [o for o in offenders if not o.startswith(("passphrase.py", "tools/demo.py"))] == []
