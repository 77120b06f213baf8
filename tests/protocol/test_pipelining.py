"""``AdapterClient.call_many``: requests pipelined in a window, answers read in order.

Against both bundled adapters (the answers are the ones ``call`` gets, one at a time), and
against the deliberately bad IUT of the harness tests (a crash, a hang or a wrong id in the
middle of a window is raised at its own response, within one timeout, and the answers before
it were delivered).
"""

from __future__ import annotations

import sys
import time
from typing import Any

import pytest
from pgkms_conformance.protocol import client as client_module
from pgkms_conformance.protocol.client import (
    DEFAULT_WINDOW,
    AdapterClient,
    AdapterCrashed,
    AdapterGarbage,
    AdapterTimeout,
    Response,
)
from pgkms_conformance.vectors.runner import REPO_VECTOR_DIR, load_vector_file, run_test

from tests.harness.helpers import drbg_bytes, fake

pytestmark = pytest.mark.req("ADP_01")

ENC, MAC = drbg_bytes("pipelining/enc", 32).hex(), drbg_bytes("pipelining/mac", 32).hex()


def _wrap(i: int) -> tuple[str, dict[str, Any]]:
    params = {
        "enc_key": ENC,
        "mac_key": MAC,
        "plaintext": drbg_bytes(f"pipelining/{i}", i % 70).hex(),
        "iv": drbg_bytes(f"pipelining/iv/{i}", 16).hex(),
    }
    return "wrap", params


def test_pipelined_answers_equal_one_at_a_time(adapter: AdapterClient) -> None:
    calls = [_wrap(i) for i in range(150)]
    one_by_one = [adapter.call(op, **params) for op, params in calls]
    sent = adapter.requests_sent
    assert list(adapter.call_many(calls)) == one_by_one
    assert adapter.requests_sent == sent + len(calls)
    assert all(r.ok for r in one_by_one)


@pytest.mark.parametrize("window", [1, 2, 5, DEFAULT_WINDOW])
def test_never_more_than_the_window_in_flight(
    adapter: AdapterClient, window: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before each write, the requests sent minus the answers read stays within the window."""
    answered = 0
    most = 0
    original = AdapterClient._send

    def counting_send(self: AdapterClient, data: bytes, *args: Any) -> None:
        nonlocal most
        original(self, data, *args)
        most = max(most, self.requests_sent - start - answered)

    monkeypatch.setattr(AdapterClient, "_send", counting_send)
    start = adapter.requests_sent
    for response in adapter.call_many([_wrap(i) for i in range(3 * window + 1)], window):
        assert response.ok
        answered += 1
    assert answered == 3 * window + 1
    assert most == window


def test_stopping_early_leaves_the_client_in_step(adapter: AdapterClient) -> None:
    responses = adapter.call_many([_wrap(i) for i in range(60)])
    for _, response in zip(range(5), responses, strict=False):
        assert response.ok
    responses.close()  # 27 answers still owed: read and dropped
    op, params = _wrap(1000)
    after = adapter.call(op, **params)
    assert after.ok
    assert after == adapter.call(op, **params)


def test_a_window_of_zero_is_refused(adapter: AdapterClient) -> None:
    with pytest.raises(ValueError, match="window"):
        next(adapter.call_many([_wrap(0)], window=0))


def test_crash_mid_window_is_raised_at_its_response() -> None:
    with AdapterClient(fake("crash", budget=10), timeout=5.0) as client:
        client.hello()
        got: list[Response] = []
        with pytest.raises(AdapterCrashed) as failure:
            got.extend(client.call_many([_wrap(i) for i in range(40)]))
        assert len(got) == 10 and all(r.ok for r in got)
        assert "segmentation fault (pretend)" in "\n".join(failure.value.stderr_tail)


def test_hang_mid_window_costs_one_timeout() -> None:
    # 2 s: the fake is a Python process, slow to start on a loaded machine (hello waits for it).
    with AdapterClient(fake("hang", budget=7), timeout=2.0) as client:
        client.hello()
        got: list[Response] = []
        t0 = time.monotonic()
        with pytest.raises(AdapterTimeout, match="no response"):
            got.extend(client.call_many([_wrap(i) for i in range(40)]))
        assert len(got) == 7
        assert time.monotonic() - t0 < 6.0  # one timeout of 2 s, not one per request owed


def test_wrong_id_mid_window_is_garbage() -> None:
    with AdapterClient(fake("wrongid", budget=3), timeout=5.0) as client:
        client.hello()
        with pytest.raises(AdapterGarbage, match="expected 4"):
            list(client.call_many([_wrap(i) for i in range(10)]))


def test_default_window_is_the_protocols() -> None:
    """The harness keeps to the protocol's bound of requests in flight."""
    assert client_module.DEFAULT_WINDOW == 32


def test_accumulated_vector_failing_mid_stream_leaves_the_client_in_step() -> None:
    """The runner pipelines the accumulated vector; its first failed case ends the test, and the
    answers still owed are dropped before the next request."""
    vector = load_vector_file(REPO_VECTOR_DIR / "accumulated.json")
    group, test = next(vector.tests())
    test = {**test, "input": {**test["input"], "count": 200}}
    # This IUT refuses injected IVs although it is told to be able to: every case is refused.
    with AdapterClient(fake("noinject"), timeout=5.0) as client:
        client.hello()
        caps = {"wrap", "inject_randomness"}
        outcome = run_test(client, test, group, capabilities=caps)
        assert (outcome.status, outcome.reason) == ("failed", "case 0: wrap failed")
        answer = client.call("derive_kek", passphrase="ab" * 64)
        assert answer.ok and set(answer.result) == {"enc_key", "mac_key"}


# An IUT that answers hello, then answers every request in the encoding named on its command line.
_ENCODED_ANSWERS = """
import json, sys
encoding = sys.argv[1]
for line in sys.stdin:
    request = json.loads(line)
    if request["op"] == "hello":
        result = {"protocol": 1, "capabilities": ["derive_kek"]}
        sys.stdout.write(json.dumps({"id": request["id"], "ok": True, "result": result}) + "\\n")
    else:
        answer = json.dumps({"id": request["id"], "ok": True, "result": {}})
        sys.stdout.buffer.write(answer.encode(encoding).replace(b"\\n", b"") + b"\\n")
    sys.stdout.flush()
"""


@pytest.mark.parametrize("encoding", ["utf-16", "utf-8-sig"])
def test_a_response_line_that_is_not_plain_utf8_is_garbage(encoding: str) -> None:
    with AdapterClient([sys.executable, "-c", _ENCODED_ANSWERS, encoding], timeout=3) as iut:
        iut.hello()
        with pytest.raises(AdapterGarbage, match="is not JSON"):
            iut.call("derive_kek", passphrase="00" * 8)
