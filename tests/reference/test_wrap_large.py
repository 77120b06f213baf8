"""The buffer path of wrap and unwrap (large inputs) gives the plain path's bytes and errors.

``pgkms.wrap`` takes a second code path from ``LARGE_WRAP`` / ``LARGE_UNWRAP`` bytes on (wrap:
one reused scratch buffer instead of fresh copies; unwrap: decryption into the buffer the
returned secret owns). These tests pin that both paths agree on every length around the switch
and around the block size, that the large path checks padding the same way, that the scratch
buffer never holds plaintext, and that a buffer refused for its padding is wiped.
"""

from __future__ import annotations

import hashlib
import hmac
import sys
import threading

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from pgkms.errors import BadPadding, HmacMismatch
from pgkms.kdf import WrapKeys
from pgkms.randomness import ScriptedRandom
from pgkms.secret import Secret
from pgkms.wrap import unwrap, wrap

# ``pgkms`` re-exports the function ``wrap`` under the module's name: fetch the module itself.
wrap_module = sys.modules["pgkms.wrap"]
LARGE_WRAP: int = wrap_module.LARGE_WRAP
LARGE_UNWRAP: int = wrap_module.LARGE_UNWRAP

ENC = bytes(range(32))
MAC = bytes(range(32, 64))
IV = bytes(range(100, 116))
KEYS = WrapKeys(Secret(ENC), Secret(MAC))


def _plaintext(length: int) -> bytes:
    return hashlib.shake_256(length.to_bytes(8, "little")).digest(length)


def _plain_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every size through the plain path, as if no input were large."""
    monkeypatch.setattr(wrap_module, "LARGE_WRAP", 1 << 62)
    monkeypatch.setattr(wrap_module, "LARGE_UNWRAP", 1 << 62)


def _scratch_keeps_none_of(plaintext: bytes) -> bool:
    """No 64-byte piece of ``plaintext`` (taken every 4 KiB) is in the scratch buffer."""
    scratch = bytes(wrap_module._SCRATCH.buffer)
    pieces = [plaintext[i : i + 64] for i in range(0, len(plaintext) - 64, 4096)]
    return not any(piece in scratch for piece in pieces)


AROUND_WRAP = [LARGE_WRAP + d for d in (-17, -16, -1, 0, 1, 15, 16, 17)]
AROUND_UNWRAP = [LARGE_UNWRAP + d for d in (-33, -17, -16, -1, 0, 1, 15, 16)]


@pytest.mark.req("WRAP_01", "WRAP_02", "WRAP_04")
@pytest.mark.parametrize("length", [*AROUND_WRAP, *AROUND_UNWRAP, 3 * LARGE_UNWRAP + 5])
def test_both_paths_wrap_to_the_same_bytes(length: int, monkeypatch: pytest.MonkeyPatch) -> None:
    plaintext = Secret(_plaintext(length))
    large = wrap(KEYS, plaintext, ScriptedRandom([IV]))
    _plain_path(monkeypatch)
    assert large == wrap(KEYS, plaintext, ScriptedRandom([IV]))
    assert len(large) == 48 + 16 * (length // 16 + 1)


@pytest.mark.req("WRAP_01", "WRAP_02", "WRAP_04")
def test_large_wrap_is_aes_cbc_and_hmac_over_the_ciphertext() -> None:
    plaintext = _plaintext(LARGE_WRAP + 7)
    wrapped = wrap(KEYS, Secret(plaintext), ScriptedRandom([IV]))
    decryptor = Cipher(algorithms.AES(ENC), modes.CBC(IV)).decryptor()
    padded = decryptor.update(wrapped[48:]) + decryptor.finalize()
    assert padded == plaintext + bytes([9]) * 9
    assert wrapped[:32] == hmac.digest(MAC, wrapped[48:], "sha256")
    assert wrapped[32:48] == IV


@pytest.mark.req("WRAP_05", "WRAP_08")
@pytest.mark.parametrize("length", [*AROUND_UNWRAP, 3 * LARGE_UNWRAP + 5])
def test_large_unwrap_round_trips_into_the_secret_it_returns(length: int) -> None:
    plaintext = _plaintext(length)
    wrapped = wrap(KEYS, Secret(plaintext), ScriptedRandom([IV]))
    secret = unwrap(KEYS, wrapped)
    assert bytes(secret.view()) == plaintext and len(secret) == length
    assert secret.reveal() == plaintext and type(secret.reveal()) is bytes
    assert _scratch_keeps_none_of(plaintext)  # the wrap's scratch holds ciphertext only


def _forge(padded: bytes) -> bytes:
    """A wrapped value with a valid HMAC over ``padded`` encrypted as it is (no padding added)."""
    encryptor = Cipher(algorithms.AES(ENC), modes.CBC(IV)).encryptor()
    ciphertext = encryptor.update(padded) + encryptor.finalize()
    return hmac.digest(MAC, ciphertext, "sha256") + IV + ciphertext


@pytest.mark.req("WRAP_08")
@pytest.mark.parametrize(
    "last_block",
    [bytes(15) + b"\x00", bytes(15) + b"\x11", bytes(13) + b"\x02\x03\x03", b"\x10" * 15 + b"\x0f"],
)
def test_large_unwrap_refuses_bad_padding_and_wipes(
    last_block: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = _plaintext(LARGE_UNWRAP)
    wiped: list[bytes] = []

    def wipe_and_keep(view: memoryview) -> None:
        wipe(view)
        wiped.append(bytes(view))

    wipe = wrap_module._wipe
    monkeypatch.setattr(wrap_module, "_wipe", wipe_and_keep)
    with pytest.raises(BadPadding, match="PKCS#7 padding is invalid"):
        unwrap(KEYS, _forge(body + last_block))
    # The one buffer the plaintext was decrypted into, zeroed before the error left.
    assert [(len(b), b.count(0)) for b in wiped] == [(len(body) + 16 + 15, len(body) + 31)]


@pytest.mark.req("WRAP_08")
def test_large_unwrap_full_block_of_padding() -> None:
    body = _plaintext(LARGE_UNWRAP)
    assert unwrap(KEYS, _forge(body + b"\x10" * 16)).reveal() == body


@pytest.mark.req("WRAP_07")
def test_large_unwrap_checks_the_hmac_first() -> None:
    wrapped = bytearray(wrap(KEYS, Secret(_plaintext(LARGE_UNWRAP)), ScriptedRandom([IV])))
    wrapped[-1] ^= 1
    with pytest.raises(HmacMismatch):
        unwrap(KEYS, bytes(wrapped))


def test_threads_do_not_share_a_scratch_buffer() -> None:
    """Two threads wrapping and unwrapping large values at once each get their own bytes."""
    errors: list[str] = []

    def work(seed: int) -> None:
        keys = WrapKeys(Secret(bytes([seed]) * 32), Secret(bytes([seed + 1]) * 32))
        for i in range(20):
            plaintext = _plaintext(LARGE_UNWRAP + 16 * seed + i)
            if unwrap(keys, wrap(keys, Secret(plaintext))).reveal() != plaintext:
                errors.append(f"thread {seed}, round {i}")

    threads = [threading.Thread(target=work, args=(seed,)) for seed in (1, 3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
