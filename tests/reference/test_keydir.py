"""Bootstrap, the on-disk format and startup (BOOT_*, DISK_*, START_*, KEY_*)."""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
import struct
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from pgkms.bootstrap import bootstrap
from pgkms.errors import (
    HmacMismatch,
    KeyDirectoryMissing,
    KeyFileMissing,
    KeysAlreadyExist,
    KmsError,
    PassphraseTooShort,
    RecordIdInvalid,
    RecordIdMismatch,
    RecordSizeInvalid,
    UnexpectedFile,
    WrongPassphrase,
)
from pgkms.randomness import ScriptedRandom
from pgkms.secret import Secret
from pgkms.startup import startup

from .helpers import NEW, OLD, RecordingFileSystem, snapshot

KEYS = [bytes([i]) * 64 for i in (0xA0, 0xB1, 0xC2)]
IVS = [bytes([i]) * 16 for i in (1, 2, 3)]


def _scripted() -> ScriptedRandom:
    return ScriptedRandom([*KEYS, *IVS])


@pytest.fixture
def datadir(tmp_path: Path) -> Path:
    d = tmp_path / "pgdata"
    d.mkdir()
    bootstrap(str(d), Secret(OLD), random=_scripted())
    return d


@pytest.mark.req(
    "DISK_01", "DISK_02", "DISK_09", "DISK_03", "KDF_01", "WRAP_01", "WRAP_04", "BOOT_03"
)
def test_bootstrap_byte_layout(datadir: Path) -> None:
    keydir = datadir / "pg_cryptokeys"
    assert stat.S_IMODE(keydir.stat().st_mode) == 0o700
    assert sorted(os.listdir(keydir)) == ["0000", "0001", "0002"]
    digest = hashlib.sha512(OLD).digest()
    kek_enc, kek_mac = digest[:32], digest[32:]
    for key_id, (key, iv) in enumerate(zip(KEYS, IVS, strict=True)):
        path = keydir / f"{key_id:04X}"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        data = path.read_bytes()
        assert len(data) == 132
        assert struct.unpack("<I", data[:4]) == (key_id,)  # little-endian id
        tag, file_iv, ciphertext = data[4:36], data[36:52], data[52:]
        assert file_iv == iv
        assert len(ciphertext) == 80  # 64-byte key + a full block of padding
        assert tag == hmac.new(kek_mac, ciphertext, hashlib.sha256).digest()
        dec = Cipher(algorithms.AES(kek_enc), modes.CBC(iv)).decryptor()
        padded = dec.update(ciphertext) + dec.finalize()
        assert padded == key + bytes([16]) * 16


@pytest.mark.req("BOOT_04", "DISK_07")
def test_bootstrap_durability_order(tmp_path: Path) -> None:
    fs = RecordingFileSystem()
    bootstrap(str(tmp_path), Secret(OLD), fs=fs, random=_scripted())
    kd, tmp = f"{tmp_path}/pg_cryptokeys", f"{tmp_path}/pg_cryptokeys_tmp"
    expected = [("mkdir", tmp)]
    for name in ("0000", "0001", "0002"):
        expected += [("create", f"{tmp}/{name}"), ("fsync", f"{tmp}/{name}")]
    expected += [("fsync_dir", tmp), ("fsync_dir", str(tmp_path))]
    expected += [("rename", f"{tmp} -> {kd}"), ("fsync_dir", str(tmp_path))]
    assert fs.log == expected


@pytest.mark.req("BOOT_01")
@pytest.mark.parametrize("existing", ["pg_cryptokeys"])
def test_bootstrap_refuses_existing_keys(tmp_path: Path, existing: str) -> None:
    (tmp_path / existing).mkdir()
    before = snapshot(tmp_path)
    with pytest.raises(KeysAlreadyExist, match=existing):
        bootstrap(str(tmp_path), Secret(OLD))
    assert snapshot(tmp_path) == before


@pytest.mark.req("BOOT_02", "PASS_04")
def test_bootstrap_short_passphrase_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(PassphraseTooShort):
        bootstrap(str(tmp_path), Secret(b"short"))
    assert os.listdir(tmp_path) == []


@pytest.mark.req("START_01", "START_02", "KEY_01")
def test_startup_returns_the_bootstrapped_keys(datadir: Path) -> None:
    keys = startup(str(datadir), Secret(OLD))
    assert [k.reveal() for k in keys.by_id().values()] == KEYS


