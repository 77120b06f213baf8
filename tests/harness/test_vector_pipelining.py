"""The vector stage pipelines the tests that are a lone request each, and judges exactly as it
would one request at a time: the same cases, verdicts, rules and messages, against a correct
IUT, an IUT whose answers are wrong, and IUTs that crash or speak garbage in the middle of a
window (the failure lands on its own test, the tests after it run on the restarted IUT)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pgkms_conformance.harness import vector_stage
from pgkms_conformance.harness.model import Case, Verdict
from pgkms_conformance.harness.run import Config, run_harness
from pgkms_conformance.protocol.client import AdapterClient
from pgkms_conformance.vectors.runner import REPO_VECTOR_DIR, load_vector_file, lone_request

from tests.harness.helpers import REFERENCE, fake

pytestmark = pytest.mark.req("ADP_01")

# Lone requests, most of them (derive_kek, records), and a few tests that are not (none here
# lists a directory, but key records with a file id and KDF tests are all lone).
FILES = [REPO_VECTOR_DIR / "kdf.json", REPO_VECTOR_DIR / "key_record.json"]


def _cases(command: list[str], pipelined: bool, monkeypatch: pytest.MonkeyPatch) -> list[Case]:
    with monkeypatch.context() as patch:
        if not pipelined:
            patch.setattr(vector_stage, "lone_request", lambda test, caps: None)
        config = Config(command, vector_paths=FILES, stages=("vectors",), timeout=5.0)
        report = run_harness(config)
    return report.cases


def _judged(cases: list[Case]) -> list[tuple[str, Verdict, tuple[str, ...], str, str]]:
    return [(c.name, c.verdict, c.requirements, c.expected, c.found) for c in cases]


@pytest.fixture(scope="module")
def caps() -> frozenset[str]:
    with AdapterClient(REFERENCE) as client:
        return frozenset(client.hello().capabilities)


def test_most_repository_vectors_are_lone_requests(caps: frozenset[str]) -> None:
    """What the pipelining applies to: the format vectors, not those that write a directory."""
    wrap = [t for _, t in load_vector_file(REPO_VECTOR_DIR / "wrap.json").tests()]
    assert sum(lone_request(t, caps) is not None for t in wrap) == len(wrap)
    directories = [t for _, t in load_vector_file(REPO_VECTOR_DIR / "key_directory.json").tests()]
    assert all(lone_request(t, caps) is None for t in directories)
    # without injected randomness, a test that carries some is not sent as it stands
    assert all(
        lone_request(t, caps - {"inject_randomness"}) is None for t in wrap if "iv" in t["input"]
    )


@pytest.mark.parametrize(
    "command",
    [REFERENCE, fake("leak"), fake("crash", budget=5), fake("garbage", budget=7)],
    ids=["reference", "wrong answers", "crash every 5", "garbage after 7"],
)
def test_pipelined_vectors_judge_as_one_request_at_a_time(
    command: list[str], monkeypatch: pytest.MonkeyPatch, isolated_tmp: Path
) -> None:
    pipelined = _cases(command, pipelined=True, monkeypatch=monkeypatch)
    one_by_one = _cases(command, pipelined=False, monkeypatch=monkeypatch)
    assert _judged(pipelined) == _judged(one_by_one)
    assert pipelined, "the stage ran"
    assert list(isolated_tmp.iterdir()) == []


def test_a_crash_mid_window_fails_its_own_test_and_the_next_runs_on_a_restart(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cases = _cases(fake("crash", budget=5), pipelined=True, monkeypatch=monkeypatch)
    verdicts = [c.verdict for c in cases]
    assert verdicts[:5] == [Verdict.PASSED] * 5
    assert verdicts[5] is Verdict.FAILED and cases[5].found.startswith("crashed")
    assert "ADP_01" in cases[5].requirements
    assert verdicts[6:11] == [Verdict.PASSED] * 5  # the restarted IUT answered the rest
