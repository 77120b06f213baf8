"""Several C adapter processes on one data directory at once (capability ``concurrency``,
CONC_01): rotations, startups and recoveries race on a seeded schedule, and after every round
one valid key set opens, under one of the two passphrases, with the original internal keys.
Bounded: 3 processes, 20 rounds (about 4 s; without the lock it fails in most runs)."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from pgkms_conformance.protocol.client import AdapterClient

from tests.c_adapter.conftest import Built

A, B = (b"a" * 64).hex(), (b"b" * 80).hex()
PROCESSES, ROUNDS = 3, 20


@pytest.fixture
def clients(c_adapter: Built) -> Iterator[list[AdapterClient]]:
    with ExitStack() as stack:
        out = []
        for _ in range(PROCESSES):
            client = stack.enter_context(AdapterClient([str(c_adapter.binary)], timeout=30))
            client.hello()
            out.append(client)
        yield out


def _open(client: AdapterClient, root: Path) -> list[str] | None:
    for passphrase in (A, B):
        answer = client.call("startup", datadir=str(root), passphrase=passphrase)
        if answer.ok:
            return list(answer.result["keys"])
    return None


@pytest.mark.req("CONC_01", "CONC_02", "KEY_02", "REC_05")
def test_racing_procedures_keep_one_valid_key_set(
    clients: list[AdapterClient], tmp_path: Path
) -> None:
    root = tmp_path / "pgdata"
    root.mkdir()
    assert clients[0].call("bootstrap", datadir=str(root), passphrase=A).ok
    original = _open(clients[0], root)
    assert original is not None
    rng = random.Random(1501)
    codes: set[str] = set()
    for _ in range(ROUNDS):
        plans: list[tuple[str, dict[str, Any]]] = []
        for _ in clients:
            old, new = rng.choice([(A, B), (B, A)])
            op = rng.choice(["rotate", "rotate", "startup", "recover"])
            params: dict[str, Any] = {"datadir": str(root), "lock_timeout": 10}
            if op == "rotate":
                params |= {"old_passphrase": old, "new_passphrase": new}
            else:
                params["passphrase"] = old
            plans.append((op, params))
        threads = [
            threading.Thread(
                target=lambda c=c, p=p: codes.add(str(c.call(p[0], **p[1]).error_code))
            )
            for c, p in zip(clients, plans, strict=True)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert _open(clients[0], root) == original
        assert sorted(p.name for p in root.iterdir()) == ["pg_cryptokeys", "pg_cryptokeys.lock"]
    assert "key_directory_locked" not in codes, "each procedure is short: none waits 10 s"
