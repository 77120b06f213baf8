"""Byte equality: the two implementations produce identical bytes from identical inputs.

Inputs are generated (passphrases of 64..1024 arbitrary bytes, keys, IVs, plaintexts of 0..64 KiB
including every length around a block boundary) and randomness is injected, so every output of
one implementation must equal the other's byte for byte.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pgkms_conformance.ids import LOCK_FILE_NAME

from tests.differential import strategies as s
from tests.differential.twins import INDEPENDENT, REFERENCE


def tree(root: Path) -> dict[str, tuple[int, bytes]]:
    """Every entry under ``root``: permission bits and content.

    The lock file is left out, as the spec's listings leave it out: it holds no key state, and
    whether a procedure refused before its lock step (a too-short passphrase) created it is
    not specified. Where it exists it must be 0600 all the same.
    """
    out: dict[str, tuple[int, bytes]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            if p == root / LOCK_FILE_NAME:
                assert p.stat().st_mode & 0o7777 == 0o600, "the lock file must be mode 0600"
                continue
            data = p.read_bytes() if p.is_file() else b""
            out[str(p.relative_to(root))] = (p.stat().st_mode & 0o7777, data)
    return out


@pytest.mark.req("KDF_01")
@given(passphrase=st.binary(max_size=2048))
def test_derived_keys_are_identical(passphrase: bytes) -> None:
    ref, ind = REFERENCE.derive(passphrase), INDEPENDENT.derive(passphrase)
    assert ref.ok
    assert ref == ind


@pytest.mark.req("WRAP_01", "WRAP_02", "WRAP_04", "WRAP_05", "WRAP_08")
@given(enc=s.half_keys, mac=s.half_keys, iv=s.ivs, plaintext=s.plaintexts())
def test_wrapped_values_are_identical(enc: bytes, mac: bytes, iv: bytes, plaintext: bytes) -> None:
    ref = REFERENCE.wrap(enc, mac, plaintext, iv)
    assert ref.ok
    assert INDEPENDENT.wrap(enc, mac, plaintext, iv) == ref
    assert isinstance(ref.value, bytes)
    assert len(ref.value) == 48 + 16 * (len(plaintext) // 16 + 1)
    # Cross-acceptance: each opens the other's output (the same bytes, so one check each).
    assert REFERENCE.unwrap(enc, mac, ref.value).value == plaintext
    assert INDEPENDENT.unwrap(enc, mac, ref.value).value == plaintext


@pytest.mark.req("WRAP_02")
@pytest.mark.parametrize("length", [*range(0, 50), 255, 256, 257, 65535, 65536])
def test_every_length_near_a_block_boundary(length: int) -> None:
    enc, mac, iv = bytes(range(32)), bytes(range(32, 64)), bytes(range(16))
    plaintext = bytes(i % 251 for i in range(length))
    ref = REFERENCE.wrap(enc, mac, plaintext, iv)
    assert ref == INDEPENDENT.wrap(enc, mac, plaintext, iv)
    assert INDEPENDENT.unwrap(enc, mac, ref.value).value == plaintext  # type: ignore[arg-type]


@pytest.mark.req("SQL_01", "SQL_02", "SQL_04")
@given(key=s.internal_keys, iv=s.ivs, plaintext=s.plaintexts())
def test_sql_wrap_is_identical(key: bytes, iv: bytes, plaintext: bytes) -> None:
    ref = REFERENCE.sql_wrap(key, plaintext, iv)
    assert ref.ok
    assert INDEPENDENT.sql_wrap(key, plaintext, iv) == ref
    assert INDEPENDENT.sql_unwrap(key, ref.value).value == plaintext  # type: ignore[arg-type]
    assert REFERENCE.sql_unwrap(key, ref.value).value == plaintext  # type: ignore[arg-type]


@pytest.mark.req("DISK_03", "DISK_04")
@given(key_id=st.integers(0, 2**32 - 1), wrapped_key=st.binary(min_size=128, max_size=128))
def test_records_are_identical(key_id: int, wrapped_key: bytes) -> None:
    ref = REFERENCE.encode_record(key_id, wrapped_key)
    assert INDEPENDENT.encode_record(key_id, wrapped_key) == ref
    assert isinstance(ref.value, bytes)
    for file_id in (None, 0, 1, 2, key_id):
        assert REFERENCE.decode_record(ref.value, file_id) == INDEPENDENT.decode_record(
            ref.value, file_id
        )


@pytest.mark.req("PASS_04", "PASS_05", "PASS_06", "PASS_07")
@given(
    passphrase=st.one_of(
        st.binary(max_size=1100),
        st.integers(0, 3000).map(lambda n: bytes([n % 256]) * n),
    ),
    purpose=st.sampled_from(["bootstrap", "startup", "rotation"]),
)
def test_passphrase_rules_are_identical(passphrase: bytes, purpose: str) -> None:
    assert REFERENCE.check_passphrase(passphrase, purpose) == INDEPENDENT.check_passphrase(
        passphrase, purpose
    )


@pytest.mark.req("PASS_02")
@given(command=st.text(alphabet=st.sampled_from("%p%x a\\'\"$"), max_size=40) | st.text())
def test_substitution_is_identical(command: str) -> None:
    assert REFERENCE.substitute(command) == INDEPENDENT.substitute(command)


@pytest.mark.req("BOOT_03", "BOOT_04", "DISK_01", "DISK_02", "ROT_03", "KEY_02")
@given(
    passphrase=s.passphrases,
    new_passphrase=s.passphrases,
    keys=s.three_keys,
    boot_ivs=s.three_ivs,
    rot_ivs=s.three_ivs,
)
def test_bootstrapped_and_rotated_directories_are_identical(
    passphrase: bytes,
    new_passphrase: bytes,
    keys: list[bytes],
    boot_ivs: list[bytes],
    rot_ivs: list[bytes],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ref_dir, ind_dir = Path(tmp, "ref"), Path(tmp, "ind")
        ref_dir.mkdir()
        ind_dir.mkdir()
        ref = REFERENCE.bootstrap(str(ref_dir), passphrase, keys, boot_ivs)
        ind = INDEPENDENT.bootstrap(str(ind_dir), passphrase, keys, boot_ivs)
        assert ref.ok
        assert ref == ind
        assert tree(ref_dir) == tree(ind_dir)
        assert tree(ref_dir)["pg_cryptokeys"][0] == 0o700
        # Cross-acceptance: each opens the directory the other wrote.
        assert REFERENCE.startup(str(ind_dir), passphrase).value == tuple(keys)
        assert INDEPENDENT.startup(str(ref_dir), passphrase).value == tuple(keys)
        # Rotation by each, opened by the other; the files are again identical.
        assert REFERENCE.rotate(str(ref_dir), passphrase, new_passphrase, rot_ivs).ok
        assert INDEPENDENT.rotate(str(ind_dir), passphrase, new_passphrase, rot_ivs).ok
        assert tree(ref_dir) == tree(ind_dir)
        assert INDEPENDENT.startup(str(ref_dir), new_passphrase).value == tuple(keys)
        assert REFERENCE.startup(str(ind_dir), new_passphrase).value == tuple(keys)
