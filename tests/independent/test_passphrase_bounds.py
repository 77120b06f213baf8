"""A passphrase command that never ends, or leaves a daemon behind (PASS_08, PASS_09, ADP_06),
run through the adapter as the harness runs it."""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.independent.processes import Adapter, code, live_processes_with, wait_until_gone


def _run(adapter: Adapter, command: str, timeout: float | None) -> tuple[dict[str, object], float]:
    fields: dict[str, object] = {"command": command, "purpose": "startup"}
    if timeout is not None:
        fields["timeout"] = timeout
    started = time.monotonic()
    answer = adapter.call("run_passphrase_command", 30, **fields)
    return answer, time.monotonic() - started


@pytest.mark.req("PASS_08", "ADP_06")
def test_a_command_that_never_ends_is_killed_after_its_timeout() -> None:
    marker = "1000.00801"
    with Adapter() as adapter:
        answer, took = _run(adapter, f"sleep {marker}", 2)
        assert code(answer) == "passphrase_command_timeout"
        assert 2.0 <= took < 3.0  # PASS_08: within one second after the timeout
        assert wait_until_gone(marker, 5.0) == []
        # the session goes on: the next command runs normally
        answer, _ = _run(adapter, "printf %070d 0", None)
        assert answer["ok"], answer


@pytest.mark.req("PASS_08", "PASS_09")
def test_a_daemon_holding_standard_output_has_not_finished() -> None:
    marker = "1000.00802"
    with Adapter() as adapter:
        answer, took = _run(adapter, f"sleep {marker} & printf %070d 0", 1)
        assert code(answer) == "passphrase_command_timeout"
        assert 1.0 <= took < 2.0
        assert wait_until_gone(marker, 5.0) == []


@pytest.mark.req("PASS_09", "PASS_01")
def test_a_background_process_of_a_successful_command_does_not_outlive_it() -> None:
    marker = "1000.00803"
    with Adapter() as adapter:
        answer, took = _run(adapter, f"(sleep {marker} >/dev/null 2>&1 &); printf %070d 0", 10)
        assert answer["ok"], answer
        assert answer["result"] == {"passphrase": (b"0" * 70).hex()}
        assert took < 2.0
        assert wait_until_gone(marker, 5.0) == []


@pytest.mark.req("PASS_09", "ADP_06")
def test_sigterm_to_the_adapter_ends_the_running_command() -> None:
    marker = "1000.00804"
    with Adapter() as adapter:
        adapter.send("run_passphrase_command", command=f"sleep {marker}", purpose="startup")
        deadline = time.monotonic() + 5
        while not live_processes_with(marker):
            assert time.monotonic() < deadline, "the command never started"
            time.sleep(0.02)
        os.kill(adapter.proc.pid, signal.SIGTERM)
        assert adapter.proc.wait(timeout=2) == 128 + signal.SIGTERM
        assert wait_until_gone(marker, 5.0) == []


@pytest.mark.req("ADP_06")
@pytest.mark.parametrize("value", [0, -3, "5", False, float("nan")])
def test_a_bad_command_timeout_is_a_malformed_request(value: object) -> None:
    with Adapter() as adapter:
        answer = adapter.call(
            "run_passphrase_command", command="printf %070d 0", purpose="startup", timeout=value
        )
        assert code(answer) == "malformed_request"


@pytest.mark.req("ADP_04", "ADP_06")
def test_hello_declares_concurrency_and_passphrase_timeout() -> None:
    with Adapter() as adapter:
        answer = adapter.call("hello")
    capabilities = answer["result"]["capabilities"]
    assert {"concurrency", "passphrase_timeout", "fs_trace"} <= set(capabilities)
