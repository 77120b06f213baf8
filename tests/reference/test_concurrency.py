"""Procedures run at the same time on one data directory lose nothing (CONC_01, CONC_02).

The issue's measurements, reproduced against the reference CLI: a startup run while a rotation
is paused between writing pg_cryptokeys_tmp and removing pg_cryptokeys, and a loop of
concurrent rotations with alternating passphrases. Both bounded in rounds and time.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from pgkms.secret import Secret
from pgkms.startup import startup

from .helpers import NEW, OLD, error_code, make_cluster, opens_under, run_pgkms

STRACE = "/usr/bin/strace"
PAUSE_S = 2.0
ROUNDS = 20


def _keys(datadir: Path, passphrase: bytes) -> list[bytes] | None:
    try:
        return [k.reveal() for k in startup(str(datadir), Secret(passphrase)).by_id().values()]
    except Exception:  # any failure means: this passphrase does not open them
        return None


@pytest.mark.req("CONC_01", "CONC_02", "REC_05")
def test_startup_during_a_paused_rotation_keeps_both_key_sets(tmp_path: Path) -> None:
    datadir, old, new = make_cluster(tmp_path)
    original = _keys(datadir, OLD)
    # The rotation's first unlink (the removal of pg_cryptokeys/0000, after pg_cryptokeys_tmp
    # is complete and durable) is delayed by PAUSE_S seconds.
    rotation = subprocess.Popen(
        [
            STRACE,
            "-f",
            "-qq",
            "-o",
            "/dev/null",
            "-e",
            "trace=unlink,unlinkat",
            "-e",
            f"inject=unlink,unlinkat:delay_enter={int(PAUSE_S * 1e6)}:when=1",
            sys.executable,
            "-m",
            "pgkms",
            "rotate",
            str(datadir),
            "--passphrase-command",
            old,
            "--new-passphrase-command",
            new,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while not (datadir / "pg_cryptokeys_tmp" / "0002").exists():
            assert time.monotonic() < deadline, "the rotation never wrote its temporary set"
            assert rotation.poll() is None, rotation.communicate()
            time.sleep(0.02)
        started = time.monotonic()
        verify = run_pgkms("verify", str(datadir), "--passphrase-command", new, timeout=60)
        waited = time.monotonic() - started
        _, rotation_err = rotation.communicate(timeout=60)
    finally:
        rotation.kill()
        rotation.wait(timeout=10)
    assert rotation.returncode == 0, rotation_err
    # verify waited for the rotation's lock, then found the rotation done
    assert verify.returncode == 0 or error_code(verify) == "key_directory_locked", verify.stderr
    assert waited > 0.5, waited  # it did wait: the rotation was paused holding the lock
    assert _keys(datadir, NEW) == original
    assert _keys(datadir, OLD) is None
    assert not (datadir / "pg_cryptokeys_tmp").exists()


@pytest.mark.req("CONC_01", "CONC_02")
def test_concurrent_rotations_lose_nothing(tmp_path: Path) -> None:
    """ROUNDS rounds of 2..4 rotations at once, alternating directions: after each round
    exactly one of the two passphrases opens the original keys; every process either rotated,
    found the other passphrase (wrong_passphrase) or timed out on the lock."""
    datadir, old, new = make_cluster(tmp_path)
    original = _keys(datadir, OLD)
    commands = (old, new)
    outcomes: dict[str, int] = {}
    started = time.monotonic()
    for round_no in range(ROUNDS):
        procs = []
        for i in range(2 + round_no % 3):
            src, dst = commands[i % 2], commands[(i + 1) % 2]
            args = ["rotate", str(datadir), "--passphrase-command", src]
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "pgkms", *args, "--new-passphrase-command", dst],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                )
            )
        for proc in procs:
            _, err = proc.communicate(timeout=60)
            text = err.decode()
            assert "Traceback" not in text, text
            code = "ok" if proc.returncode == 0 else text.rstrip().rsplit("[", 1)[-1].rstrip("]")
            assert code in {"ok", "wrong_passphrase", "key_directory_locked"}, text
            outcomes[code] = outcomes.get(code, 0) + 1
        opened = [p for p in (OLD, NEW) if _keys(datadir, p) == original]
        assert len(opened) == 1, f"round {round_no}: {len(opened)} passphrases open the keys"
        assert not (datadir / "pg_cryptokeys_tmp").exists()
    elapsed = time.monotonic() - started
    assert outcomes.get("ok", 0) >= ROUNDS  # at least one rotation per round succeeded
    assert elapsed < 300
    print(f"{ROUNDS} rounds, outcomes {outcomes}, {elapsed:.1f} s")


@pytest.mark.req("CONC_01")
def test_startups_and_recoveries_beside_rotations(tmp_path: Path) -> None:
    """A mixed round: rotation, startup and recover --apply at once; the keys survive."""
    datadir, old, new = make_cluster(tmp_path)
    original = _keys(datadir, OLD)
    for _ in range(5):
        current = old if opens_under(datadir, old) else new
        other = new if current == old else old
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "pgkms", *args],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            for args in (
                ["rotate", str(datadir), "--passphrase-command", current,
                 "--new-passphrase-command", other],
                ["verify", str(datadir), "--passphrase-command", current],
                ["recover", str(datadir), "--passphrase-command", other, "--apply"],
                ["verify", str(datadir), "--passphrase-command", other],
            )
        ]  # fmt: skip
        for proc in procs:
            _, err = proc.communicate(timeout=60)
            assert "Traceback" not in err.decode()
        assert [p for p in (OLD, NEW) if _keys(datadir, p) == original] != []
        assert not (datadir / "pg_cryptokeys_tmp").exists()
