"""A hostile IUT cannot hang, exhaust or misdirect the harness (ADP_01).

One test per hostile mode of ``fakes/hostile_adapter.py``. Each runs the harness in a process of
its own (``fakes/run_harness_child.py``) and checks the same four things:

* the run ends within ``RUN_BOUND_S``: each of at most ``MAX_FAILURES`` protocol failures costs
  one request timeout plus one bounded close (``CLOSE_BOUND_S``), plus ``SLACK_S`` for starting
  processes on a loaded machine;
* the harness's peak RSS stays under ``RSS_BOUND_KIB`` (300 MiB);
* no process the IUT started is alive afterwards (checked by pid, daemons included);
* no temporary directory is left.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pgkms_conformance.protocol.client import CLOSE_BOUND_S, AdapterClient, AdapterTimeout
from pgkms_conformance.protocol.pipes import MAX_RESPONSE_LINE, STDERR_TAIL_BYTES

from tests.harness.helpers import alive

pytestmark = pytest.mark.req("ADP_01")

FAKES = Path(__file__).parent / "fakes"
HOSTILE = FAKES / "hostile_adapter.py"
CHILD = FAKES / "run_harness_child.py"
TIMEOUT_S = 2.0
MAX_FAILURES = 3
SLACK_S = 15.0
RUN_BOUND_S = MAX_FAILURES * (TIMEOUT_S + CLOSE_BOUND_S) + SLACK_S
RSS_BOUND_KIB = 300 * 1024


@dataclass
class Hostile:
    """The environment of one hostile run: pid file, canary, isolated TMPDIR."""

    root: Path

    @property
    def pids(self) -> Path:
        return self.root / "pids"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    @property
    def canary(self) -> Path:
        return self.root / "canary"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "FAKE_PIDS": str(self.pids),
            "FAKE_CANARY": str(self.canary),
            "TMPDIR": str(self.tmp),
        }

    def command(self, mode: str, budget: int = 0) -> list[str]:
        return [sys.executable, str(HOSTILE), mode, str(budget)]

    def run(
        self, mode: str, stages: tuple[str, ...], budget: int = 0, max_failures: int = MAX_FAILURES
    ) -> dict[str, Any]:
        spec = {
            "command": self.command(mode, budget),
            "timeout": TIMEOUT_S,
            "max_failures": max_failures,
            "stages": list(stages),
            "replay_dir": str(self.root / "replays"),
        }
        t0 = time.monotonic()
        done = subprocess.run(
            [sys.executable, str(CHILD), json.dumps(spec)],
            env=self.env(),
            capture_output=True,
            timeout=RUN_BOUND_S + 30,  # a hang fails the test instead of blocking the suite
            check=False,
        )
        elapsed = time.monotonic() - t0
        assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
        result: dict[str, Any] = json.loads(done.stdout)
        assert elapsed < RUN_BOUND_S, f"the run took {elapsed:.1f} s"
        assert result["maxrss_kib"] < RSS_BOUND_KIB, f"peak RSS {result['maxrss_kib']} KiB"
        self.assert_clean()
        return result

    def started(self) -> list[int]:
        return [int(p) for p in self.pids.read_text().split()] if self.pids.exists() else []

    def assert_clean(self) -> None:
        survivors = [p for p in self.started() if alive(p)]
        assert not survivors, f"processes of the IUT survived: {survivors}"
        assert list(self.tmp.iterdir()) == [], "temporary directories left behind"


@pytest.fixture
def hostile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Hostile]:
    h = Hostile(tmp_path)
    h.tmp.mkdir()
    h.canary.mkdir()
    (h.canary / "keep").write_bytes(b"the canary's own file")
    for name, value in h.env().items():
        monkeypatch.setenv(name, value)
    yield h
    for pid in h.started():  # never leave a process behind, even when an assertion failed
        if alive(pid):
            os.kill(pid, 9)


def _failed_with(result: dict[str, Any], words: str) -> list[dict[str, Any]]:
    return [c for c in result["failed"] if words in c["found"] + c["detail"]]


def test_setsid_daemon_holding_the_pipes_is_killed(hostile: Hostile) -> None:
    result = hostile.run("setsid", ("protocol",))
    assert result["aborted"] is None
    assert result["failed"] == []  # it answers like the reference; only its daemon is hostile
    assert len(hostile.started()) >= 2, "the fake did not leave its daemon"


def test_setsid_daemon_does_not_block_close(hostile: Hostile) -> None:
    client = AdapterClient(hostile.command("setsid"), timeout=TIMEOUT_S)
    assert client.hello().protocol == 1
    deadline = time.monotonic() + 5
    while len(hostile.started()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    daemon = hostile.started()[-1]
    assert alive(daemon)
    t0 = time.monotonic()
    client.close()
    assert time.monotonic() - t0 < CLOSE_BOUND_S
    assert client.survivors == set()
    assert not alive(daemon), "the daemon that called setsid() survived close()"


def test_huge_response_line_is_a_failed_case_naming_the_limit(hostile: Hostile) -> None:
    result = hostile.run("hugeline", ("protocol",))
    over = _failed_with(result, f"limit of {MAX_RESPONSE_LINE} bytes")
    assert over, result["failed"]
    assert all("ADP_01" in c["requirements"] for c in over)
    assert result["aborted"] == "garbage"


def test_endless_stderr_without_newline_keeps_a_bounded_tail(hostile: Hostile) -> None:
    # One failure is enough to see the tail (test_iut_that_never_reads_its_input runs to the
    # default three): each more costs a timeout and a close.
    result = hostile.run("stderrflood", ("protocol",), max_failures=1)
    assert result["aborted"] == "timeout"
    tail = result["aborted_tail"]
    assert tail and tail[0].startswith("[") and "earlier bytes of stderr not kept" in tail[0]
    assert sum(len(line) for line in tail) <= STDERR_TAIL_BYTES + 100


def test_key_file_pointing_at_dev_zero_is_reported_not_read(hostile: Hostile) -> None:
    result = hostile.run("devzero", ("scenarios",))
    linked = _failed_with(result, "pg_cryptokeys/0000 is a symbolic link (not followed)")
    assert linked, result["failed"]
    assert result["aborted"] is None


def test_data_directory_swapped_for_a_link_is_a_failed_case(hostile: Hostile) -> None:
    result = hostile.run("swapdir", ("scenarios",))
    swapped = _failed_with(result, "the data directory was replaced by a symbolic link")
    assert swapped, result["failed"]
    assert result["aborted"] is None
    assert sorted(p.name for p in hostile.canary.iterdir()) == ["keep"], "the canary was touched"
    assert (hostile.canary / "keep").read_bytes() == b"the canary's own file"


def test_iut_that_never_reads_its_input(hostile: Hostile) -> None:
    result = hostile.run("noread", ("protocol",))
    assert result["aborted"] == "timeout"


def test_a_large_request_to_an_iut_that_never_reads_times_out(hostile: Hostile) -> None:
    # 1 MiB of hex does not fit the pipe: the write itself must be bounded by the timeout.
    with AdapterClient(hostile.command("noread"), timeout=TIMEOUT_S) as client:
        client.hello()  # answered; then the IUT reads nothing more
        t0 = time.monotonic()
        with pytest.raises(AdapterTimeout, match="did not read the request"):
            client.call("derive_kek", passphrase="ab" * (1 << 20))
        assert time.monotonic() - t0 < TIMEOUT_S + 1.0
    hostile.assert_clean()
