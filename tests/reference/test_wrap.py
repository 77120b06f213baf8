"""The wrap format (WRAP_01..WRAP_08), checked against OpenSSL's command-line tool."""

from __future__ import annotations

import hashlib
import hmac
import shutil
import subprocess

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given
from hypothesis import strategies as st
from pgkms.errors import BadPadding, HmacMismatch, WrappedLengthInvalid, WrappedTooShort
from pgkms.kdf import WrapKeys
from pgkms.layout import wrapped_len
from pgkms.randomness import ScriptedRandom
from pgkms.secret import Secret
from pgkms.wrap import pkcs7_pad, unwrap, wrap

ENC = bytes(range(32))
MAC = bytes(range(32, 64))
IV = bytes(range(100, 116))
KEYS = WrapKeys(Secret(ENC), Secret(MAC))
OPENSSL = shutil.which("openssl")


def _openssl_wrap(plaintext: bytes) -> bytes:
    """The wrap computed by the openssl CLI: AES-256-CBC with PKCS#7, HMAC-SHA256 over C."""
    assert OPENSSL, "the openssl command-line tool is required for the known-answer tests"
    ciphertext = subprocess.run(
        [OPENSSL, "enc", "-aes-256-cbc", "-K", ENC.hex(), "-iv", IV.hex()],
        input=plaintext,
        capture_output=True,
        check=True,
    ).stdout
    tag_hex = subprocess.run(
        [OPENSSL, "dgst", "-sha256", "-mac", "HMAC", "-macopt", f"hexkey:{MAC.hex()}", "-r"],
        input=ciphertext,
        capture_output=True,
        check=True,
    ).stdout.split()[0]
    return bytes.fromhex(tag_hex.decode()) + IV + ciphertext


@pytest.mark.req("WRAP_01", "WRAP_02", "WRAP_04")
@pytest.mark.parametrize("length", [0, 1, 15, 16, 17, 18, 31, 32, 33, 63, 64, 65, 100, 1000])
def test_wrap_matches_openssl_cli(length: int) -> None:
    plaintext = bytes((7 * i + 3) % 256 for i in range(length))
    ours = wrap(KEYS, Secret(plaintext), ScriptedRandom([IV]))
    assert ours == _openssl_wrap(plaintext)


@pytest.mark.req("WRAP_02")
def test_openssl_decrypts_our_ciphertext() -> None:
    plaintext = b"my secret passward"
    wrapped = wrap(KEYS, Secret(plaintext), ScriptedRandom([IV]))
    out = subprocess.run(
        [str(OPENSSL), "enc", "-d", "-aes-256-cbc", "-K", ENC.hex(), "-iv", wrapped[32:48].hex()],
        input=wrapped[48:],
        capture_output=True,
        check=True,
    ).stdout
    assert out == plaintext


