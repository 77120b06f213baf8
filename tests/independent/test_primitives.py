"""The independent implementation's crypto and byte formats, against outside known answers
(NIST SP 800-38A, the standard library's hashlib/hmac) rather than the reference."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from Crypto.Cipher import AES
from hypothesis import given
from hypothesis import strategies as st
from pgkms_independent import codec
from pgkms_independent.failures import Code, FormatFailure
from pgkms_independent.hidden import Hidden
from pgkms_independent.primitives import KeyPair, derive, open_sealed, seal

# NIST SP 800-38A F.2.5, CBC-AES256.Encrypt, first block.
NIST_KEY = bytes.fromhex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4")
NIST_IV = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
NIST_P1 = bytes.fromhex("6bc1bee22e409f96e93d7e117393172a")
NIST_C1 = bytes.fromhex("f58c4c04d6e5f1ba779eabfb5f7bfbd6")
MAC_KEY = bytes(range(32))
PAIR = KeyPair(Hidden(NIST_KEY), Hidden(MAC_KEY))


@pytest.mark.req("KDF_01")
@given(passphrase=st.binary(max_size=300))
def test_derivation_is_one_sha512_split_in_halves(passphrase: bytes) -> None:
    digest = hashlib.sha512(passphrase).digest()
    kek = derive(Hidden(passphrase))
    assert kek.cipher_key.expose() == digest[:32]
    assert kek.mac_key.expose() == digest[32:]


@pytest.mark.req("WRAP_01", "WRAP_02", "WRAP_04")
def test_seal_matches_nist_cbc_and_an_hmac_over_the_ciphertext_only() -> None:
    wrapped = seal(PAIR, Hidden(NIST_P1), NIST_IV)
    assert len(wrapped) == 32 + 16 + 32  # one block of data, one block of padding
    assert wrapped[32:48] == NIST_IV
    assert wrapped[48:64] == NIST_C1
    assert wrapped[:32] == hmac.new(MAC_KEY, wrapped[48:], hashlib.sha256).digest()


@pytest.mark.req("WRAP_02")
@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 31, 32, 64, 1000])
def test_sizes_follow_the_padding_rule(size: int) -> None:
    wrapped = seal(PAIR, Hidden(bytes(size)), NIST_IV)
    assert len(wrapped) == codec.sealed_size(size) == 48 + 16 * (size // 16 + 1)
    assert open_sealed(PAIR, wrapped, "v").expose() == bytes(size)


@pytest.mark.req("WRAP_05", "WRAP_06", "WRAP_07", "WRAP_08")
@pytest.mark.parametrize(
    ("blob", "code"),
    [
        (bytes(63), Code.WRAPPED_TOO_SHORT),
        (bytes(0), Code.WRAPPED_TOO_SHORT),
        (bytes(65), Code.WRAPPED_LENGTH_INVALID),
        (bytes(79), Code.WRAPPED_LENGTH_INVALID),
        (bytes(64), Code.HMAC_MISMATCH),
    ],
)
def test_unwrap_checks_in_the_spec_order(blob: bytes, code: Code) -> None:
    with pytest.raises(FormatFailure) as caught:
        open_sealed(PAIR, blob, "the value")
    assert caught.value.code is code
    assert "the value" in caught.value.message


@pytest.mark.req("WRAP_08")
@pytest.mark.parametrize("last", [0, 17, 255])
def test_authentic_ciphertext_with_bad_padding_is_bad_padding(last: int) -> None:
    block = AES.new(NIST_KEY, AES.MODE_CBC, iv=NIST_IV).encrypt(bytes(15) + bytes([last]))
    blob = hmac.new(MAC_KEY, block, hashlib.sha256).digest() + NIST_IV + block
    with pytest.raises(FormatFailure) as caught:
        open_sealed(PAIR, blob, "v")
    assert caught.value.code is Code.BAD_PADDING


@pytest.mark.req("DISK_03", "DISK_04", "DISK_05")
def test_records() -> None:
    record = codec.pack_record(2, bytes(128))
    assert record[:4] == b"\x02\x00\x00\x00"
    assert len(record) == 132
    assert codec.unpack_record(record, 2, "f").key_id == 2
    cases = [
        (record[:-1], 2, Code.RECORD_SIZE_INVALID),
        (b"\x03\x00\x00\x00" + bytes(128), None, Code.RECORD_ID_INVALID),
        (b"\x00\x00\x00\x01" + bytes(128), 0, Code.RECORD_ID_INVALID),  # big-endian 1 is not 1
        (record, 1, Code.RECORD_ID_MISMATCH),
    ]
    for data, file_id, code in cases:
        with pytest.raises(FormatFailure) as caught:
            codec.unpack_record(data, file_id, "pg_cryptokeys/0002")
        assert caught.value.code is code
        assert "pg_cryptokeys/0002" in caught.value.message
    with pytest.raises(ValueError, match="127 bytes"):
        codec.pack_record(0, bytes(127))


@pytest.mark.req("DISK_02")
def test_key_file_names() -> None:
    assert codec.KEY_FILE_NAMES == ("0000", "0001", "0002")
    assert codec.file_name_for(0xABC) == "0ABC"
