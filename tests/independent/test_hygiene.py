"""Secrets never show: not in reprs, not in failure messages, not in adapter responses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pgkms_independent.adapter import answer
from pgkms_independent.failures import Failure
from pgkms_independent.hidden import Hidden
from pgkms_independent.keystore import Cluster, InternalKeys
from pgkms_independent.passphrase import Purpose, effective
from pgkms_independent.primitives import KeyPair, derive

pytestmark = pytest.mark.req("ERR_02")

SECRET = b"correct horse battery staple, sixty-four bytes or more of it......"


def test_reprs_show_no_bytes() -> None:
    hidden = Hidden(SECRET)
    kek = derive(hidden)
    keys = InternalKeys((hidden, hidden, hidden))
    for shown in (repr(hidden), str(hidden), repr(kek), repr(keys)):
        assert SECRET.decode()[:10] not in shown
        assert SECRET.hex()[:10] not in shown
    assert repr(hidden) == f"Hidden(<{len(SECRET)} bytes>)"
    assert kek.cipher_key.expose().hex() not in repr(kek)
    with pytest.raises(TypeError):
        hash(hidden)


def test_failure_messages_carry_no_passphrase(tmp_path: Path) -> None:
    short = b"secret-but-short"
    for passphrase, purpose in [(short, Purpose.BOOTSTRAP), (SECRET * 20, Purpose.ROTATION)]:
        with pytest.raises(Failure) as caught:
            effective(passphrase, purpose)
        assert passphrase[:16].decode() not in str(caught.value)
    Cluster(str(tmp_path)).bootstrap(SECRET)
    with pytest.raises(Failure) as caught:
        Cluster(str(tmp_path)).startup(SECRET[::-1])
    assert "wrong_passphrase" in str(caught.value)
    assert SECRET[::-1].decode()[:10] not in str(caught.value)


def test_adapter_errors_echo_no_secret(tmp_path: Path) -> None:
    key = KeyPair(Hidden(bytes(range(32))), Hidden(bytes(range(32, 64))))
    secrets = [SECRET.hex(), key.cipher_key.expose().hex(), key.mac_key.expose().hex()]
    requests: list[dict[str, object]] = [
        {"op": "unwrap", "enc_key": secrets[1], "mac_key": secrets[2], "wrapped": "00" * 64},
        {"op": "check_passphrase", "passphrase": SECRET.hex()[:100], "purpose": "startup"},
        {"op": "startup", "datadir": str(tmp_path), "passphrase": SECRET.hex()},
        {"op": "sql_wrap", "sql_key": SECRET.hex()[:126], "plaintext": SECRET.hex()},
        {"op": "wrap", "enc_key": secrets[1], "mac_key": secrets[2], "plaintext": "", "x": 1},
    ]
    for i, request in enumerate(requests):
        response, _ = answer(json.dumps({"id": i, **request}).encode())
        assert response["ok"] is False
        text = json.dumps(response)
        for secret in secrets:
            assert secret[:16] not in text
