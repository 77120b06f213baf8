"""Cross-rejection: corrupted inputs are rejected by both implementations with the same code,
or accepted by both with the same result where the design accepts them.

Findings (documented where the design *accepts* a corruption):
- SEC_IV: the HMAC covers the ciphertext only (WRAP_04), so a flipped IV bit is accepted by
  both and flips the same bit of the first plaintext block, unless it breaks the padding of a
  one-block value; for a key file, startup succeeds with a silently changed internal key.
- The record id is not bound to the wrapped key: swapping the *wrapped keys* of two files while
  keeping each file's id would go unnoticed; swapping whole files is caught by DISK_05.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from tests.differential import strategies as s
from tests.differential.test_bytes import tree
from tests.differential.twins import INDEPENDENT, REFERENCE, Outcome

ENC, MAC = bytes(range(32)), bytes(range(32, 64))
KEY_FILES = ("0000", "0001", "0002")
PASS = b"the configured cluster passphrase, long enough for the rules....."
OTHER = b"another passphrase entirely, also long enough for the 64-byte rule"
KEYS = [bytes([i]) * 64 for i in (1, 2, 3)]
IVS = [bytes([i]) * 16 for i in (4, 5, 6)]


def kek_of(passphrase: bytes) -> tuple[bytes, bytes]:
    derived = REFERENCE.derive(passphrase).value
    assert isinstance(derived, tuple)
    return derived[0], derived[1]


def flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


@pytest.mark.req("WRAP_05", "WRAP_06", "WRAP_07", "WRAP_08")
@given(plaintext=st.binary(max_size=80), iv=s.ivs, data=st.data())
def test_bit_flips_in_wrapped_values(plaintext: bytes, iv: bytes, data: st.DataObject) -> None:
    """A flip in the HMAC or the ciphertext: both say hmac_mismatch. A flip in the IV: both
    accept and agree on the (changed) plaintext, or both report bad_padding: finding SEC_IV."""
    wrapped = REFERENCE.wrap(ENC, MAC, plaintext, iv).value
    assert isinstance(wrapped, bytes)
    bit = data.draw(st.integers(0, len(wrapped) * 8 - 1), label="bit")
    corrupted = flip(wrapped, bit)
    ref = REFERENCE.unwrap(ENC, MAC, corrupted)
    assert ref == INDEPENDENT.unwrap(ENC, MAC, corrupted)
    if 32 <= bit // 8 < 48:  # the IV: not authenticated
        if ref.ok:
            expected = flip(plaintext, bit - 32 * 8) if bit - 256 < len(plaintext) * 8 else None
            if expected is not None:
                assert ref.value == expected
        else:
            assert ref.code == "bad_padding"
    else:
        assert ref.code == "hmac_mismatch"


@pytest.mark.req("WRAP_05", "WRAP_06", "WRAP_07", "SQL_02", "SQL_03")
@given(plaintext=st.binary(max_size=60), iv=s.ivs, extension=st.binary(min_size=1, max_size=40))
def test_truncation_to_every_length_and_extension(
    plaintext: bytes, iv: bytes, extension: bytes
) -> None:
    key = ENC + MAC
    wrapped = REFERENCE.sql_wrap(key, plaintext, iv).value
    assert isinstance(wrapped, bytes)
    for cut in range(len(wrapped)):
        for impl_a, impl_b in [(REFERENCE, INDEPENDENT)]:
            a, b = impl_a.unwrap(ENC, MAC, wrapped[:cut]), impl_b.unwrap(ENC, MAC, wrapped[:cut])
            assert a == b
            assert not a.ok
            assert impl_a.sql_unwrap(key, wrapped[:cut]) == impl_b.sql_unwrap(key, wrapped[:cut])
    longer = wrapped + extension
    expected_code = "wrapped_length_invalid" if len(extension) % 16 else "hmac_mismatch"
    assert REFERENCE.unwrap(ENC, MAC, longer) == INDEPENDENT.unwrap(ENC, MAC, longer)
    assert REFERENCE.unwrap(ENC, MAC, longer).code == expected_code


@pytest.mark.req("WRAP_07")
@given(plaintext=st.binary(max_size=64), iv=s.ivs, enc=s.half_keys, mac=s.half_keys)
def test_wrong_key(plaintext: bytes, iv: bytes, enc: bytes, mac: bytes) -> None:
    assume(mac != MAC)
    wrapped = INDEPENDENT.wrap(ENC, MAC, plaintext, iv).value
    assert isinstance(wrapped, bytes)
    ref, ind = REFERENCE.unwrap(enc, mac, wrapped), INDEPENDENT.unwrap(enc, mac, wrapped)
    assert ref == ind == Outcome(code="hmac_mismatch")


@pytest.mark.req("WRAP_08")
@given(enc=s.half_keys, mac=s.half_keys, iv=s.ivs, blocks=st.binary(min_size=16, max_size=64))
def test_authentic_garbage_is_judged_by_its_padding(
    enc: bytes, mac: bytes, iv: bytes, blocks: bytes
) -> None:
    """A correctly MACed ciphertext of random blocks: its padding decides, the same in both."""
    ciphertext = blocks[: len(blocks) // 16 * 16]
    wrapped = hmac.new(mac, ciphertext, hashlib.sha256).digest() + iv + ciphertext
    assert REFERENCE.unwrap(enc, mac, wrapped) == INDEPENDENT.unwrap(enc, mac, wrapped)


# -- corrupted key directories ---------------------------------------------------------------
Corruption = Callable[[Path], object]


def _bootstrapped(root: Path) -> Path:
    datadir = root / "data"
    datadir.mkdir()
    assert REFERENCE.bootstrap(str(datadir), PASS, KEYS, IVS).ok
    return datadir


def _both_start(datadir: Path, passphrase: bytes) -> tuple[Outcome, Outcome]:
    """Run startup with each implementation on its own copy; also compare what is left."""
    copies = []
    for name in ("ref", "ind"):
        copy = datadir.parent / name
        shutil.copytree(datadir, copy, symlinks=True)
        copies.append(copy)
    ref = REFERENCE.startup(str(copies[0]), passphrase)
    ind = INDEPENDENT.startup(str(copies[1]), passphrase)
    assert tree(copies[0]) == tree(copies[1]), "the two left different directories behind"
    return ref, ind


@st.composite
def corruptions(draw: st.DrawFn) -> tuple[str, Corruption]:
    kind = draw(
        st.sampled_from(
            ["flip", "truncate", "extend", "swap", "delete", "extra", "no_dir", "rekey"]
        )
    )
    name = draw(st.sampled_from(KEY_FILES))
    keydir = "pg_cryptokeys"

    def path(d: Path, n: str = name) -> Path:
        return d / keydir / n

    if kind == "flip":
        bit = draw(st.integers(0, 132 * 8 - 1))

        def flip_bit(d: Path) -> None:
            data = path(d).read_bytes()
            if bit < len(data) * 8:  # an earlier step may have cut the file short
                path(d).write_bytes(flip(data, bit))

        return f"flip bit {bit} of {name}", flip_bit
    if kind == "truncate":
        size = draw(st.integers(0, 131))
        return f"truncate {name} to {size}", lambda d: path(d).write_bytes(
            path(d).read_bytes()[:size]
        )
    if kind == "extend":
        tail = draw(st.binary(min_size=1, max_size=20))
        return f"extend {name}", lambda d: path(d).write_bytes(path(d).read_bytes() + tail)
    if kind == "swap":
        other = draw(st.sampled_from([n for n in KEY_FILES if n != name]))

        def swap(d: Path) -> None:
            a, b = path(d).read_bytes(), path(d, other).read_bytes()
            path(d).write_bytes(b)
            path(d, other).write_bytes(a)

        return f"swap {name} and {other}", swap
    if kind == "delete":
        return f"delete {name}", lambda d: path(d).unlink()
    if kind == "extra":
        extra = draw(st.sampled_from(["0003", "FFFF", "0000.bak", "a", ".hidden", "000a"]))
        return f"add {extra}", lambda d: path(d, extra).write_bytes(b"x")
    if kind == "no_dir":
        return "remove the key directory", lambda d: shutil.rmtree(d / keydir)
    # rekey: the record is valid but wraps a key of the wrong length (KEY_03) under the KEK
    length = draw(st.sampled_from([0, 1, 48, 63, 65, 70, 79]))
    wrapped = REFERENCE.wrap(*kek_of(PASS), bytes(length), IVS[0]).value
    assert isinstance(wrapped, bytes)

    def rekey(d: Path) -> None:
        data = path(d).read_bytes()
        path(d).write_bytes(data[:4] + wrapped + b"\0" * (128 - len(wrapped)))

    return f"rekey {name} with a {length}-byte key", rekey


@pytest.mark.req("START_02", "START_03", "START_04", "DISK_03", "DISK_04", "DISK_05", "DISK_06")
@given(steps=st.lists(corruptions(), min_size=1, max_size=3), wrong=st.booleans())
def test_corrupted_directories_get_the_same_verdict(
    steps: list[tuple[str, Corruption]], wrong: bool
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        datadir = _bootstrapped(Path(tmp))
        for _, corrupt in steps:
            if not (datadir / "pg_cryptokeys").is_dir():
                break
            with contextlib.suppress(FileNotFoundError):  # an earlier step deleted its file
                corrupt(datadir)
        ref, ind = _both_start(datadir, OTHER if wrong else PASS)
        assert ref == ind, [label for label, _ in steps]


@pytest.mark.req("START_03")
def test_wrong_passphrase_on_an_intact_directory() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ref, ind = _both_start(_bootstrapped(Path(tmp)), OTHER)
        assert ref == ind == Outcome(code="wrong_passphrase")


@pytest.mark.req("START_03", "KEY_03")
def test_first_failing_file_wins_over_a_later_key_length_failure() -> None:
    """Regression (divergence found by the differential tests): key 0 fails its HMAC, key 1
    authenticates but unwraps to 70 bytes. START_03 reports the first failing file in id
    order, so the verdict is hmac_mismatch. The reference raised key_length_invalid as soon as
    it met key 1, ahead of the earlier failure; fixed in pgkms.internal_keys.open_key_set."""
    with tempfile.TemporaryDirectory() as tmp:
        datadir = _bootstrapped(Path(tmp))
        keydir = datadir / "pg_cryptokeys"
        keydir.joinpath("0000").write_bytes(flip(keydir.joinpath("0000").read_bytes(), 40))
        enc, mac = kek_of(PASS)
        long_key = REFERENCE.wrap(enc, mac, bytes(70), IVS[1]).value
        assert isinstance(long_key, bytes)
        keydir.joinpath("0001").write_bytes((1).to_bytes(4, "little") + long_key)
        ref, ind = _both_start(datadir, PASS)
        assert ref == ind == Outcome(code="hmac_mismatch")


@pytest.mark.req("WRAP_04", "START_03")
def test_flipped_iv_in_a_key_file_changes_the_key_silently() -> None:
    """Finding SEC_IV: a flipped IV bit in 0001 passes startup in both implementations, and
    both return the same, silently changed internal key 1."""
    with tempfile.TemporaryDirectory() as tmp:
        datadir = _bootstrapped(Path(tmp))
        f = datadir / "pg_cryptokeys" / "0001"
        f.write_bytes(flip(f.read_bytes(), (4 + 32) * 8))  # first bit of the IV
        ref, ind = _both_start(datadir, PASS)
        assert ref == ind
        assert ref.ok
        assert isinstance(ref.value, tuple)
        assert ref.value[1] == flip(KEYS[1], 0)


# -- interrupted rotations: recovery decides by content --------------------------------------
@st.composite
def staging_states(draw: st.DrawFn) -> Corruption:
    """A pg_cryptokeys_tmp as a crash could leave it: some of the rotated files, maybe cut
    short, maybe under the wrong passphrase; and maybe the current directory damaged too."""
    files = draw(st.lists(st.sampled_from(KEY_FILES), unique=True, max_size=3))
    cut = draw(st.sampled_from([None, 0, 1, 131]))
    under = draw(st.sampled_from([PASS, OTHER]))
    break_current = draw(st.sampled_from([None, "delete_dir", "delete_file", "flip"]))

    def apply(d: Path) -> None:
        source = d.parent / "rotated"
        if not source.exists():
            shutil.copytree(d, source)
            assert REFERENCE.rotate(str(source), PASS, under, IVS).ok if under != PASS else True
        tmp = d / "pg_cryptokeys_tmp"
        tmp.mkdir(mode=0o700)
        for i, name in enumerate(sorted(files)):
            data = (source / "pg_cryptokeys" / name).read_bytes()
            if cut is not None and i == len(files) - 1:
                data = data[:cut]
            (tmp / name).write_bytes(data)
        current = d / "pg_cryptokeys"
        if break_current == "delete_dir":
            shutil.rmtree(current)
        elif break_current == "delete_file":
            (current / "0002").unlink()
        elif break_current == "flip":
            (current / "0000").write_bytes(flip((current / "0000").read_bytes(), 300))

    return apply


@pytest.mark.req("REC_01", "REC_02", "REC_03", "REC_04", "REC_05", "START_01")
@given(state=staging_states(), passphrase=st.sampled_from([PASS, OTHER]))
def test_recovery_decides_the_same(state: Corruption, passphrase: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        datadir = _bootstrapped(Path(tmp))
        state(datadir)
        copies = []
        for name in ("ref", "ind"):
            copies.append(Path(tmp, name))
            shutil.copytree(datadir, copies[-1])
        ref = REFERENCE.recover(str(copies[0]), passphrase)
        ind = INDEPENDENT.recover(str(copies[1]), passphrase)
        assert ref == ind
        assert tree(copies[0]) == tree(copies[1])
        assert REFERENCE.startup(str(copies[0]), passphrase) == INDEPENDENT.startup(
            str(copies[1]), passphrase
        )
        assert os.path.isdir(copies[0] / "pg_cryptokeys_tmp") == (not ref.ok)