@pytest.mark.req("WRAP_02", "WRAP_08")
@pytest.mark.parametrize("length", range(0, 70))
def test_length_formula_and_round_trip(length: int) -> None:
    plaintext = Secret(bytes([length % 256]) * length)
    wrapped = wrap(KEYS, plaintext)
    assert len(wrapped) == wrapped_len(length) == 48 + 16 * (length // 16 + 1)
    assert unwrap(KEYS, wrapped) == plaintext


@pytest.mark.req("WRAP_01", "WRAP_04")
def test_layout_is_hmac_iv_ciphertext_and_hmac_excludes_iv() -> None:
    wrapped = wrap(KEYS, Secret(b"abc"), ScriptedRandom([IV]))
    assert wrapped[32:48] == IV
    assert wrapped[:32] == hmac.new(MAC, wrapped[48:], hashlib.sha256).digest()


@pytest.mark.req("WRAP_03")
def test_fresh_iv_per_wrap_by_default() -> None:
    a, b = wrap(KEYS, Secret(b"x")), wrap(KEYS, Secret(b"x"))
    assert a[32:48] != b[32:48]


@pytest.mark.req("WRAP_05")
@pytest.mark.parametrize("length", [0, 1, 32, 48, 63])
def test_too_short(length: int) -> None:
    with pytest.raises(WrappedTooShort, match=f"found {length}"):
        unwrap(KEYS, bytes(length))


@pytest.mark.req("WRAP_06")
@pytest.mark.parametrize("extra", range(1, 16))
def test_ciphertext_not_block_aligned(extra: int) -> None:
    with pytest.raises(WrappedLengthInvalid):
        unwrap(KEYS, bytes(64 + extra))


@pytest.mark.req("WRAP_07")
def test_every_bit_flip_in_hmac_or_ciphertext_is_caught() -> None:
    wrapped = wrap(KEYS, Secret(b"k" * 64), ScriptedRandom([IV]))
    for byte in [*range(0, 32), *range(48, len(wrapped))]:
        for bit in range(8):
            bad = bytearray(wrapped)
            bad[byte] ^= 1 << bit
            with pytest.raises(HmacMismatch):
                unwrap(KEYS, bytes(bad))


@pytest.mark.req("WRAP_04")
def test_iv_bit_flip_is_not_detected_finding_sec_iv() -> None:
    """The 2020 format's weakness: the HMAC does not cover the IV (seed: 'ly secret passward')."""
    wrapped = bytearray(wrap(KEYS, Secret(b"my secret passward"), ScriptedRandom([IV])))
    wrapped[32] ^= 0x01
    assert unwrap(KEYS, bytes(wrapped)).reveal() == b"ly secret passward"


def _forge_padded(plain_blocks: bytes) -> bytes:
    """A wrapped value with a valid HMAC around raw (unpadded) plaintext blocks."""
    enc = Cipher(algorithms.AES(ENC), modes.CBC(IV)).encryptor()
    ciphertext = enc.update(plain_blocks) + enc.finalize()
    return hmac.new(MAC, ciphertext, hashlib.sha256).digest() + IV + ciphertext


@pytest.mark.req("WRAP_08")
@pytest.mark.parametrize(
    "block",
    [
        bytes(15) + b"\x00",  # pad length 0
        bytes(15) + b"\x11",  # pad length 17 > block
        bytes(15) + b"\xff",
        bytes(13) + b"\x02\x03\x03",  # claims 3 bytes of padding, one of which is 0x02
        b"\x10" * 15 + b"\x0f" * 1,  # claims 15, but byte 0 of the 15 is 0x10
    ],
)
def test_valid_hmac_with_bad_padding(block: bytes) -> None:
    with pytest.raises(BadPadding):
        unwrap(KEYS, _forge_padded(block))


@pytest.mark.req("WRAP_08")
def test_full_block_of_padding_is_valid() -> None:
    assert unwrap(KEYS, _forge_padded(b"\x10" * 16)).reveal() == b""


@pytest.mark.req("WRAP_07")
def test_wrong_key_is_hmac_mismatch() -> None:
    wrapped = wrap(KEYS, Secret(b"secret"))
    other = WrapKeys(Secret(ENC), Secret(bytes(32)))
    with pytest.raises(HmacMismatch):
        unwrap(other, wrapped)


@pytest.mark.req("WRAP_02")
@given(st.binary(max_size=300))
def test_pad_is_pkcs7(data: bytes) -> None:
    padded = pkcs7_pad(data)
    n = padded[-1]
    assert 1 <= n <= 16 and padded == data + bytes([n]) * n and len(padded) % 16 == 0


@pytest.mark.req("WRAP_01", "WRAP_08")
@given(st.binary(max_size=2048), st.binary(min_size=16, max_size=16))
def test_round_trip_property(data: bytes, iv: bytes) -> None:
    assert unwrap(KEYS, wrap(KEYS, Secret(data), ScriptedRandom([iv]))).reveal() == data
