"""Mutual exclusion across processes (CONC_01..CONC_03), with real adapter processes."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pgkms_independent.entropy import Entropy
from pgkms_independent.failures import Failure
from pgkms_independent.keystore import Cluster

from tests.independent.processes import (
    IVS,
    KEYS,
    NEW,
    OLD,
    STRACE,
    Adapter,
    LockHolder,
    code,
    hexes,
)
from tests.independent.test_environment import snapshot

ROUNDS = 20
MAX_PROCESSES = 4


def bootstrapped(datadir: Path) -> None:
    datadir.mkdir(exist_ok=True)
    Cluster(str(datadir)).bootstrap(OLD, Entropy([*KEYS, *IVS]))


def opens_under(datadir: Path) -> list[bytes]:
    """The passphrases (of OLD, NEW) under which startup opens the original keys."""
    found = []
    for passphrase in (OLD, NEW):
        try:
            keys = Cluster(str(datadir)).startup(passphrase)
        except Failure:  # the other passphrase may open it
            continue
        if [k.expose() for k in keys.keys] == KEYS:
            found.append(passphrase)
    return found


@pytest.mark.req("CONC_02", "ADP_06")
def test_a_held_lock_gives_key_directory_locked_within_the_timeout(tmp_path: Path) -> None:
    bootstrapped(tmp_path)
    before = snapshot(tmp_path)
    with Adapter() as adapter, LockHolder(tmp_path, 30):
        started = time.monotonic()
        answer = adapter.call(
            "rotate",
            lock_timeout=1,
            datadir=str(tmp_path),
            old_passphrase=OLD.hex(),
            new_passphrase=NEW.hex(),
        )
        waited = time.monotonic() - started
        assert code(answer) == "key_directory_locked"
        assert 1.0 <= waited < 2.5
        started = time.monotonic()
        answer = adapter.call(
            "startup", lock_timeout=0, datadir=str(tmp_path), passphrase=OLD.hex()
        )
        assert code(answer) == "key_directory_locked"
        assert time.monotonic() - started < 1.0
    assert snapshot(tmp_path) == before


@pytest.mark.req("CONC_02", "CONC_01", "ADP_06")
def test_a_lock_released_in_time_lets_the_procedure_run(tmp_path: Path) -> None:
    bootstrapped(tmp_path)
    with Adapter() as adapter:
        holder = LockHolder(tmp_path, 1.5)
        with holder:
            started = time.monotonic()
            answer = adapter.call(
                "rotate",
                lock_timeout=5,
                datadir=str(tmp_path),
                old_passphrase=OLD.hex(),
                new_passphrase=NEW.hex(),
                ivs=hexes(IVS),
            )
            waited = time.monotonic() - started
        assert answer["ok"], answer
        assert 1.3 <= waited < 3.0  # it waited for the holder, then ran at once
    assert opens_under(tmp_path) == [NEW]


@pytest.mark.req("ADP_06")
@pytest.mark.parametrize("value", [-1, "1", True, float("inf")])
def test_a_bad_lock_timeout_is_a_malformed_request(tmp_path: Path, value: object) -> None:
    with Adapter() as adapter:
        answer = adapter.call(
            "startup", lock_timeout=value, datadir=str(tmp_path), passphrase=OLD.hex()
        )
        assert code(answer) == "malformed_request"
    assert list(tmp_path.iterdir()) == []


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.mark.req("CONC_03")
@pytest.mark.parametrize(
    ("content", "refused"),
    [
        (lambda: f"{os.getpid()}\n/some/pgdata\n", True),  # live: this test process
        (lambda: f"{_dead_pid()}\n/some/pgdata\n", False),  # stale
        (lambda: "not a pid\n", True),  # garbage
        (lambda: "", True),  # unreadable as a PID
        (lambda: "0\n", True),
        (lambda: "1\n", True),  # init: alive (kill(1, 0) succeeds or fails with EPERM)
    ],
)
def test_postmaster_pid(tmp_path: Path, content: object, refused: bool) -> None:
    bootstrapped(tmp_path)
    assert callable(content)
    (tmp_path / "postmaster.pid").write_text(content())
    before = snapshot(tmp_path)
    with Adapter() as adapter:
        answer = adapter.call(
            "rotate",
            datadir=str(tmp_path),
            old_passphrase=OLD.hex(),
            new_passphrase=NEW.hex(),
        )
    if refused:
        assert code(answer) == "server_running"
        assert snapshot(tmp_path) == before
    else:
        assert answer["ok"], answer
        assert opens_under(tmp_path) == [NEW]


@pytest.mark.req("CONC_01", "CONC_02", "ROT_01", "REC_02")
def test_concurrent_rotations_and_startups_lose_nothing(tmp_path: Path) -> None:
    """ROUNDS rounds; in each, 2..MAX_PROCESSES adapters at once rotate (either way round),
    start up or recover on one data directory. After each round the original keys open under
    exactly one of the two passphrases, and nothing is left in pg_cryptokeys_tmp."""
    bootstrapped(tmp_path)
    rng = random.Random(10)  # the seed: issue 10
    adapters = [Adapter() for _ in range(MAX_PROCESSES)]
    outcomes: dict[str, int] = {}
    started = time.monotonic()
    try:
        for _ in range(ROUNDS):
            crowd = adapters[: rng.randint(2, MAX_PROCESSES)]
            for adapter in crowd:
                old, new = rng.choice([(OLD, NEW), (NEW, OLD)])
                op = rng.choice(["rotate", "rotate", "startup", "recover"])
                fields = {"datadir": str(tmp_path), "lock_timeout": 30}
                if op == "rotate":
                    fields.update(old_passphrase=old.hex(), new_passphrase=new.hex())
                else:
                    fields.update(passphrase=old.hex())
                adapter.send(op, **fields)
            for adapter in crowd:
                result = code(adapter.receive(60)) or "ok"
                outcomes[result] = outcomes.get(result, 0) + 1
            assert len(opens_under(tmp_path)) == 1
            assert not (tmp_path / "pg_cryptokeys_tmp").exists()
    finally:
        for adapter in adapters:
            adapter.close()
    assert set(outcomes) <= {"ok", "wrong_passphrase"}, outcomes
    assert outcomes["ok"] >= ROUNDS
    assert time.monotonic() - started < 120


@pytest.mark.req("CONC_01", "REC_03", "ROT_05")
def test_a_startup_during_a_paused_rotation_waits_and_keeps_the_keys(tmp_path: Path) -> None:
    """Issue 10's reproduction: the rotation is paused before its first unlink (strace delays
    it by 2 s); a startup under the new passphrase meanwhile must wait for the lock instead of
    discarding the complete new set the rotation is about to make the only one."""
    bootstrapped(tmp_path)
    pause = [
        STRACE,
        "-f",
        "-qq",
        "-o",
        "/dev/null",
        "-e",
        "trace=unlink,unlinkat",
        "-e",
        "inject=unlink,unlinkat:delay_enter=2000000:when=1",
    ]
    with Adapter(pause) as rotating, Adapter() as starting:
        rotating.send(
            "rotate",
            datadir=str(tmp_path),
            old_passphrase=OLD.hex(),
            new_passphrase=NEW.hex(),
        )
        deadline = time.monotonic() + 10
        while not (tmp_path / "pg_cryptokeys_tmp" / "0002").exists():
            assert time.monotonic() < deadline
            time.sleep(0.01)
        answer = starting.call("startup", datadir=str(tmp_path), passphrase=NEW.hex())
        assert rotating.receive(10)["ok"]
    assert answer["ok"], answer
    assert [bytes.fromhex(k) for k in answer["result"]["keys"]] == KEYS
    assert opens_under(tmp_path) == [NEW]


@pytest.mark.req("CONC_01", "UPG_01")
def test_upgrade_waits_for_the_old_clusters_lock(tmp_path: Path) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    bootstrapped(old)
    new.mkdir()
    Cluster(str(new)).bootstrap(OLD)
    before = snapshot(new)
    with Adapter() as adapter, LockHolder(old, 30):
        answer = adapter.call(
            "upgrade_keys",
            old_datadir=str(old),
            new_datadir=str(new),
            passphrase=OLD.hex(),
            lock_timeout=0.5,
        )
    assert code(answer) == "key_directory_locked"
    assert snapshot(new) == before
    shutil.rmtree(tmp_path / "old")
