"""Demonstrations of the spec's security findings (spec chapter "Security considerations").

Each test shows, on the reference implementation, either what a weakness of the 2020 format
still lets an attacker do (the format cannot change: SEC_IV, SEC_KDF, SEC_RECORD_ID,
SEC_ROTATION_SCOPE), or that a conforming implementation avoids a defect of the 2020 procedures
(SEC_RECOVERY_COUNT, SEC_FSYNC, SEC_MESSAGES, SEC_PROMPT, SEC_TRUNCATE). The security chapter
cites these tests by name.
"""

from __future__ import annotations

import hashlib
import hmac
import shutil
from pathlib import Path

import pytest
from pgkms.bootstrap import bootstrap
from pgkms.errors import (
    HmacMismatch,
    KeyFileMissing,
    PassphraseTooLong,
    RecordIdMismatch,
    WrongPassphrase,
)
from pgkms.internal_keys import InternalKeys
from pgkms.layout import PASSPHRASE_PROMPT
from pgkms.passphrase import substitute
from pgkms.randomness import ScriptedRandom
from pgkms.rotation import rotate
from pgkms.secret import Secret
from pgkms.sqlwrap import pg_unwrap, pg_wrap
from pgkms.startup import startup

from tests.reference.helpers import NEW, OLD, RecordingFileSystem, snapshot


def _bytes(label: str, n: int) -> bytes:
    """Deterministic test bytes (the vectors' convention: SHAKE-128 of a label)."""
    return hashlib.shake_128(b"pgkms-tests/findings/" + label.encode()).digest(n)


KEYS = [_bytes(f"key{i}", 64) for i in range(3)]
IVS = [_bytes(f"iv{i}", 16) for i in range(3)]


def _init(datadir: Path, passphrase: bytes = OLD) -> InternalKeys:
    return bootstrap(str(datadir), Secret(passphrase), random=ScriptedRandom([*KEYS, *IVS]))


def _key_file(datadir: Path, name: str) -> Path:
    return datadir / "pg_cryptokeys" / name


def _raw(keys: InternalKeys) -> list[bytes]:
    return [k.reveal() for k in (keys.sql, keys.block, keys.wal)]


# --- weaknesses of the format -------------------------------------------------------------------


@pytest.mark.req("WRAP_04", "START_02")
def test_sec_iv_flipped_key_file_iv_changes_the_key_silently(tmp_path: Path) -> None:
    """SEC_IV: one flipped IV bit in a key file passes startup and alters the internal key."""
    _init(tmp_path)
    path = _key_file(tmp_path, "0001")
    record = bytearray(path.read_bytes())
    record[4 + 32] ^= 0x01  # first IV byte, after the 4-byte id and the 32-byte HMAC
    path.write_bytes(bytes(record))
    opened = _raw(startup(str(tmp_path), Secret(OLD)))
    expected = bytearray(KEYS[1])
    expected[0] ^= 0x01
    assert opened == [KEYS[0], bytes(expected), KEYS[2]]


@pytest.mark.req("WRAP_04", "WRAP_08", "SQL_01")
def test_sec_iv_forges_padding_of_a_one_byte_secret(tmp_path: Path) -> None:
    """SEC_IV: editing the last IV byte of a wrapped 1-byte secret forges a longer plaintext."""
    keys = _init(tmp_path)
    wrapped = bytearray(pg_wrap(keys, Secret(b"a"), ScriptedRandom([IVS[0]])))
    # The padding is fifteen 0x0f; turning the last one into 0x01 leaves a valid 1-byte pad.
    wrapped[32 + 15] ^= 0x0F ^ 0x01
    assert pg_unwrap(keys, bytes(wrapped)).reveal() == b"a" + b"\x0f" * 14


