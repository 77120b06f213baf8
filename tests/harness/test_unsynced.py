"""The harness's own reference computations (the oracle, the scenarios' starting states) run on
a filesystem without fsync: none reaches the disk, and their answers are the same."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from pgkms.tools.adapter import handle_line
from pgkms_conformance.harness.oracle import oracle
from pgkms_conformance.harness.run import Config, run_harness

from tests.harness.helpers import REFERENCE

PASSPHRASE = (b"unsynced passphrase " * 4).hex()


@pytest.fixture
def fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every os.fsync of this process (the harness's; the IUT is another process)."""
    calls: list[int] = []
    real = os.fsync

    def counting(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fsync", counting)
    return calls


def test_the_oracle_bootstraps_without_fsync(tmp_path: Path, fsyncs: list[int]) -> None:
    synced, unsynced = tmp_path / "synced", tmp_path / "unsynced"
    synced.mkdir()
    unsynced.mkdir()
    keys = [f"{i:02x}" * 64 for i in range(3)]
    ivs = [f"{i:02x}" * 16 for i in range(3, 6)]
    params = {"passphrase": PASSPHRASE, "keys": keys, "ivs": ivs}
    answer = oracle("bootstrap", {**params, "datadir": str(unsynced)})
    assert answer.ok and fsyncs == []
    real, _ = handle_line(
        json.dumps({"id": 0, "op": "bootstrap", **params, "datadir": str(synced)})
    )
    assert real["ok"] and fsyncs, "the adapter's own path still fsyncs"
    for path in sorted(synced.rglob("*")):
        twin = unsynced / path.relative_to(synced)
        assert twin.exists()
        if path.is_file():
            assert twin.read_bytes() == path.read_bytes()


def test_a_harness_run_issues_no_fsync_of_its_own(fsyncs: list[int]) -> None:
    report = run_harness(Config(REFERENCE, examples=5, stages=("scenarios", "durability")))
    assert report.passed, [c.name for c in report.failures]
    assert fsyncs == []