def _corrupt_flip(d: Path) -> None:
    p = d / "pg_cryptokeys/0001"
    data = bytearray(p.read_bytes())
    data[100] ^= 0x04
    p.write_bytes(bytes(data))


def _set_id(d: Path, name: str, key_id: int) -> None:
    p = d / "pg_cryptokeys" / name
    p.write_bytes(struct.pack("<I", key_id) + p.read_bytes()[4:])


def _swap(d: Path) -> None:
    a, b = d / "pg_cryptokeys/0000", d / "pg_cryptokeys/0002"
    da, db = a.read_bytes(), b.read_bytes()
    a.write_bytes(db)
    b.write_bytes(da)


def _corrupt_all(d: Path) -> None:
    for name in ("0000", "0001", "0002"):
        p = d / "pg_cryptokeys" / name
        p.write_bytes(p.read_bytes()[:40] + bytes(92))


CASES = [
    ("wrong passphrase", None, WrongPassphrase, "START_03"),
    (
        "truncated",
        lambda d: (d / "pg_cryptokeys/0001").write_bytes(bytes(131)),
        RecordSizeInvalid,
        "DISK_08",
    ),
    (
        "oversized",
        lambda d: (d / "pg_cryptokeys/0002").write_bytes(bytes(133)),
        RecordSizeInvalid,
        "DISK_08",
    ),
    ("empty", lambda d: (d / "pg_cryptokeys/0000").write_bytes(b""), RecordSizeInvalid, "DISK_08"),
    ("bit flip", _corrupt_flip, HmacMismatch, "START_03"),
    ("id out of range", lambda d: _set_id(d, "0001", 7), RecordIdInvalid, "DISK_04"),
    ("id of another file", lambda d: _set_id(d, "0001", 2), RecordIdMismatch, "DISK_05"),
    ("swapped files", _swap, RecordIdMismatch, "DISK_05"),
    ("missing file", lambda d: (d / "pg_cryptokeys/0002").unlink(), KeyFileMissing, "DISK_06"),
    (
        "extra file",
        lambda d: (d / "pg_cryptokeys/README").write_bytes(b"x"),
        UnexpectedFile,
        "DISK_06",
    ),
    (
        "extra key id",
        lambda d: (d / "pg_cryptokeys/0003").write_bytes(bytes(132)),
        UnexpectedFile,
        "DISK_06",
    ),
    ("subdirectory", lambda d: (d / "pg_cryptokeys/sub").mkdir(), UnexpectedFile, "DISK_06"),
    (
        "no key directory",
        lambda d: (
            [(d / "pg_cryptokeys" / n).unlink() for n in ("0000", "0001", "0002")]
            and (d / "pg_cryptokeys").rmdir()
        ),
        KeyDirectoryMissing,
        "DISK_06",
    ),
    ("all corrupted", _corrupt_all, WrongPassphrase, "START_03"),
]


@pytest.mark.req("START_04", "ERR_01")
@pytest.mark.parametrize(("name", "damage", "error", "req"), CASES, ids=[c[0] for c in CASES])
def test_startup_failures_have_their_own_code_and_change_nothing(
    datadir: Path, name: str, damage: object, error: type[KmsError], req: str
) -> None:
    if callable(damage):
        damage(datadir)
    passphrase = NEW if name == "wrong passphrase" else OLD
    before = snapshot(datadir)
    with pytest.raises(error) as info:
        startup(str(datadir), Secret(passphrase))
    assert snapshot(datadir) == before
    message = str(info.value)
    assert "\n" not in message and info.value.code in message
    assert OLD.decode() not in message and NEW.decode() not in message


def test_every_failure_kind_has_a_distinct_code() -> None:
    codes = [c[2].code for c in CASES]
    assert len({*codes}) == 8  # wrong passphrase, size, hmac, id x2, missing, unexpected, no dir


@pytest.mark.req("DISK_08", "ERR_01")
def test_size_error_names_the_file_and_sizes(datadir: Path) -> None:
    (datadir / "pg_cryptokeys/0001").write_bytes(bytes(131))
    with pytest.raises(
        RecordSizeInvalid, match=r"pg_cryptokeys/0001: expected 132 bytes, found 131"
    ):
        startup(str(datadir), Secret(OLD))