@pytest.mark.req("KDF_01", "DISK_03")
def test_sec_kdf_guess_is_checked_offline_with_one_hash(tmp_path: Path) -> None:
    """SEC_KDF: a key file alone lets anyone test a guess with one SHA-512 and one HMAC."""
    _init(tmp_path)
    record = _key_file(tmp_path, "0000").read_bytes()
    tag, ciphertext = record[4:36], record[4 + 48 :]

    def guess_matches(guess: bytes) -> bool:
        mac_key = hashlib.sha512(guess).digest()[32:]  # no salt, no iterations
        return hmac.compare_digest(tag, hmac.new(mac_key, ciphertext, hashlib.sha256).digest())

    assert [guess_matches(g) for g in (NEW, OLD[:-1] + b"x", OLD)] == [False, False, True]


@pytest.mark.req("DISK_05")
def test_sec_record_id_plain_swap_is_caught(tmp_path: Path) -> None:
    """SEC_RECORD_ID / DEV_RECORD_ID: swapped file contents are caught by the name check."""
    _init(tmp_path)
    a, b = _key_file(tmp_path, "0000"), _key_file(tmp_path, "0001")
    data_a, data_b = a.read_bytes(), b.read_bytes()
    a.write_bytes(data_b)
    b.write_bytes(data_a)
    with pytest.raises(RecordIdMismatch, match="0000"):
        startup(str(tmp_path), Secret(OLD))


@pytest.mark.req("DISK_05", "START_03")
def test_sec_record_id_consistent_swap_goes_unnoticed(tmp_path: Path) -> None:
    """SEC_RECORD_ID: swapping wrapped keys and keeping ids consistent swaps the keys undetected."""
    _init(tmp_path)
    a, b = _key_file(tmp_path, "0001"), _key_file(tmp_path, "0002")
    data_a, data_b = a.read_bytes(), b.read_bytes()
    a.write_bytes(data_a[:4] + data_b[4:])
    b.write_bytes(data_b[:4] + data_a[4:])
    assert _raw(startup(str(tmp_path), Secret(OLD))) == [KEYS[0], KEYS[2], KEYS[1]]


@pytest.mark.req("KEY_02", "ROT_03")
def test_sec_rotation_scope_old_files_and_passphrase_still_open_the_keys(tmp_path: Path) -> None:
    """SEC_ROTATION_SCOPE: a backup of the old key files opens, under the old passphrase, the
    very keys the cluster uses after rotation."""
    cluster, backup = tmp_path / "cluster", tmp_path / "backup"
    cluster.mkdir()
    backup.mkdir()
    _init(cluster)
    shutil.copytree(cluster / "pg_cryptokeys", backup / "pg_cryptokeys")
    rotate(str(cluster), Secret(OLD), Secret(NEW), random=ScriptedRandom(IVS))
    with pytest.raises(WrongPassphrase):
        startup(str(cluster), Secret(OLD))
    after = _raw(startup(str(cluster), Secret(NEW)))
    assert after == _raw(startup(str(backup), Secret(OLD))) == KEYS


# --- defects of the 2020 procedures, avoided --------------------------------------------------


@pytest.mark.req("REC_02", "REC_03", "REC_05")
@pytest.mark.parametrize(
    "tmp_files",
    [
        pytest.param({n: bytes(132) for n in ("0000", "0001", "0002")}, id="three-zeroed"),
        pytest.param({"0000": b"", "0001": b"", "0002": b""}, id="three-empty"),
        pytest.param({"0000": b"\x00" * 7}, id="one-torn"),
    ],
)
def test_sec_recovery_count_three_corrupt_files_do_not_win(
    tmp_path: Path, tmp_files: dict[str, bytes]
) -> None:
    """SEC_RECOVERY_COUNT: whatever pg_cryptokeys_tmp holds, a valid pg_cryptokeys is kept."""
    _init(tmp_path)
    before = snapshot(tmp_path / "pg_cryptokeys")
    tmp = tmp_path / "pg_cryptokeys_tmp"
    tmp.mkdir()
    for name, data in tmp_files.items():
        (tmp / name).write_bytes(data)
    assert _raw(startup(str(tmp_path), Secret(OLD))) == KEYS
    assert not tmp.exists()
    assert snapshot(tmp_path / "pg_cryptokeys") == before


