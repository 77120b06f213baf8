"""Lock-step: random sequences of bootstrap, startup, wrap, unwrap, rotation, recovery and
damage run against both implementations through their adapters (``AdapterClient``), which
must never diverge: same success or same error code, same results, same files on disk.

Randomness is always injected (both adapters claim ``inject_randomness``), so results compare
byte for byte.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from pgkms_conformance.bundled import BUNDLED
from pgkms_conformance.protocol.client import AdapterClient, Response

from tests.differential import strategies as s
from tests.differential.fuzz_counts import count
from tests.differential.test_bytes import tree

PASSPHRASES = [
    b"first cluster passphrase, comfortably above the sixty-four byte floor",
    b"second cluster passphrase, comfortably above the sixty-four byte floor",
    b"x" * 1024,
    b"y" * 1500,  # too long to set, cut to 1024 at startup
    b"too short",
]
hex_passphrases = st.sampled_from(PASSPHRASES).map(bytes.hex)
three_ivs = s.three_ivs.map(lambda ivs: [iv.hex() for iv in ivs])


class LockStep(RuleBasedStateMachine):
    clients: tuple[AdapterClient, AdapterClient]

    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.mkdtemp(prefix="pgkms-lockstep-")
        self.dirs = (Path(self.tmp, "ref"), Path(self.tmp, "ind"))
        for d in self.dirs:
            d.mkdir()
        self.sql_key: str | None = None
        self.wrapped: list[tuple[str, str]] = []  # (wrapped hex, plaintext hex)

    def both(self, op: str, **params: Any) -> Response:
        """Run ``op`` on both; ``datadir`` is filled in per implementation."""
        count("lock-step operation")
        answers = []
        for client, datadir in zip(self.clients, self.dirs, strict=True):
            if "datadir" in params:
                params["datadir"] = str(datadir)
            answers.append(client.call(op, **params))
        ref, ind = answers
        assert (ref.ok, ref.error_code, ref.result) == (ind.ok, ind.error_code, ind.result), op
        return ref

    @initialize(passphrase=hex_passphrases, keys=s.three_keys, ivs=three_ivs)
    def bootstrap(self, passphrase: str, keys: list[bytes], ivs: list[str]) -> None:
        self.both(
            "bootstrap", datadir="", passphrase=passphrase, keys=[k.hex() for k in keys], ivs=ivs
        )

    @rule(passphrase=hex_passphrases)
    def startup(self, passphrase: str) -> None:
        answer = self.both("startup", datadir="", passphrase=passphrase)
        if answer.ok:
            self.sql_key = answer.result["keys"][0]

    @rule(old=hex_passphrases, new=hex_passphrases, ivs=three_ivs)
    def rotate(self, old: str, new: str, ivs: list[str]) -> None:
        self.both("rotate", datadir="", old_passphrase=old, new_passphrase=new, ivs=ivs)

    @rule(passphrase=hex_passphrases)
    def recover(self, passphrase: str) -> None:
        self.both("recover", datadir="", passphrase=passphrase)

    @rule(plaintext=st.binary(max_size=70), iv=s.ivs)
    def sql_wrap(self, plaintext: bytes, iv: bytes) -> None:
        if self.sql_key is None:
            return
        answer = self.both("sql_wrap", sql_key=self.sql_key, plaintext=plaintext.hex(), iv=iv.hex())
        assert answer.ok
        self.wrapped.append((answer.result["wrapped"], plaintext.hex()))

    @rule(data=st.data())
    def sql_unwrap(self, data: st.DataObject) -> None:
        if self.sql_key is None or not self.wrapped:
            return
        wrapped, plaintext = data.draw(st.sampled_from(self.wrapped))
        answer = self.both("sql_unwrap", sql_key=self.sql_key, wrapped=wrapped)
        assert answer.result == {"plaintext": plaintext}

    @rule(
        directory=st.sampled_from(["pg_cryptokeys", "pg_cryptokeys_tmp"]),
        name=st.sampled_from(["0000", "0001", "0002"]),
        damage=st.sampled_from(["flip", "truncate", "delete", "copy_to_tmp"]),
        offset=st.integers(0, 131),
    )
    def damage(self, directory: str, name: str, damage: str, offset: int) -> None:
        """The same damage (or crash leftover) applied to both data directories."""
        for d in self.dirs:
            path = d / directory / name
            if damage == "copy_to_tmp":
                if (d / "pg_cryptokeys").is_dir() and not (d / "pg_cryptokeys_tmp").exists():
                    shutil.copytree(d / "pg_cryptokeys", d / "pg_cryptokeys_tmp")
                continue
            if not path.is_file():
                continue
            if damage == "delete":
                path.unlink()
                continue
            data = path.read_bytes()
            if damage == "truncate":
                path.write_bytes(data[:offset])
            elif offset < len(data):
                path.write_bytes(data[:offset] + bytes([data[offset] ^ 0x10]) + data[offset + 1 :])

    @invariant()
    def same_files(self) -> None:
        assert tree(self.dirs[0]) == tree(self.dirs[1])

    def teardown(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def clients() -> Iterator[tuple[AdapterClient, AdapterClient]]:
    with AdapterClient(BUNDLED["reference"]) as ref, AdapterClient(BUNDLED["independent"]) as ind:
        ref.hello()
        ind.hello()
        yield ref, ind


@pytest.mark.req("BOOT_01", "START_03", "ROT_01", "ROT_02", "REC_02", "SQL_01", "KEY_02", "ADP_01")
def test_lock_step_through_the_adapters(clients: tuple[AdapterClient, AdapterClient]) -> None:
    LockStep.clients = clients
    profile = settings()
    run_state_machine_as_test(
        LockStep,
        settings=settings(
            profile,
            max_examples=max(10, profile.max_examples // 3),
            stateful_step_count=25,
        ),
    )