@pytest.mark.req("BOOT_04", "ROT_04", "ROT_05", "ROT_06", "DISK_07")
def test_sec_fsync_rotation_issues_every_durability_point(tmp_path: Path) -> None:
    """SEC_FSYNC / DEV_FSYNC: bootstrap and rotation fsync files, key directories and PGDATA
    in the order the spec's numbered steps give."""
    d = str(tmp_path)
    cur, tmp = f"{d}/pg_cryptokeys", f"{d}/pg_cryptokeys_tmp"
    fs = RecordingFileSystem()
    bootstrap(d, Secret(OLD), fs, ScriptedRandom([*KEYS, *IVS]))

    def write_set(directory: str) -> list[tuple[str, str]]:
        ops = [("mkdir", directory)]
        for name in ("0000", "0001", "0002"):
            ops += [("create", f"{directory}/{name}"), ("fsync", f"{directory}/{name}")]
        return [*ops, ("fsync_dir", directory), ("fsync_dir", d)]

    assert fs.log == [*write_set(tmp), ("rename", f"{tmp} -> {cur}"), ("fsync_dir", d)]  # BOOT_04
    fs.log.clear()
    rotate(d, Secret(OLD), Secret(NEW), fs, ScriptedRandom(IVS))
    removal = [("unlink", f"{cur}/{n}") for n in ("0000", "0001", "0002")]
    removal += [("fsync_dir", cur), ("rmdir", cur), ("fsync_dir", d)]
    assert fs.log == [
        *write_set(tmp),
        *removal,
        ("rename", f"{tmp} -> {cur}"),
        ("fsync_dir", d),
    ]


@pytest.mark.req("DISK_06", "START_03")
def test_sec_messages_missing_file_is_not_a_wrong_passphrase(tmp_path: Path) -> None:
    """SEC_MESSAGES / DEV_MESSAGES: a missing file, a damaged file and a wrong passphrase are
    three different failures."""
    _init(tmp_path)
    with pytest.raises(WrongPassphrase):
        startup(str(tmp_path), Secret(NEW))
    damaged = _key_file(tmp_path, "0002")
    record = bytearray(damaged.read_bytes())
    record[-1] ^= 0x80  # last ciphertext byte: the HMAC no longer verifies
    damaged.write_bytes(bytes(record))
    with pytest.raises(HmacMismatch, match="0002"):
        startup(str(tmp_path), Secret(OLD))
    _key_file(tmp_path, "0001").unlink()
    with pytest.raises(KeyFileMissing, match="0001"):
        startup(str(tmp_path), Secret(OLD))


@pytest.mark.req("PASS_02")
def test_sec_prompt_keeps_the_rest_of_the_command() -> None:
    """SEC_PROMPT / DEV_PROMPT: the whole prompt is substituted and the command goes on."""
    command = 'get-pass --prompt "%p" --vault prod'
    assert substitute(command) == f'get-pass --prompt "{PASSPHRASE_PROMPT}" --vault prod'
    assert PASSPHRASE_PROMPT.endswith("phrase:")


@pytest.mark.req("PASS_05", "PASS_06", "BOOT_02")
def test_sec_truncate_rejected_at_bootstrap_cut_at_startup(tmp_path: Path) -> None:
    """SEC_TRUNCATE / DEV_TRUNCATE: bootstrap refuses 1025 bytes and writes nothing; startup
    cuts, so keys wrapped under the first 1024 bytes open with any longer output."""
    head = _bytes("long passphrase", 1024)
    with pytest.raises(PassphraseTooLong, match="1025"):
        _init(tmp_path, head + b"x")
    assert list(tmp_path.iterdir()) == []
    _init(tmp_path, head)  # what the 2020 patch wrote for any longer output
    assert _raw(startup(str(tmp_path), Secret(head + b"anything after byte 1024"))) == KEYS
